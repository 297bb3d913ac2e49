//! An incremental model's configs, typed: its strategy, the columns a merge updates, the
//! extra predicates, the schema change policy, partition columns and microbatch settings.
//! Read by the static check before anything runs (`run::config_check`) and again when the
//! model runs, so a misspelt value fails that model, naming it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value as Json;

use crate::project::Node;

/// How new rows meet the table's (dbt's `incremental_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Rows matching on `unique_key` are updated, others inserted.
    Merge,
    /// Rows are added.
    Append,
    /// Rows whose `unique_key` the new rows carry are deleted, then the new rows inserted.
    DeleteInsert,
    /// The partitions (`partition_by`) the new rows touch are replaced by them.
    InsertOverwrite,
    /// The model is run per `event_time` window, each window replacing the table's rows in it.
    Microbatch,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Merge => "merge",
            Strategy::Append => "append",
            Strategy::DeleteInsert => "delete+insert",
            Strategy::InsertOverwrite => "insert_overwrite",
            Strategy::Microbatch => "microbatch",
        }
    }
}

/// What a run does when the query's columns differ from the table's (`on_schema_change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSchemaChange {
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

/// The width of a microbatch window (`batch_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

/// A microbatch model's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Microbatch {
    /// The model's own time column: each batch replaces the table's rows within its window.
    pub event_time: String,
    pub batch_size: BatchSize,
    /// Where the first build starts.
    pub begin: DateTime<Utc>,
    /// Earlier batches an incremental run reprocesses besides the current one (dbt: 1).
    pub lookback: u32,
}

/// An incremental model's configs.
#[derive(Debug, Clone, PartialEq)]
pub struct Incremental {
    pub strategy: Strategy,
    pub unique_key: Vec<String>,
    /// `merge_update_columns`: the only columns a matched row takes from the new one.
    pub update_columns: Option<Vec<String>>,
    /// `merge_exclude_columns`: columns a matched row keeps.
    pub exclude_columns: Vec<String>,
    /// `incremental_predicates`: ANDed to the merge's (or delete's) condition.
    pub predicates: Vec<String>,
    pub on_schema_change: OnSchemaChange,
    pub partition_by: Vec<String>,
    pub microbatch: Option<Microbatch>,
}

/// A config value Strata cannot apply, naming the model.
#[derive(Debug, thiserror::Error)]
#[error("model '{model}': {message}")]
pub struct ConfigError {
    pub model: String,
    pub message: String,
}

impl Incremental {
    /// The configs of `node`, an incremental model.
    pub fn of(node: &Node) -> Result<Incremental, ConfigError> {
        let fail = |message: String| ConfigError {
            model: node.name.clone(),
            message,
        };
        let extra = &node.config.extra;
        let text = |key: &str| -> Result<Option<String>, ConfigError> {
            match extra.get(key) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.trim().to_string())),
                Some(Json::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(fail(format!("`{key}` must be text, got {other}"))),
            }
        };
        let list = |key: &str| columns(extra.get(key)).map_err(|m| fail(format!("`{key}` {m}")));
        let unique_key = node.config.unique_key.clone();
        let strategy = match text("incremental_strategy")?.map(|s| s.to_ascii_lowercase()) {
            None if unique_key.is_empty() => Strategy::Append,
            None => Strategy::Merge,
            Some(name) => match name.as_str() {
                "merge" => Strategy::Merge,
                "append" => Strategy::Append,
                "delete+insert" => Strategy::DeleteInsert,
                "insert_overwrite" => Strategy::InsertOverwrite,
                "microbatch" => Strategy::Microbatch,
                other => {
                    return Err(fail(format!(
                        "incremental_strategy '{other}' is not one Strata has \
                         (merge, append, delete+insert, insert_overwrite, microbatch)"
                    )));
                }
            },
        };
        let on_schema_change = match text("on_schema_change")?.map(|s| s.to_ascii_lowercase()) {
            None => OnSchemaChange::Ignore,
            Some(name) => match name.as_str() {
                "ignore" => OnSchemaChange::Ignore,
                "fail" => OnSchemaChange::Fail,
                "append_new_columns" => OnSchemaChange::AppendNewColumns,
                "sync_all_columns" => OnSchemaChange::SyncAllColumns,
                other => {
                    return Err(fail(format!(
                        "on_schema_change '{other}' is not one of ignore, fail, \
                         append_new_columns, sync_all_columns"
                    )));
                }
            },
        };
        let update_columns = match extra.get("merge_update_columns") {
            None | Some(Json::Null) => None,
            some => Some(columns(some).map_err(|m| fail(format!("`merge_update_columns` {m}")))?),
        };
        let config = Incremental {
            strategy,
            unique_key,
            update_columns,
            exclude_columns: list("merge_exclude_columns")?,
            predicates: list("incremental_predicates")?,
            on_schema_change,
            partition_by: partition_by(node)?,
            microbatch: match strategy {
                Strategy::Microbatch => Some(microbatch(&text, &fail)?),
                _ => None,
            },
        };
        config.check().map_err(fail)?;
        Ok(config)
    }

    /// Combinations dbt refuses too.
    fn check(&self) -> Result<(), String> {
        let keyed = matches!(self.strategy, Strategy::Merge | Strategy::DeleteInsert);
        if keyed && self.unique_key.is_empty() {
            return Err(format!(
                "incremental_strategy '{}' needs a unique_key",
                self.strategy.as_str()
            ));
        }
        if self.update_columns.is_some() && !self.exclude_columns.is_empty() {
            return Err(
                "merge_update_columns and merge_exclude_columns cannot both be set".to_string(),
            );
        }
        if self.strategy == Strategy::InsertOverwrite && self.partition_by.is_empty() {
            return Err("incremental_strategy 'insert_overwrite' needs partition_by".to_string());
        }
        Ok(())
    }
}

/// A microbatch model's settings, read by `text`; `fail` names the model.
fn microbatch(
    text: &dyn Fn(&str) -> Result<Option<String>, ConfigError>,
    fail: &dyn Fn(String) -> ConfigError,
) -> Result<Microbatch, ConfigError> {
    let required = |key: &str| {
        text(key)?.ok_or_else(|| fail(format!("incremental_strategy 'microbatch' needs `{key}`")))
    };
    let event_time = required("event_time")?;
    let batch_size = match required("batch_size")?.to_ascii_lowercase().as_str() {
        "hour" => BatchSize::Hour,
        "day" => BatchSize::Day,
        "month" => BatchSize::Month,
        "year" => BatchSize::Year,
        other => {
            return Err(fail(format!(
                "batch_size '{other}' is not one of hour, day, month, year"
            )));
        }
    };
    let begin = required("begin")?;
    let begin = parse_time(&begin)
        .ok_or_else(|| fail(format!("begin '{begin}' is not a date or timestamp")))?;
    let lookback = match text("lookback")? {
        None => 1,
        Some(n) => n
            .parse()
            .map_err(|_| fail(format!("lookback '{n}' is not a whole number")))?,
    };
    Ok(Microbatch {
        event_time,
        batch_size,
        begin,
        lookback,
    })
}

/// A date or timestamp as dbt accepts them (`2026-01-01`, `2026-01-01 10:00:00`, ISO 8601),
/// read as UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A model's `partition_by` (tables and incremental models).
pub fn partition_by(node: &Node) -> Result<Vec<String>, ConfigError> {
    partition_columns(node.config.extra.get("partition_by")).map_err(|m| ConfigError {
        model: node.name.clone(),
        message: format!("`partition_by` {m}"),
    })
}

/// A column name or a list of them.
pub(crate) fn columns(value: Option<&Json>) -> Result<Vec<String>, String> {
    crate::jinja::config_call::loose_list(value)
        .into_iter()
        .map(|item| match item {
            Json::String(s) => Ok(s),
            other => Err(format!("must be a name or a list of names, got {other}")),
        })
        .collect()
}

/// `partition_by` as dbt-duckdb and dbt-spark write it (a column or a list), or dbt-bigquery's
/// `{field: ...}`.
fn partition_columns(value: Option<&Json>) -> Result<Vec<String>, String> {
    match value {
        Some(Json::Object(map)) => match map.get("field") {
            Some(Json::String(field)) => Ok(vec![field.clone()]),
            _ => Err("as a mapping needs `field`".to_string()),
        },
        other => columns(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dbt_writes_them() {
        let day = parse_time("2026-01-02").unwrap();
        assert_eq!(day.to_rfc3339(), "2026-01-02T00:00:00+00:00");
        let hour = parse_time("2026-01-02 05:00:00").unwrap();
        assert_eq!(hour.to_rfc3339(), "2026-01-02T05:00:00+00:00");
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn partition_by_is_a_name_a_list_or_a_field() {
        let read = |v: Json| partition_columns(Some(&v)).unwrap();
        assert_eq!(read(serde_json::json!("day")), ["day"]);
        assert_eq!(read(serde_json::json!(["a", "b"])), ["a", "b"]);
        assert_eq!(read(serde_json::json!({"field": "d"})), ["d"]);
    }
}
