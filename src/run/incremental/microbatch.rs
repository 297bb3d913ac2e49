//! dbt's microbatch strategy: the model runs once per `batch_size` window of its `event_time`,
//! its refs and sources that configure an `event_time` read only that window (its templates
//! see the batch as `model.batch`), and each batch replaces the table's rows in its window in
//! its own commit. A first build (or `--full-refresh`) runs from
//! `begin`; later runs the current batch and `lookback` earlier ones; `--event-time-start` /
//! `--event-time-end` pick the windows of a backfill. A failed batch leaves the others
//! committed (the model a partial success), and a retry builds only the failed ones.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Timelike, Utc};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, cast, lit};
use datafusion::prelude::SessionContext;

use super::config::{BatchSize, Incremental, Microbatch};
use super::{IncrementalError, Outcome};
use crate::jinja::context::batch_value;
use crate::lake::Lake;
use crate::lake::write::CommitMetadata;
use crate::project::{Node, Project, SourceTable};
use crate::run::execute::compile_batch;
use crate::run::introspect::SessionWarehouse;
use crate::run::materialize::{self, Committed, Relation, quote};
use crate::run::nodes::{relation_of, relation_sql, source_sql};

/// The `--event-time-start` / `--event-time-end` of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventTimes {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// One batch: `start <= event_time < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub size: BatchSize,
}

impl Window {
    /// The window as a predicate on `column` of type `data_type`: bounds of the column's own
    /// type where it is a date or timestamp (delta-rs reads the predicate against the table's
    /// types, and Delta keeps timestamps in microseconds).
    pub fn predicate(&self, column: &str, data_type: &DataType) -> Expr {
        let bound = |t: DateTime<Utc>| match data_type {
            DataType::Date32 => lit(ScalarValue::Date32(Some(
                (t.date_naive() - DateTime::UNIX_EPOCH.date_naive()).num_days() as i32,
            ))),
            DataType::Timestamp(_, tz) => lit(ScalarValue::TimestampMicrosecond(
                Some(t.timestamp_micros()),
                tz.clone(),
            )),
            other => cast(
                lit(ScalarValue::TimestampMicrosecond(
                    Some(t.timestamp_micros()),
                    None,
                )),
                other.clone(),
            ),
        };
        let column = Expr::Column(datafusion::common::Column::new_unqualified(column));
        column
            .clone()
            .gt_eq(bound(self.start))
            .and(column.lt(bound(self.end)))
    }

    /// dbt's batch id: the window's start as `20260301` (`20260301T10` by the hour).
    pub fn id(&self) -> String {
        let format = match self.size {
            BatchSize::Hour => "%Y%m%dT%H",
            BatchSize::Day => "%Y%m%d",
            BatchSize::Month => "%Y%m",
            BatchSize::Year => "%Y",
        };
        self.start.format(format).to_string()
    }

    /// The batch as the model's templates see it: `model.batch`.
    fn jinja(&self) -> minijinja::Value {
        batch_value(&self.id(), self.start, self.end)
    }

    /// The window as a SQL condition on `column`.
    pub fn sql(&self, column: &str) -> String {
        let at =
            |t: DateTime<Utc>| format!("cast('{}' as timestamp)", t.format("%Y-%m-%d %H:%M:%S"));
        let column = quote(column);
        format!(
            "{column} >= {} and {column} < {}",
            at(self.start),
            at(self.end)
        )
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match self.size {
            BatchSize::Hour => "%Y-%m-%d %H:00",
            BatchSize::Day => "%Y-%m-%d",
            BatchSize::Month => "%Y-%m",
            BatchSize::Year => "%Y",
        };
        write!(f, "{}", self.start.format(format))
    }
}

/// The start of the batch `t` falls in.
fn truncate(t: DateTime<Utc>, size: BatchSize) -> DateTime<Utc> {
    let date = match size {
        BatchSize::Hour | BatchSize::Day => t.date_naive(),
        BatchSize::Month => NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or_default(),
        BatchSize::Year => NaiveDate::from_ymd_opt(t.year(), 1, 1).unwrap_or_default(),
    };
    let hour = match size {
        BatchSize::Hour => t.hour(),
        _ => 0,
    };
    date.and_hms_opt(hour, 0, 0).unwrap_or_default().and_utc()
}

/// `t` moved by `n` batches.
fn advance(t: DateTime<Utc>, size: BatchSize, n: i64) -> DateTime<Utc> {
    let months = |m: i64| {
        let by = Months::new(m.unsigned_abs() as u32);
        match m >= 0 {
            true => t.checked_add_months(by),
            false => t.checked_sub_months(by),
        }
        .unwrap_or(t)
    };
    match size {
        BatchSize::Hour => t + Duration::hours(n),
        BatchSize::Day => t + Duration::days(n),
        BatchSize::Month => months(n),
        BatchSize::Year => months(12 * n),
    }
}

/// The batches a run builds, oldest first: from the backfill's start, else (incremental) the
/// current batch less `lookback`, else `begin`; up to the backfill's end, else through the
/// batch holding `now`.
pub fn batches(
    config: &Microbatch,
    incremental: bool,
    times: EventTimes,
    now: DateTime<Utc>,
) -> Vec<Window> {
    let size = config.batch_size;
    let start = match times.start {
        Some(start) => truncate(start, size),
        None if incremental => advance(truncate(now, size), size, -i64::from(config.lookback)),
        None => truncate(config.begin, size),
    };
    let end = times
        .end
        .unwrap_or_else(|| advance(truncate(now, size), size, 1));
    let mut windows = Vec::new();
    let mut at = start;
    while at < end {
        let next = advance(at, size, 1);
        windows.push(Window {
            start: at,
            end: next.min(end),
            size,
        });
        at = next;
    }
    windows
}

/// Which batches a run builds: those of `--event-time-*` (or begin / lookback), or exactly the
/// windows a retry names (the ones that failed before).
#[derive(Debug, Clone, Copy)]
pub enum Windows<'a> {
    Planned(EventTimes),
    Retry(&'a [Window]),
}

/// A model's batches by outcome, oldest first (dbt's `batch_results`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResults {
    pub successful: Vec<Window>,
    pub failed: Vec<Window>,
}

/// What a microbatch model's run did: what it committed, each batch's outcome and, per failed
/// batch, why.
#[derive(Debug, Default)]
pub struct Microbatched {
    pub outcome: Outcome,
    pub batches: BatchResults,
    pub errors: Vec<String>,
}

/// A microbatch model's run: each batch compiled with its inputs filtered to the window and
/// committed alone. `incremental`: the table exists and is not being refreshed. As in dbt ≥ 1.9
/// every batch runs even when one fails (the model is then a partial success and the committed
/// batches stay), except after a failed first batch, which the others build on.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    node: &Node,
    config: &Incremental,
    incremental: bool,
    windows: Windows<'_>,
    commit: CommitMetadata,
) -> Result<Microbatched, IncrementalError> {
    let Some(batch) = &config.microbatch else {
        return Ok(Microbatched::default());
    };
    let relation = relation_of(node);
    let windows = match windows {
        Windows::Planned(times) => batches(batch, incremental, times, Utc::now()),
        Windows::Retry(windows) => windows.to_vec(),
    };
    let mut run = Microbatched::default();
    let mut rows = 0;
    for (index, window) in windows.iter().enumerate() {
        if index > 0 && run.batches.successful.is_empty() {
            run.batches.failed.push(*window);
            continue;
        }
        let replace_table = !incremental && index == 0;
        let result = run_batch(
            ctx,
            lake,
            project,
            node,
            config,
            window,
            replace_table,
            commit.clone(),
        )
        .await;
        match result {
            Ok(batch_outcome) => {
                rows += batch_outcome.committed.rows.unwrap_or(0);
                run.outcome.committed = Committed {
                    rows: Some(rows),
                    version: batch_outcome
                        .committed
                        .version
                        .or(run.outcome.committed.version),
                };
                run.outcome.notes.extend(batch_outcome.notes);
                run.batches.successful.push(*window);
                tracing::info!(model = %relation, "batch {window} committed");
            }
            Err(source) => {
                run.batches.failed.push(*window);
                run.errors.push(
                    IncrementalError::Batch {
                        relation: relation.to_string(),
                        batch: format!("{window} ({} of {})", index + 1, windows.len()),
                        source: Box::new(source),
                    }
                    .to_string(),
                );
            }
        }
    }
    if run.batches.successful.is_empty() && windows.len() > 1 && !run.errors.is_empty() {
        run.errors.push(format!(
            "the {} later batches were not run: they build on the first",
            windows.len() - 1
        ));
    }
    let done: Vec<String> = run
        .batches
        .successful
        .iter()
        .map(ToString::to_string)
        .collect();
    run.outcome
        .notes
        .push(match (done.as_slice(), run.batches.failed.len()) {
            ([], 0) => "no batches to run".to_string(),
            ([one], 0) => format!("1 batch: {one}"),
            (many, 0) => format!("{} batches: {}", many.len(), many.join(", ")),
            (_, failed) => format!(
                "{} of {} batches committed: {}",
                done.len(),
                done.len() + failed,
                done.join(", ")
            ),
        });
    Ok(run)
}

/// One batch: the model compiled for `window` and committed (replacing the whole table for the
/// first batch of a first build or full refresh).
#[allow(clippy::too_many_arguments)]
async fn run_batch(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    node: &Node,
    config: &Incremental,
    window: &Window,
    replace_table: bool,
    commit: CommitMetadata,
) -> Result<Outcome, IncrementalError> {
    let in_window = |sql: String, event_time: Option<&str>| match event_time {
        Some(column) => format!("(select * from {sql} where {})", window.sql(column)),
        None => sql,
    };
    let filtered = |n: &Node| {
        let event_time = n.config.extra.get("event_time").and_then(|v| v.as_str());
        let own = n.unique_id == node.unique_id;
        in_window(relation_sql(&relation_of(n)), event_time.filter(|_| !own))
    };
    let filtered_source = |s: &SourceTable| in_window(source_sql(s), s.event_time.as_deref());
    let warehouse = Arc::new(SessionWarehouse::new(ctx.clone()));
    let sql = compile_batch(
        project,
        node,
        !replace_table,
        Some(warehouse),
        &filtered,
        &filtered_source,
        window.jinja(),
    )?;
    let relation: Relation = relation_of(node);
    if replace_table {
        let event_time = config.microbatch.as_ref().map(|b| b.event_time.as_str());
        let windowed = match event_time {
            Some(column) => format!(
                "select * from ({sql}) dbt_batch where {}",
                window.sql(column)
            ),
            None => sql,
        };
        let committed = materialize::table(
            ctx,
            lake,
            &relation,
            &windowed,
            &config.partition_by,
            commit,
        )
        .await?;
        return Ok(Outcome {
            committed,
            notes: Vec::new(),
        });
    }
    super::apply(ctx, lake, &relation, &sql, config, Some(window), commit).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::incremental::config::parse_time;

    fn config(size: BatchSize, begin: &str, lookback: u32) -> Microbatch {
        Microbatch {
            event_time: "at".into(),
            batch_size: size,
            begin: parse_time(begin).unwrap(),
            lookback,
        }
    }

    fn shown(windows: &[Window]) -> Vec<String> {
        windows.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn batches_run_from_begin_then_the_current_one_with_lookback() {
        let now = parse_time("2026-03-03 10:30:00").unwrap();
        let day = config(BatchSize::Day, "2026-03-01", 1);
        let none = EventTimes::default();
        assert_eq!(
            shown(&batches(&day, false, none, now)),
            ["2026-03-01", "2026-03-02", "2026-03-03"]
        );
        assert_eq!(
            shown(&batches(&day, true, none, now)),
            ["2026-03-02", "2026-03-03"]
        );
        let last = batches(&day, true, none, now)[1];
        assert_eq!(last.end, parse_time("2026-03-04").unwrap());

        let month = config(BatchSize::Month, "2025-11-15", 0);
        assert_eq!(
            shown(&batches(&month, false, none, now)),
            ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]
        );
        let hour = config(BatchSize::Hour, "2026-03-03 08:10:00", 2);
        assert_eq!(
            shown(&batches(&hour, true, none, now)),
            ["2026-03-03 08:00", "2026-03-03 09:00", "2026-03-03 10:00"]
        );
    }

    #[test]
    fn a_backfill_runs_the_windows_it_names() {
        let now = parse_time("2026-03-03 10:30:00").unwrap();
        let day = config(BatchSize::Day, "2026-01-01", 1);
        let times = EventTimes {
            start: parse_time("2026-02-10"),
            end: parse_time("2026-02-12 12:00:00"),
        };
        let windows = batches(&day, true, times, now);
        assert_eq!(shown(&windows), ["2026-02-10", "2026-02-11", "2026-02-12"]);
        assert_eq!(windows[2].end, parse_time("2026-02-12 12:00:00").unwrap());
        assert_eq!(
            windows[0].sql("at"),
            "\"at\" >= cast('2026-02-10 00:00:00' as timestamp) and \"at\" < cast('2026-02-11 00:00:00' as timestamp)"
        );
    }

    #[test]
    fn batch_ids_are_dbts() {
        let now = parse_time("2026-03-03 10:30:00").unwrap();
        let id = |size| {
            batches(
                &config(size, "2026-03-03 10:00:00", 0),
                false,
                EventTimes::default(),
                now,
            )[0]
            .id()
        };
        assert_eq!(id(BatchSize::Hour), "20260303T10");
        assert_eq!(id(BatchSize::Day), "20260303");
        assert_eq!(id(BatchSize::Month), "202603");
        assert_eq!(id(BatchSize::Year), "2026");
    }
}
