//! Python-style methods on strings, dicts and lists (`.upper()`, `.get()`, `.items()`, ...)
//! that dbt projects call and minijinja lacks, and Jinja2's way of printing `True`/`None`.

use minijinja::value::{Value, ValueKind, from_args};
use minijinja::{Error, ErrorKind, Output, State, escape_formatter};

/// The Python string/dict methods dbt projects commonly call, which minijinja lacks.
pub(super) fn pycompat(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            string_method(state, s, method, args)
        }
        ValueKind::Map => match method {
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let found = value.get_item(&key)?;
                Ok(if found.is_undefined() {
                    default.unwrap_or(Value::from(()))
                } else {
                    found
                })
            }
            "items" => state.apply_filter("items", std::slice::from_ref(value)),
            "keys" => Ok(Value::from(value.try_iter()?.collect::<Vec<_>>())),
            "values" => {
                let mut values = Vec::new();
                for key in value.try_iter()? {
                    values.push(value.get_item(&key)?);
                }
                Ok(Value::from(values))
            }
            "copy" => Ok(value.clone()),
            "update" | "pop" | "setdefault" | "clear" => Err(immutable(method)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        ValueKind::Seq => match method {
            "index" => {
                let (needle,): (Value,) = from_args(args)?;
                let position = value.try_iter()?.position(|v| v == needle);
                position.map(Value::from).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "value is not in the list")
                })
            }
            "count" => {
                let (needle,): (Value,) = from_args(args)?;
                Ok(Value::from(
                    value.try_iter()?.filter(|v| v == &needle).count(),
                ))
            }
            "append" | "extend" | "insert" | "pop" | "remove" | "sort" | "reverse" | "clear" => {
                Err(immutable(method))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

fn immutable(method: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "lists and dicts cannot be changed in place in Strata's Jinja (.{method}()); \
             build a new one instead, e.g. {{% set xs = xs + [x] %}}"
        ),
    )
}

fn string_method(state: &State, s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    let strip_set = |args: &[Value]| -> Result<Option<String>, Error> {
        let (chars,): (Option<String>,) = from_args(args)?;
        Ok(chars)
    };
    Ok(match method {
        "upper" => Value::from(s.to_uppercase()),
        "lower" => Value::from(s.to_lowercase()),
        "title" | "capitalize" => state.apply_filter(method, &[Value::from(s)])?,
        "strip" | "lstrip" | "rstrip" => {
            let chars = strip_set(args)?;
            let is_stripped = |c: char| match &chars {
                Some(set) => set.contains(c),
                None => c.is_whitespace(),
            };
            Value::from(match method {
                "strip" => s.trim_matches(is_stripped),
                "lstrip" => s.trim_start_matches(is_stripped),
                _ => s.trim_end_matches(is_stripped),
            })
        }
        "replace" => {
            let (old, new, count): (String, String, Option<i64>) = from_args(args)?;
            match count {
                Some(n) if n >= 0 => Value::from(s.replacen(&old, &new, n as usize)),
                _ => Value::from(s.replace(&old, &new)),
            }
        }
        "split" => {
            let (sep, maxsplit): (Option<String>, Option<i64>) = from_args(args)?;
            let parts: Vec<String> = match (sep, maxsplit) {
                (None, _) => s.split_whitespace().map(str::to_string).collect(),
                (Some(sep), Some(n)) if n >= 0 => {
                    s.splitn(n as usize + 1, &sep).map(str::to_string).collect()
                }
                (Some(sep), _) => s.split(&sep).map(str::to_string).collect(),
            };
            Value::from(parts)
        }
        "startswith" | "endswith" => {
            let (what,): (Value,) = from_args(args)?;
            let candidates: Vec<String> = if what.kind() == ValueKind::String {
                vec![what.to_string()]
            } else {
                what.try_iter()?.map(|v| v.to_string()).collect()
            };
            Value::from(candidates.iter().any(|c| {
                if method == "startswith" {
                    s.starts_with(c.as_str())
                } else {
                    s.ends_with(c.as_str())
                }
            }))
        }
        "join" => {
            let (items,): (Value,) = from_args(args)?;
            let parts: Vec<String> = items.try_iter()?.map(|v| v.to_string()).collect();
            Value::from(parts.join(s))
        }
        "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        "isalpha" => Value::from(!s.is_empty() && s.chars().all(char::is_alphabetic)),
        "isupper" => Value::from(s.chars().any(char::is_alphabetic) && s == s.to_uppercase()),
        "islower" => Value::from(s.chars().any(char::is_alphabetic) && s == s.to_lowercase()),
        "count" => {
            let (needle,): (String,) = from_args(args)?;
            Value::from(if needle.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(&needle).count()
            })
        }
        "find" => {
            let (needle,): (String,) = from_args(args)?;
            Value::from(
                s.find(&needle)
                    .map_or(-1, |i| s[..i].chars().count() as i64),
            )
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

/// Renders `{{ true }}` and `{{ none }}` as Jinja2 (and so dbt) does: `True`, `None`.
pub(super) fn python_formatter(
    out: &mut Output,
    state: &State,
    value: &Value,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Bool => out
            .write_str(if value.is_true() { "True" } else { "False" })
            .map_err(Error::from),
        ValueKind::None => out.write_str("None").map_err(Error::from),
        _ => escape_formatter(out, state, value),
    }
}
