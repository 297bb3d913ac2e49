//! `strata source freshness` (dbt's `source freshness`): for each selected source table with
//! `freshness:` criteria, when it last loaded (the maximum of its `loaded_at_field`, or for a
//! bronze table without one the latest landing the ingest log records for it) and whether
//! that is older than `warn_after` / `error_after`. Reads only; [`artifact`] writes dbt's
//! `sources.json`.

pub mod artifact;

use std::time::Instant;

use arrow::array::{Array, ArrayRef, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;

use super::RunError;
use super::nodes::{graph_of, source_sql};
use crate::lake::Lake;
use crate::meta::{IngestLog, IngestRecord};
use crate::project::freshness::Freshness;
use crate::project::{Project, SourceTable};
use crate::warehouse::catalog::BRONZE;

/// dbt's freshness statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Error,
    /// The load time could not be read.
    RuntimeError,
}

impl Status {
    /// As dbt writes it in `sources.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Error => "error",
            Status::RuntimeError => "runtime error",
        }
    }
}

/// When a table last loaded, as of when that was asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loaded {
    pub max_loaded_at: DateTime<Utc>,
    pub snapshotted_at: DateTime<Utc>,
}

impl Loaded {
    pub fn age_seconds(&self) -> f64 {
        (self.snapshotted_at - self.max_loaded_at)
            .num_microseconds()
            .unwrap_or(i64::MAX) as f64
            / 1e6
    }
}

/// One table's check.
#[derive(Debug, Clone)]
pub struct Checked {
    pub source: SourceTable,
    pub criteria: Freshness,
    /// The load time, or why it could not be read.
    pub loaded: Result<Loaded, String>,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub seconds: f64,
}

/// The status of a load `age_seconds` old under `criteria` (error before warn, as dbt).
pub fn status(criteria: &Freshness, age_seconds: f64) -> Status {
    let past = |t: &Option<crate::project::freshness::Threshold>| {
        t.as_ref().is_some_and(|t| t.exceeded(age_seconds))
    };
    if past(&criteria.error_after) {
        Status::Error
    } else if past(&criteria.warn_after) {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// The source tables `select` and `exclude` pick (all without `select`) that have freshness
/// criteria, in their order in the project, and the selectors that matched nothing.
pub fn selected<'p>(
    project: &'p Project,
    select: &[String],
    exclude: &[String],
) -> Result<(Vec<&'p SourceTable>, Vec<String>), RunError> {
    let graph = graph_of(project)?;
    // Without a selection, a graph selects every node but the sources.
    let all = ["source:*".to_string()];
    let select = if select.is_empty() { &all[..] } else { select };
    let selection = graph.select(select, exclude)?;
    let tables = project
        .sources
        .values()
        .filter(|s| selection.ids.contains(&s.unique_id) && s.freshness.is_some())
        .collect();
    Ok((tables, selection.unmatched))
}

/// What landed, as the ingest log records it (or why it could not be read).
type Landings = Result<Vec<IngestRecord>, String>;

/// Checks `table` (which has criteria) in `ctx`.
async fn check(ctx: &SessionContext, landings: &Landings, table: &SourceTable) -> Checked {
    let criteria = table.freshness.clone().unwrap_or_default();
    let started_at = Utc::now();
    let clock = Instant::now();
    let loaded = match &table.loaded_at_field {
        Some(field) => max_of(ctx, table, field, criteria.filter.as_deref()).await,
        None if is_bronze(table) => latest_landing(landings, table),
        None => Err(format!(
            "{}: {} has no loaded_at_field, and it is not a bronze table whose landings the \
             ingest log records: set loaded_at_field to the column holding each row's load time",
            table.path.display(),
            table.unique_id
        )),
    }
    .map(|max_loaded_at| Loaded {
        max_loaded_at,
        snapshotted_at: Utc::now(),
    });
    let status = match &loaded {
        Ok(loaded) => status(&criteria, loaded.age_seconds()),
        Err(_) => Status::RuntimeError,
    };
    Checked {
        source: table.clone(),
        criteria,
        loaded,
        status,
        started_at,
        completed_at: Utc::now(),
        seconds: clock.elapsed().as_secs_f64(),
    }
}

/// Why `table`'s `freshness.filter` does not apply, if it does not: a bronze table without a
/// `loaded_at_field` is timed by its landings (dbt ignores it on metadata checks too, warning).
pub fn unapplied_filter(table: &SourceTable) -> Option<String> {
    let filter = table.freshness.as_ref()?.filter.as_ref()?;
    (table.loaded_at_field.is_none() && is_bronze(table)).then(|| {
        format!(
            "{}: {}: freshness.filter `{filter}` needs a loaded_at_field; the latest landing is \
             taken without it",
            table.path.display(),
            table.unique_id
        )
    })
}

/// Whether the table is a bronze table `strata land` fills.
fn is_bronze(table: &SourceTable) -> bool {
    table.schema == BRONZE && table.external_location.is_none()
}

/// dbt's `collect_freshness`: the maximum of `field` (a SQL expression) over the rows
/// `filter` keeps.
async fn max_of(
    ctx: &SessionContext,
    table: &SourceTable,
    field: &str,
    filter: Option<&str>,
) -> Result<DateTime<Utc>, String> {
    let filter = filter.map(|f| format!(" where {f}")).unwrap_or_default();
    let sql = format!(
        "select max({field}) as max_loaded_at from {}{filter}",
        source_sql(table)
    );
    let failed = |e: &dyn std::fmt::Display| format!("{}: {sql}: {e}", table.unique_id);
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|e| failed(&e))?
        .collect()
        .await
        .map_err(|e| failed(&e))?;
    let value = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| instant(b.column(0)))
        .transpose()
        .map_err(|e| failed(&e))?
        .flatten();
    value.ok_or_else(|| {
        format!(
            "{}: expected a non-null value of '{field}' but got null (no rows{})",
            table.unique_id,
            match filter.is_empty() {
                true => "",
                false => " pass the filter",
            }
        )
    })
}

/// The first value of `column` as a UTC instant (a timestamp without a time zone is UTC, as
/// Strata writes them; a date is its midnight; text is parsed).
fn instant(column: &ArrayRef) -> Result<Option<DateTime<Utc>>, arrow::error::ArrowError> {
    let tz = match column.data_type() {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, tz))?;
    let micros = micros
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("cast to microseconds");
    Ok((!micros.is_null(0))
        .then(|| DateTime::from_timestamp_micros(micros.value(0)))
        .flatten())
}

/// When the last file of the bronze table landed.
fn latest_landing(landings: &Landings, table: &SourceTable) -> Result<DateTime<Utc>, String> {
    landings
        .as_ref()
        .map_err(|e| format!("{}: {e}", table.unique_id))?
        .iter()
        .filter(|r| r.source == table.source_name && r.table_name == table.identifier)
        .map(|r| r.landed_at)
        .max()
        .ok_or_else(|| {
            format!(
                "{}: nothing has landed in {BRONZE} for {}.{} yet (`strata land`)",
                table.unique_id, table.source_name, table.identifier
            )
        })
}

/// Checks every table in turn, calling `report` with each as it finishes.
pub async fn check_all(
    ctx: &SessionContext,
    lake: &Lake,
    tables: &[&SourceTable],
    mut report: impl FnMut(&Checked),
) -> Vec<Checked> {
    let read_log = tables
        .iter()
        .any(|t| t.loaded_at_field.is_none() && is_bronze(t));
    let landings = match read_log {
        true => IngestLog::new()
            .records(lake)
            .await
            .map_err(|e| e.to_string()),
        false => Ok(Vec::new()),
    };
    let mut checked = Vec::with_capacity(tables.len());
    for table in tables {
        let result = check(ctx, &landings, table).await;
        report(&result);
        checked.push(result);
    }
    checked
}
