//! Session parameters (`SET` / `SHOW` / `RESET`): the ones drivers and tools send on connect,
//! with PostgreSQL's names and defaults, and the few that change how Strata runs a query.

use std::collections::BTreeMap;
use std::time::Duration;

use super::errors::sqlstate;
use crate::config::ServerConfig;
use crate::sql::search_path::SearchPath;
use crate::sql::timetravel::AS_OF_RUN;

/// The version clients parse (SQLAlchemy, pgjdbc and Superset read the leading number).
pub const SERVER_VERSION: &str = "16.0";
pub const SERVER_VERSION_NUM: &str = "160000";

/// Parameters PostgreSQL reports to clients at startup and whenever they change.
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "standard_conforming_strings",
    "TimeZone",
];

/// Known parameters: canonical name, default, description. Names compare case-insensitively.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "application_name",
        "",
        "Name of the connecting application.",
    ),
    ("bytea_output", "hex", "Output format of bytea values."),
    ("client_encoding", "UTF8", "The client's character set."),
    (
        "client_min_messages",
        "notice",
        "Lowest message level sent to the client.",
    ),
    ("DateStyle", "ISO, MDY", "Display format of dates."),
    (
        "default_transaction_isolation",
        "read committed",
        "Isolation level of new transactions.",
    ),
    (
        "default_transaction_read_only",
        "on",
        "Every transaction is read-only: the lake is written by models.",
    ),
    (
        "extra_float_digits",
        "1",
        "Extra digits in floating-point output.",
    ),
    (
        "idle_in_transaction_session_timeout",
        "0",
        "Idle-in-transaction timeout.",
    ),
    ("idle_session_timeout", "0", "Idle session timeout."),
    ("integer_datetimes", "on", "Datetimes are 64-bit integers."),
    ("IntervalStyle", "postgres", "Display format of intervals."),
    ("is_superuser", "off", "Whether the user is a superuser."),
    ("jit", "off", "JIT compilation."),
    ("lc_collate", "C", "Collation order."),
    ("lc_ctype", "C", "Character classification."),
    ("lc_messages", "C", "Language of messages."),
    ("lc_monetary", "C", "Monetary formatting."),
    ("lc_numeric", "C", "Number formatting."),
    ("lc_time", "C", "Date and time formatting."),
    ("lock_timeout", "0", "Lock wait timeout."),
    ("max_identifier_length", "63", "Longest identifier length."),
    ("max_index_keys", "32", "Most columns an index may have."),
    ("row_security", "on", "Row security."),
    // The session's default is the path over the lake's schemas (see `Settings::new`).
    ("search_path", "\"$user\", public", "Schema search order."),
    ("server_encoding", "UTF8", "The server's character set."),
    (
        "server_version",
        SERVER_VERSION,
        "PostgreSQL version reported.",
    ),
    (
        "server_version_num",
        SERVER_VERSION_NUM,
        "PostgreSQL version reported, as a number.",
    ),
    (
        "standard_conforming_strings",
        "on",
        "Backslashes in ordinary string literals are literal.",
    ),
    (
        "statement_timeout",
        "0",
        "Longest a statement may run (milliseconds unless a unit is given).",
    ),
    ("TimeZone", "UTC", "Time zone of timestamps shown."),
    (
        "transaction_isolation",
        "read committed",
        "Isolation level of the current transaction.",
    ),
    (
        "transaction_read_only",
        "on",
        "The current transaction is read-only.",
    ),
    (
        AS_OF_RUN,
        "",
        "Read every lake table as a given run left it.",
    ),
];

/// A `SET` that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("unrecognized configuration parameter \"{0}\"")]
    Unknown(String),
    #[error("parameter \"{name}\" cannot be changed")]
    ReadOnly { name: String },
    #[error("invalid value for parameter \"{name}\": \"{value}\"")]
    Invalid { name: String, value: String },
}

impl SettingError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SettingError::Unknown(_) => sqlstate::UNDEFINED_OBJECT,
            SettingError::ReadOnly { .. } => "55P02",
            SettingError::Invalid { .. } => sqlstate::INVALID_PARAMETER_VALUE,
        }
    }
}

/// Parameters fixed by the server.
const READ_ONLY: &[&str] = &[
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "is_superuser",
    "max_identifier_length",
    "max_index_keys",
    "lc_collate",
    "lc_ctype",
];

/// Every known parameter with its default and description, and whether the server fixes it
/// (`pg_settings`).
pub fn known() -> impl Iterator<Item = (&'static str, &'static str, &'static str, bool)> {
    KNOWN.iter().map(|&(name, default, description)| {
        (name, default, description, READ_ONLY.contains(&name))
    })
}

/// One session's parameters.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, String>,
    defaults: BTreeMap<String, String>,
}

impl Settings {
    /// Defaults, with the server's timeouts, the session's search `path` and the client's
    /// startup parameters.
    pub fn new(server: &ServerConfig, path: &SearchPath, startup: &[(String, String)]) -> Self {
        let mut defaults: BTreeMap<String, String> = KNOWN
            .iter()
            .map(|(name, value, _)| (name.to_string(), value.to_string()))
            .collect();
        defaults.insert("search_path".to_string(), path.to_string());
        defaults.insert(
            "statement_timeout".to_string(),
            server.statement_timeout_ms.to_string(),
        );
        defaults.insert(
            "idle_session_timeout".to_string(),
            server.idle_session_timeout_ms.to_string(),
        );
        let mut settings = Self {
            values: defaults.clone(),
            defaults,
        };
        for (name, value) in startup {
            // Startup packets also carry user and database, which are not parameters.
            let _ = settings.set(name, Some(value));
        }
        settings
    }

    /// The canonical spelling of a parameter name.
    fn canonical(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        self.values
            .keys()
            .find(|k| k.to_ascii_lowercase() == lower)
            .cloned()
            .or_else(|| lower.contains('.').then_some(lower))
    }

    /// `SET name = value`; `None` is `SET name TO DEFAULT` / `RESET name`.
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), SettingError> {
        let canonical = self
            .canonical(name)
            .ok_or_else(|| SettingError::Unknown(name.to_string()))?;
        if READ_ONLY.contains(&canonical.as_str()) {
            return Err(SettingError::ReadOnly { name: canonical });
        }
        let value = match value {
            Some(v) => normalize(&canonical, v)?,
            None => self.defaults.get(&canonical).cloned().unwrap_or_default(),
        };
        self.values.insert(canonical, value);
        Ok(())
    }

    pub fn reset_all(&mut self) {
        self.values = self.defaults.clone();
    }

    /// `SHOW name`: the canonical name and the value.
    pub fn show(&self, name: &str) -> Result<(String, String), SettingError> {
        let canonical = self
            .canonical(name)
            .ok_or_else(|| SettingError::Unknown(name.to_string()))?;
        let value = self
            .values
            .get(&canonical)
            .cloned()
            .ok_or_else(|| SettingError::Unknown(name.to_string()))?;
        let shown = displayed(&canonical, &value);
        Ok((canonical, shown))
    }

    /// `SHOW ALL`: name, setting, description.
    pub fn all(&self) -> Vec<(String, String, String)> {
        self.values
            .iter()
            .map(|(name, value)| {
                let description = KNOWN
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, _, d)| d.to_string())
                    .unwrap_or_default();
                (name.clone(), displayed(name, value), description)
            })
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn statement_timeout(&self) -> Option<Duration> {
        self.millis("statement_timeout")
    }

    pub fn idle_session_timeout(&self) -> Option<Duration> {
        self.millis("idle_session_timeout")
    }

    /// A time parameter; 0 is "none".
    fn millis(&self, name: &str) -> Option<Duration> {
        let ms = self.get(name).and_then(|v| v.parse::<u64>().ok())?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    /// The schemas unqualified names are searched in.
    pub fn search_path(&self) -> SearchPath {
        SearchPath::parse(self.get("search_path").unwrap_or_default())
    }
}

/// Checks and normalizes values whose meaning Strata relies on.
fn normalize(name: &str, value: &str) -> Result<String, SettingError> {
    let invalid = || SettingError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
    };
    match name {
        name if TIME_PARAMETERS.contains(&name) => duration_ms(value)
            .map(|ms| ms.to_string())
            .ok_or_else(invalid),
        "client_encoding" => match value.to_ascii_uppercase().replace('-', "").as_str() {
            "UTF8" | "UNICODE" => Ok("UTF8".to_string()),
            // Everything Strata sends is UTF-8; PostgreSQL would transcode.
            _ => Err(invalid()),
        },
        "TimeZone" => {
            let tz = value.trim();
            if tz.eq_ignore_ascii_case("utc") || tz.eq_ignore_ascii_case("gmt") {
                Ok("UTC".to_string())
            } else if is_fixed_offset(tz) || tz.contains('/') {
                Ok(tz.to_string())
            } else {
                Err(invalid())
            }
        }
        _ => Ok(value.to_string()),
    }
}

/// A value as SHOW prints it: time parameters (kept in milliseconds) in the largest unit
/// that divides them, as PostgreSQL does (`5s`, `1500ms`, `1min`, `0`).
fn displayed(name: &str, value: &str) -> String {
    let Some(ms) = TIME_PARAMETERS
        .contains(&name)
        .then(|| value.parse::<u64>().ok())
        .flatten()
    else {
        return value.to_string();
    };
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1000, "s"),
    ];
    if ms == 0 {
        return "0".to_string();
    }
    UNITS.iter().find(|(size, _)| ms % size == 0).map_or_else(
        || format!("{ms}ms"),
        |(size, unit)| format!("{}{unit}", ms / size),
    )
}

/// Parameters holding a duration in milliseconds.
const TIME_PARAMETERS: [&str; 3] = ["statement_timeout", "idle_session_timeout", "lock_timeout"];

/// PostgreSQL's duration syntax for time parameters: a number of milliseconds, or a number
/// with a unit (`us`, `ms`, `s`, `min`, `h`, `d`).
fn duration_ms(value: &str) -> Option<u64> {
    let v = value.trim().trim_matches('\'');
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some((number * factor).round() as u64)
}

/// A fixed UTC offset as `SET TIME ZONE` accepts it (`+02:00`, `-5`).
fn is_fixed_offset(tz: &str) -> bool {
    tz.strip_prefix(['+', '-']).is_some_and(|rest| {
        rest.split(':').all(|part| {
            !part.is_empty() && part.len() <= 2 && part.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_show_reset_follow_postgres() {
        let path = SearchPath::parse("public, main, gold");
        let mut s = Settings::new(
            &ServerConfig::default(),
            &path,
            &[("application_name".into(), "psql".into())],
        );
        assert_eq!(s.show("search_path").unwrap().1, "public, main, gold");
        assert_eq!(
            s.show("APPLICATION_NAME").unwrap(),
            ("application_name".into(), "psql".into())
        );
        s.set("datestyle", Some("ISO, DMY")).unwrap();
        assert_eq!(s.show("DateStyle").unwrap().1, "ISO, DMY");
        s.set("statement_timeout", Some("5s")).unwrap();
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(s.show("statement_timeout").unwrap().1, "5s");
        s.set("statement_timeout", Some("1500")).unwrap();
        assert_eq!(s.show("statement_timeout").unwrap().1, "1500ms");
        s.set("statement_timeout", None).unwrap();
        assert_eq!(s.statement_timeout(), None);
        assert!(matches!(
            s.set("no_such_thing", Some("1")),
            Err(SettingError::Unknown(_))
        ));
        assert!(matches!(
            s.set("server_version", Some("1")),
            Err(SettingError::ReadOnly { .. })
        ));
        s.set("strata.as_of_run", Some("abc")).unwrap();
        assert_eq!(s.get(AS_OF_RUN), Some("abc"));
        s.set("search_path", Some("gold, public")).unwrap();
        assert_eq!(s.search_path().first(), "gold");
        s.set("TimeZone", Some("Europe/Paris")).unwrap();
        assert!(s.set("TimeZone", Some("nowhere")).is_err());
        s.reset_all();
        assert_eq!(s.show("timezone").unwrap().1, "UTC");
        assert_eq!(s.search_path(), path);
    }
}
