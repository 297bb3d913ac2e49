//! A source table's `freshness:` criteria, as dbt reads them: the table's `freshness` merged
//! over its source's (each of `warn_after` / `error_after` key by key), `freshness: null`
//! turning it off, and no criteria at all without a threshold.

use serde::Serialize;
use serde_json::{Map as JsonMap, Value as Json};

/// How old the latest load may be before a source is stale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Freshness {
    pub warn_after: Option<Threshold>,
    pub error_after: Option<Threshold>,
    /// A SQL condition on the rows whose latest load counts.
    pub filter: Option<String>,
}

/// `{count: 12, period: hour}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Threshold {
    pub count: u64,
    pub period: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Minute,
    Hour,
    Day,
}

impl Threshold {
    pub fn seconds(&self) -> u64 {
        let unit = match self.period {
            Period::Minute => 60,
            Period::Hour => 3600,
            Period::Day => 86_400,
        };
        self.count.saturating_mul(unit)
    }

    /// Whether a load `age_seconds` old is past the threshold (dbt: strictly older).
    pub fn exceeded(&self, age_seconds: f64) -> bool {
        age_seconds > self.seconds() as f64
    }
}

/// The criteria of a table from its source's `freshness` and its own (each as written: absent
/// is `None`, null is `Some(Json::Null)`); an error says which key is wrong.
pub(crate) fn merged(
    source: Option<&Json>,
    table: Option<&Json>,
) -> Result<Option<Freshness>, String> {
    let value = match (source, table) {
        (_, Some(Json::Null)) | (Some(Json::Null) | None, None) => return Ok(None),
        (Some(Json::Object(base)), Some(Json::Object(update))) => {
            Json::Object(merge_maps(base, update))
        }
        (_, Some(value)) | (Some(value), None) => value.clone(),
    };
    parse(&value)
}

/// `update` over `base`, merging `warn_after` and `error_after` one level deeper.
fn merge_maps(
    base: &JsonMap<String, Json>,
    update: &JsonMap<String, Json>,
) -> JsonMap<String, Json> {
    let mut merged = base.clone();
    for (key, value) in update {
        match (merged.get_mut(key), value) {
            (Some(Json::Object(old)), Json::Object(new))
                if key == "warn_after" || key == "error_after" =>
            {
                old.extend(new.clone());
            }
            _ => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}

fn parse(value: &Json) -> Result<Option<Freshness>, String> {
    let Json::Object(map) = value else {
        return Err(format!("freshness must be a mapping, got {value}"));
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "warn_after" | "error_after" | "filter") {
            return Err(format!(
                "freshness: unknown key '{key}' (expected warn_after, error_after, filter)"
            ));
        }
    }
    let filter = match map.get("filter") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("freshness.filter must be text, got {other}")),
    };
    let freshness = Freshness {
        warn_after: threshold(map.get("warn_after"), "warn_after")?,
        error_after: threshold(map.get("error_after"), "error_after")?,
        filter,
    };
    Ok((freshness.warn_after.is_some() || freshness.error_after.is_some()).then_some(freshness))
}

fn threshold(value: Option<&Json>, key: &str) -> Result<Option<Threshold>, String> {
    let map = match value {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Object(map)) if map.values().all(Json::is_null) => return Ok(None),
        Some(Json::Object(map)) => map,
        Some(other) => {
            return Err(format!(
                "freshness.{key} must be {{count: <n>, period: minute|hour|day}}, got {other}"
            ));
        }
    };
    let count = match map.get("count") {
        Some(Json::Number(n)) => n.as_u64(),
        Some(Json::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("freshness.{key}.count must be a whole number of periods"))?;
    let period = match map.get("period").and_then(Json::as_str) {
        Some("minute") => Period::Minute,
        Some("hour") => Period::Hour,
        Some("day") => Period::Day,
        _ => {
            return Err(format!(
                "freshness.{key}.period must be minute, hour or day"
            ));
        }
    };
    Ok(Some(Threshold { count, period }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_tables_freshness_merges_over_the_sources() {
        let source = json!({"warn_after": {"count": 12, "period": "hour"}, "error_after": {"count": 1, "period": "day"}});
        let table = json!({"warn_after": {"count": 30}, "filter": "x > 1"});
        let merged = merged(Some(&source), Some(&table)).unwrap().unwrap();
        assert_eq!(
            merged.warn_after,
            Some(Threshold {
                count: 30,
                period: Period::Hour
            })
        );
        assert_eq!(merged.error_after.unwrap().seconds(), 86_400);
        assert_eq!(merged.filter.as_deref(), Some("x > 1"));
        assert_eq!(
            super::merged(Some(&source), Some(&Json::Null)).unwrap(),
            None
        );
        assert_eq!(super::merged(None, None).unwrap(), None);
        assert!(super::merged(Some(&source), None).unwrap().is_some());
        let no_threshold = json!({"warn_after": {"count": null, "period": null}});
        assert_eq!(super::merged(None, Some(&no_threshold)).unwrap(), None);
        let bad = json!({"warn_after": {"count": 1, "period": "week"}});
        assert!(
            super::merged(None, Some(&bad))
                .unwrap_err()
                .contains("period")
        );
    }

    #[test]
    fn a_threshold_is_exceeded_only_past_it() {
        let hour = Threshold {
            count: 1,
            period: Period::Hour,
        };
        assert!(!hour.exceeded(3600.0));
        assert!(hour.exceeded(3600.5));
    }
}
