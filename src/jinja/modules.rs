//! dbt's Python helpers for templates: `modules.datetime`, `modules.re`, `modules.itertools`,
//! and the `zip` and `set` functions.
//!
//! minijinja has no operator overloading, so `date - timedelta(days=1)` cannot work as in
//! Python: such an expression fails with a hint (see `super::error`) towards the spellings
//! that work in both dbt and Strata (`d.timestamp()`, `datetime.fromtimestamp(..)`,
//! `d.replace(..)`, or the arithmetic in SQL with `dbt.dateadd`).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};
use minijinja::value::{DynObject, Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State};

pub(super) fn add_globals(env: &mut Environment<'static>) {
    env.add_global(
        "modules",
        Value::from_iter([
            ("datetime", Value::from_object(DatetimeModule)),
            ("re", Value::from_object(ReModule)),
            ("itertools", Value::from_object(Itertools)),
        ]),
    );
    env.add_function("zip", zip);
    env.add_function("zip_strict", zip);
    env.add_function("set", set);
    env.add_function("set_strict", set);
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// A Python method these modules do not have, said plainly (minijinja's own message would
/// only say "plain object has no method").
fn unsupported(what: &str, method: &str) -> Error {
    invalid(format!(
        "{method}() of {what} is not supported by Strata's Jinja"
    ))
}

/// `zip(a, b, ...)`: a list of tuples (lists), as long as the shortest input.
fn zip(args: &[Value]) -> Result<Value, Error> {
    let lists: Vec<Vec<Value>> = args
        .iter()
        .map(|a| a.try_iter().map(Iterator::collect))
        .collect::<Result<_, _>>()?;
    let len = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::from(
        (0..len)
            .map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    ))
}

/// `set(iterable)`: its distinct items, in first-seen order.
fn set(value: Value) -> Result<Value, Error> {
    let mut items: Vec<Value> = Vec::new();
    for item in value.try_iter()? {
        if !items.contains(&item) {
            items.push(item);
        }
    }
    Ok(Value::from(items))
}

/// `modules.datetime`: `datetime`, `date` and `timedelta`.
#[derive(Debug)]
struct DatetimeModule;

impl Object for DatetimeModule {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "datetime" => Some(Value::from_object(DatetimeType { date_only: false })),
            "date" => Some(Value::from_object(DatetimeType { date_only: true })),
            "timedelta" => Some(Value::from_object(TimedeltaType)),
            _ => None,
        }
    }
}

/// `datetime.datetime` or `datetime.date`: callable, with `now`, `utcnow`, `today`,
/// `strptime`, `fromisoformat` and `fromtimestamp` (Strata's clock is UTC).
#[derive(Debug)]
struct DatetimeType {
    date_only: bool,
}

impl Object for DatetimeType {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (y, m, d, h, mi, s): (i32, u32, u32, Option<u32>, Option<u32>, Option<u32>) = match args
        {
            [y, m, d, rest @ ..] if rest.len() <= 3 => {
                let part = |v: &Value| {
                    v.as_i64()
                        .ok_or_else(|| invalid("datetime(): the parts must be integers"))
                };
                let opt = |i: usize| {
                    rest.get(i)
                        .map(part)
                        .transpose()
                        .map(|v| v.map(|v| v as u32))
                };
                (
                    part(y)? as i32,
                    part(m)? as u32,
                    part(d)? as u32,
                    opt(0)?,
                    opt(1)?,
                    opt(2)?,
                )
            }
            _ => {
                return Err(invalid(
                    "datetime(year, month, day[, hour, minute, second])",
                ));
            }
        };
        let value = NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|date| date.and_hms_opt(h.unwrap_or(0), mi.unwrap_or(0), s.unwrap_or(0)))
            .ok_or_else(|| invalid("datetime(): the date or time is out of range"))?;
        Ok(DateTime::value(value, self.date_only))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let value = match method {
            "now" | "today" => Utc::now().naive_local(),
            "utcnow" => Utc::now().naive_utc(),
            "strptime" => {
                let (text, format): (String, String) = from_args(args)?;
                NaiveDateTime::parse_from_str(&text, &format)
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&text, &format)
                            .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    })
                    .map_err(|e| invalid(format!("strptime('{text}', '{format}'): {e}")))?
            }
            "fromisoformat" => {
                let (text,): (String,) = from_args(args)?;
                NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f"))
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                            .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    })
                    .map_err(|e| invalid(format!("fromisoformat('{text}'): {e}")))?
            }
            "fromtimestamp" | "utcfromtimestamp" => {
                let (seconds, _tz): (f64, Option<Value>) = from_args(args)?;
                chrono::DateTime::from_timestamp_micros((seconds * 1e6).round() as i64)
                    .ok_or_else(|| invalid(format!("fromtimestamp({seconds}): out of range")))?
                    .naive_utc()
            }
            _ => return Err(unsupported("datetime.datetime", method)),
        };
        let date_only = self.date_only || method == "today";
        Ok(DateTime::value(value, date_only))
    }
}

/// A `datetime` or `date` value; `utc` ones are time-zone aware, as dbt's `run_started_at`.
#[derive(Debug, Clone)]
struct DateTime {
    value: NaiveDateTime,
    date_only: bool,
    utc: bool,
}

/// dbt's `run_started_at`: an aware UTC datetime.
pub(super) fn utc_datetime(at: chrono::DateTime<Utc>) -> Value {
    Value::from_object(DateTime {
        value: at.naive_utc(),
        date_only: false,
        utc: true,
    })
}

impl DateTime {
    fn value(value: NaiveDateTime, date_only: bool) -> Value {
        Value::from_object(DateTime {
            value,
            date_only,
            utc: false,
        })
    }

    /// Python's `replace(year=.., month=.., ...)`.
    fn replace(&self, args: &[Value]) -> Result<Value, Error> {
        let (kwargs,): (Kwargs,) = from_args(args)?;
        let v = &self.value;
        let part = |name: &str, current: u32| -> Result<u32, Error> {
            Ok(kwargs.get::<Option<u32>>(name)?.unwrap_or(current))
        };
        let year = kwargs.get::<Option<i32>>("year")?.unwrap_or(v.year());
        let (month, day) = (part("month", v.month())?, part("day", v.day())?);
        let (hour, minute) = (part("hour", v.hour())?, part("minute", v.minute())?);
        let second = part("second", v.second())?;
        let micro = part("microsecond", v.nanosecond() / 1000)?;
        let value = NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|d| d.and_hms_micro_opt(hour, minute, second, micro))
            .ok_or_else(|| invalid("replace(): the date or time is out of range"))?;
        // `tzinfo=None` makes an aware datetime naive, as in Python.
        let naive = matches!(kwargs.get::<Option<Value>>("tzinfo")?, Some(v) if v.is_none());
        kwargs.assert_all_used()?;
        Ok(Value::from_object(DateTime {
            value,
            date_only: self.date_only,
            utc: self.utc && !naive,
        }))
    }

    fn iso(&self, sep: char) -> String {
        if self.date_only {
            self.value.format("%Y-%m-%d").to_string()
        } else {
            let time = if self.value.nanosecond() == 0 {
                "%H:%M:%S"
            } else {
                "%H:%M:%S%.6f"
            };
            let offset = if self.utc { "+00:00" } else { "" };
            self.value
                .format(&format!("%Y-%m-%d{sep}{time}{offset}"))
                .to_string()
        }
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = &self.value;
        Some(Value::from(match key.as_str()? {
            "year" => v.year() as i64,
            "month" => v.month() as i64,
            "day" => v.day() as i64,
            "hour" => v.hour() as i64,
            "minute" => v.minute() as i64,
            "second" => v.second() as i64,
            "microsecond" => (v.nanosecond() / 1000) as i64,
            _ => return None,
        }))
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<DateTime>()?;
        Some(self.value.cmp(&other.value))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                Ok(Value::from(self.value.format(&format).to_string()))
            }
            "isoformat" => Ok(Value::from(self.iso('T'))),
            "date" => Ok(DateTime::value(self.value, true)),
            "timestamp" => Ok(Value::from(
                self.value.and_utc().timestamp_micros() as f64 / 1e6,
            )),
            "replace" => self.replace(args),
            "weekday" => Ok(Value::from(self.value.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.value.weekday().number_from_monday())),
            _ => Err(unsupported("a datetime", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(' '))
    }
}

/// `datetime.timedelta(days=.., seconds=.., microseconds=.., milliseconds=.., minutes=..,
/// hours=.., weeks=..)`, positionally as Python takes them too.
#[derive(Debug)]
struct TimedeltaType;

/// Python's timedelta arguments in order, with their length in microseconds.
const TIMEDELTA_PARTS: [(&str, f64); 7] = [
    ("days", 86_400e6),
    ("seconds", 1e6),
    ("microseconds", 1.0),
    ("milliseconds", 1e3),
    ("minutes", 60e6),
    ("hours", 3_600e6),
    ("weeks", 604_800e6),
];

impl Object for TimedeltaType {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = super::functions::split_args(args);
        if positional.len() > TIMEDELTA_PARTS.len() {
            return Err(invalid("timedelta() takes at most 7 arguments"));
        }
        let mut micros = 0.0;
        for (i, (name, unit)) in TIMEDELTA_PARTS.iter().enumerate() {
            let given = match (positional.get(i), &kwargs) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(k)) => k.get::<Option<Value>>(name)?,
                (None, None) => None,
            };
            if let Some(v) = given {
                let n = f64::try_from(v)
                    .map_err(|_| invalid(format!("timedelta(): {name} must be a number")))?;
                micros += n * unit;
            }
        }
        if let Some(k) = kwargs {
            k.assert_all_used()?;
        }
        Ok(Value::from_object(Timedelta(TimeDelta::microseconds(
            micros.round() as i64,
        ))))
    }
}

/// A `timedelta`: `days`, `seconds` and `microseconds` normalized as Python's, and
/// `total_seconds()`.
#[derive(Debug)]
struct Timedelta(TimeDelta);

impl Timedelta {
    /// (days, seconds, microseconds), days carrying the sign as in Python.
    fn parts(&self) -> (i64, i64, i64) {
        let micros = self.0.num_microseconds().unwrap_or(i64::MAX);
        let days = micros.div_euclid(86_400_000_000);
        let rest = micros.rem_euclid(86_400_000_000);
        (days, rest / 1_000_000, rest % 1_000_000)
    }
}

impl Object for Timedelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, seconds, micros) = self.parts();
        Some(Value::from(match key.as_str()? {
            "days" => days,
            "seconds" => seconds,
            "microseconds" => micros,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(
                self.0.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6,
            )),
            _ => Err(unsupported("a timedelta", method)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Timedelta>()?.0))
    }

    /// Python's `str(timedelta)`: `1 day, 2:03:04`, `-1 day, 23:59:59`, `0:00:00.500000`.
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, seconds, micros) = self.parts();
        if days != 0 {
            let plural = if days.abs() == 1 { "" } else { "s" };
            write!(f, "{days} day{plural}, ")?;
        }
        write!(
            f,
            "{}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

/// `modules.re`: `match`, `search`, `fullmatch`, `sub`, `findall`, `split`, `escape` and
/// `compile` (Rust's regex syntax, which Python's common patterns share).
#[derive(Debug)]
struct ReModule;

impl Object for ReModule {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "IGNORECASE" | "I" => Some(Value::from(2)),
            "MULTILINE" | "M" => Some(Value::from(8)),
            "DOTALL" | "S" => Some(Value::from(16)),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method == "escape" {
            let (text,): (String,) = from_args(args)?;
            return Ok(Value::from(regex::escape(&text)));
        }
        let (pattern, rest) = args
            .split_first()
            .ok_or_else(|| invalid(format!("re.{method}() needs a pattern")))?;
        let flags = if method == "compile" {
            rest.first().and_then(Value::as_i64).unwrap_or(0)
        } else {
            0
        };
        let regex = Pattern::compile(&pattern.to_string(), flags)?;
        if method == "compile" {
            return Ok(Value::from_object(regex));
        }
        regex.apply(method, rest)
    }
}

/// A compiled pattern.
#[derive(Debug)]
struct Pattern(regex::Regex);

impl Pattern {
    fn compile(pattern: &str, flags: i64) -> Result<Pattern, Error> {
        let mut prefix = String::new();
        for (bit, flag) in [(2, 'i'), (8, 'm'), (16, 's')] {
            if flags & bit != 0 {
                prefix.push(flag);
            }
        }
        let pattern = if prefix.is_empty() {
            pattern.to_string()
        } else {
            format!("(?{prefix}){pattern}")
        };
        regex::Regex::new(&pattern)
            .map(Pattern)
            .map_err(|e| invalid(format!("re: invalid pattern: {e}")))
    }

    fn apply(&self, method: &str, args: &[Value]) -> Result<Value, Error> {
        let re = &self.0;
        match method {
            "match" | "search" | "fullmatch" => {
                let (text,): (String,) = from_args(args)?;
                let found = re.captures(&text).filter(|c| {
                    let whole = c.get(0).expect("group 0 always matches");
                    match method {
                        "match" => whole.start() == 0,
                        "fullmatch" => whole.start() == 0 && whole.end() == text.len(),
                        _ => true,
                    }
                });
                Ok(match found {
                    Some(c) => Value::from_object(Match(
                        c.iter()
                            .map(|g| g.map(|m| (m.start(), m.end(), m.as_str().to_string())))
                            .collect(),
                    )),
                    None => Value::from(()),
                })
            }
            "sub" => {
                let (replacement, text, count): (String, String, Option<usize>) = from_args(args)?;
                // Python's \1 is Rust's ${1}.
                let replacement = python_groups(&replacement);
                Ok(Value::from(
                    re.replacen(&text, count.unwrap_or(0), replacement.as_str())
                        .into_owned(),
                ))
            }
            "findall" => {
                let (text,): (String,) = from_args(args)?;
                let found: Vec<Value> = re
                    .captures_iter(&text)
                    .map(|c| match c.len() {
                        1 => Value::from(&c[0]),
                        2 => Value::from(c.get(1).map_or("", |m| m.as_str())),
                        _ => Value::from(
                            c.iter()
                                .skip(1)
                                .map(|g| Value::from(g.map_or("", |m| m.as_str())))
                                .collect::<Vec<_>>(),
                        ),
                    })
                    .collect();
                Ok(Value::from(found))
            }
            "split" => {
                let (text,): (String,) = from_args(args)?;
                Ok(Value::from(
                    re.split(&text).map(Value::from).collect::<Vec<_>>(),
                ))
            }
            _ => Err(unsupported("a re pattern", method)),
        }
    }
}

fn python_groups(replacement: &str) -> String {
    let escaped = replacement.replace('$', "$$");
    let mut out = String::new();
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                let d = *d;
                chars.next();
                out.push_str(&format!("${{{d}}}"));
            }
            _ => out.push(c),
        }
    }
    out
}

impl Object for Pattern {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        self.apply(method, args)
    }
}

/// A match: `group(n)`, `groups()`, `start()`, `end()`.
#[derive(Debug)]
struct Match(Vec<Option<(usize, usize, String)>>);

impl Object for Match {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let group = |i: usize| -> Value {
            match self.0.get(i) {
                Some(Some((_, _, text))) => Value::from(text.clone()),
                _ => Value::from(()),
            }
        };
        match method {
            "group" => {
                let (i,): (Option<usize>,) = from_args(args)?;
                Ok(group(i.unwrap_or(0)))
            }
            "groups" => Ok(Value::from(
                (1..self.0.len()).map(group).collect::<Vec<_>>(),
            )),
            "start" | "end" => {
                let (i,): (Option<usize>,) = from_args(args)?;
                let span = self.0.get(i.unwrap_or(0)).cloned().flatten();
                Ok(span.map_or(Value::from(-1), |(s, e, _)| {
                    Value::from(if method == "start" { s } else { e })
                }))
            }
            _ => Err(unsupported("a re match", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<re.Match {:?}>",
            self.0.first().cloned().flatten().map(|m| m.2)
        )
    }
}

/// `modules.itertools`: `product`, `chain` and `combinations`, as lists.
#[derive(Debug)]
struct Itertools;

impl Object for Itertools {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (positional, _) = super::functions::split_args(args);
        // `combinations(iterable, r)` ends with a number, the others take only iterables.
        let lists: Vec<Vec<Value>> = positional
            .iter()
            .filter(|a| a.as_i64().is_none())
            .map(|a| a.try_iter().map(Iterator::collect))
            .collect::<Result<_, _>>()?;
        let tuples: Vec<Vec<Value>> = match method {
            "chain" => return Ok(Value::from(lists.concat())),
            "product" => lists.iter().fold(vec![Vec::new()], |acc, list| {
                acc.iter()
                    .flat_map(|prefix| {
                        list.iter().map(move |item| {
                            let mut next = prefix.clone();
                            next.push(item.clone());
                            next
                        })
                    })
                    .collect()
            }),
            "combinations" => {
                let (items, r) = match (lists.first(), positional.get(1).and_then(Value::as_i64)) {
                    (Some(items), Some(r)) if r >= 0 => (items, r as usize),
                    _ => return Err(invalid("itertools.combinations(iterable, r)")),
                };
                combinations(items, r)
            }
            _ => return Err(unsupported("itertools", method)),
        };
        Ok(Value::from(
            tuples.into_iter().map(Value::from).collect::<Vec<_>>(),
        ))
    }
}

fn combinations(items: &[Value], r: usize) -> Vec<Vec<Value>> {
    if r == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for mut rest in combinations(&items[i + 1..], r - 1) {
            rest.insert(0, item.clone());
            out.push(rest);
        }
    }
    out
}
