//! Snapshots (dbt's slowly changing dimensions, type 2): each run compares the snapshot's
//! query with the table's current records and closes the records whose row changed (or, with
//! `hard_deletes`, disappeared), inserting their new versions, in ONE Delta MERGE commit; the
//! first run creates the table. The SQL follows dbt-adapters' global-project snapshot macros
//! (`snapshot_staging_table`, `snapshot_merge_sql`, the timestamp and check strategies) so the
//! history matches what dbt keeps, with the `dbt_*` columns renamed by
//! `snapshot_meta_column_names`.

use chrono::{DateTime, Utc};
use datafusion::prelude::SessionContext;
use serde_json::Value as Json;

use super::materialize::{self, Committed, MaterializeError, Relation};
use super::nodes::relation_sql;
use crate::lake::write::CommitMetadata;
use crate::lake::{Lake, delta, layout};
use crate::project::Node;
use crate::sql::ident::ident;

/// How a snapshot's config says to keep history.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The columns (or expressions) identifying a record.
    pub unique_key: Vec<String>,
    pub strategy: Strategy,
    pub hard_deletes: HardDeletes,
    /// `dbt_valid_to_current`: the SQL value current records' `dbt_valid_to` holds instead
    /// of null.
    pub valid_to_current: Option<String>,
    pub columns: MetaColumns,
}

/// When a record changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Its `updated_at` column is newer than the current version's `dbt_valid_from`.
    Timestamp { updated_at: String },
    /// One of `check_cols` (`None`: all the query's columns) differs; versions are stamped
    /// with the snapshot's time, or with `updated_at` when given.
    Check {
        columns: Option<Vec<String>>,
        updated_at: Option<String>,
    },
}

/// What happens to a record whose key left the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardDeletes {
    /// Kept current.
    Ignore,
    /// Closed (`dbt_valid_to` set).
    Invalidate,
    /// Closed, and a new version marked `dbt_is_deleted = 'True'` inserted.
    NewRecord,
}

/// The names of the columns a snapshot adds (`snapshot_meta_column_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaColumns {
    pub scd_id: String,
    pub updated_at: String,
    pub valid_from: String,
    pub valid_to: String,
    pub is_deleted: String,
}

impl Default for MetaColumns {
    fn default() -> MetaColumns {
        MetaColumns {
            scd_id: "dbt_scd_id".into(),
            updated_at: "dbt_updated_at".into(),
            valid_from: "dbt_valid_from".into(),
            valid_to: "dbt_valid_to".into(),
            is_deleted: "dbt_is_deleted".into(),
        }
    }
}

/// A snapshot's config that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[error("{node}: {message}")]
pub struct ConfigError {
    pub node: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Materialize(#[from] MaterializeError),
}

impl Spec {
    /// The spec a snapshot node's config gives, as dbt validates it.
    pub fn of(node: &Node) -> Result<Spec, ConfigError> {
        let config = &node.config.extra;
        let fail = |message: String| ConfigError {
            node: node.unique_id.clone(),
            message,
        };
        let text = |key: &str| -> Result<Option<String>, ConfigError> {
            match config.get(key) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(other) => Err(fail(format!(
                    "config '{key}' must be a string, got {other}"
                ))),
            }
        };
        if node.config.unique_key.is_empty() {
            return Err(fail("a snapshot needs a unique_key".into()));
        }
        let updated_at = text("updated_at")?;
        let strategy = match text("strategy")?.as_deref() {
            Some("timestamp") => Strategy::Timestamp {
                updated_at: updated_at.ok_or_else(|| {
                    fail("the timestamp strategy needs updated_at (the column that says when a row changed)".into())
                })?,
            },
            Some("check") => Strategy::Check {
                columns: match config.get("check_cols") {
                    Some(Json::String(s)) if s.trim() == "all" => None,
                    Some(Json::Array(items)) if !items.is_empty() => Some(
                        items
                            .iter()
                            .map(|i| i.as_str().map(str::to_string))
                            .collect::<Option<_>>()
                            .ok_or_else(|| fail("check_cols must list column names".into()))?,
                    ),
                    other => {
                        return Err(fail(format!(
                            "the check strategy needs check_cols: 'all' or a list of columns, got {}",
                            other.map_or("nothing".to_string(), ToString::to_string)
                        )));
                    }
                },
                updated_at,
            },
            Some(other) => {
                return Err(fail(format!(
                    "snapshot strategy '{other}' is not supported (timestamp or check)"
                )));
            }
            None => return Err(fail("a snapshot needs a strategy (timestamp or check)".into())),
        };
        let legacy_invalidate = matches!(
            config.get("invalidate_hard_deletes"),
            Some(Json::Bool(true))
        );
        let hard_deletes = match text("hard_deletes")?.as_deref() {
            None if legacy_invalidate => HardDeletes::Invalidate,
            None | Some("ignore") => HardDeletes::Ignore,
            Some("invalidate") => HardDeletes::Invalidate,
            Some("new_record") => HardDeletes::NewRecord,
            Some(other) => {
                return Err(fail(format!(
                    "hard_deletes must be ignore, invalidate or new_record, got '{other}'"
                )));
            }
        };
        let mut columns = MetaColumns::default();
        match config.get("snapshot_meta_column_names") {
            None | Some(Json::Null) => {}
            Some(Json::Object(names)) => {
                for (key, value) in names {
                    let name = value.as_str().map(str::to_string).ok_or_else(|| {
                        fail(format!(
                            "snapshot_meta_column_names.{key} must be a column name"
                        ))
                    })?;
                    let slot = match key.as_str() {
                        "dbt_scd_id" => &mut columns.scd_id,
                        "dbt_updated_at" => &mut columns.updated_at,
                        "dbt_valid_from" => &mut columns.valid_from,
                        "dbt_valid_to" => &mut columns.valid_to,
                        "dbt_is_deleted" => &mut columns.is_deleted,
                        other => {
                            return Err(fail(format!(
                                "snapshot_meta_column_names has no column '{other}'"
                            )));
                        }
                    };
                    *slot = name;
                }
            }
            Some(other) => {
                return Err(fail(format!(
                    "snapshot_meta_column_names must be a mapping, got {other}"
                )));
            }
        }
        Ok(Spec {
            unique_key: node.config.unique_key.clone(),
            strategy,
            hard_deletes,
            valid_to_current: text("dbt_valid_to_current")?,
            columns,
        })
    }

    /// The expression versions are stamped with: `updated_at`, or the snapshot's time.
    fn stamp(&self, now: &str) -> String {
        match &self.strategy {
            Strategy::Timestamp { updated_at }
            | Strategy::Check {
                updated_at: Some(updated_at),
                ..
            } => updated_at.clone(),
            Strategy::Check { .. } => now.to_string(),
        }
    }

    /// dbt's `dbt_scd_id`: a hash of the key and the version's stamp.
    fn scd_id(&self, now: &str) -> String {
        let mut args = self.unique_key.clone();
        args.push(self.stamp(now));
        hash(&args)
    }

    /// `dbt_valid_to` of a current record stamped `stamp`, typed as it (dbt's
    /// `get_dbt_valid_to_current`; its `nullif(x, x)` is simplified to `x` by DataFusion 55).
    fn open_valid_to(&self, stamp: &str) -> String {
        let null = format!("case when false then {stamp} end");
        match &self.valid_to_current {
            Some(current) => format!("coalesce({null}, {current})"),
            None => null,
        }
    }

    /// Whether `table`'s record is current.
    fn is_current(&self, table: &str) -> String {
        let valid_to = format!("{table}.{}", ident(&self.columns.valid_to));
        match &self.valid_to_current {
            Some(current) => format!("({valid_to} = {current} or {valid_to} is null)"),
            None => format!("{valid_to} is null"),
        }
    }

    /// `select *` of the query with the meta columns of a first version. (The scd id is
    /// computed a level below the stamps: written beside them, DataFusion 55 and delta-rs's
    /// writer mix up the columns of the timestamp it reads twice.)
    pub fn first_build_sql(&self, query: &str, now: &str) -> String {
        let c = &self.columns;
        let stamp = self.stamp(now);
        let deleted = match self.hard_deletes {
            HardDeletes::NewRecord => format!(",\n    'False' as {}", ident(&c.is_deleted)),
            _ => String::new(),
        };
        format!(
            "select *,\n    {stamp} as {},\n    {stamp} as {},\n    {} as {}{deleted}\nfrom (\nselect *, {} as {} from (\n{query}\n) sbq\n) snapshot_query",
            ident(&c.updated_at),
            ident(&c.valid_from),
            self.open_valid_to(&stamp),
            ident(&c.valid_to),
            self.scd_id(now),
            ident(&c.scd_id),
        )
    }

    /// The rows to merge into the snapshot table `target` (whose columns are `existing`):
    /// new versions to insert, and the current versions to close (their `dbt_scd_id` and
    /// new `dbt_valid_to`). `query_columns` are the query's columns.
    pub fn staging_sql(
        &self,
        query: &str,
        target: &str,
        query_columns: &[String],
        existing: &[String],
        now: &str,
    ) -> String {
        let c = &self.columns;
        let (scd, valid_to) = (ident(&c.scd_id), ident(&c.valid_to));
        let (updated, valid_from) = (ident(&c.updated_at), ident(&c.valid_from));
        let keys = key_fields(&self.unique_key);
        let join = (1..=self.unique_key.len())
            .map(|i| {
                format!("snapshotted_data.dbt_unique_key_{i} = source_data.dbt_unique_key_{i}")
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let new_record = self.hard_deletes == HardDeletes::NewRecord;
        let was_deleted = if existing.contains(&c.is_deleted) {
            format!("snapshotted_data.{}", ident(&c.is_deleted))
        } else {
            "'False'".to_string()
        };
        let or_was_deleted = if new_record {
            format!(" or {was_deleted} = 'True'")
        } else {
            String::new()
        };
        let row_changed = format!(
            "({}{or_was_deleted})",
            self.row_changed(query_columns, existing)
        );
        let stamp = self.stamp(now);
        let from_source = |table: &str| -> String {
            query_columns
                .iter()
                .map(|col| format!("{table}.{}", ident(col)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // A closed record keeps its values; only its scd id and dbt_valid_to are merged.
        let from_snapshot = query_columns
            .iter()
            .map(|col| match existing.contains(col) {
                true => format!("snapshotted_data.{}", ident(col)),
                false => format!("null as {}", ident(col)),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let deleted_col = |value: &str| match new_record {
            true => format!(", {value} as {}", ident(&c.is_deleted)),
            false => String::new(),
        };
        let mut sql = format!(
            "with snapshot_query as (\n{query}\n),\n\
             snapshotted_data as (\n    select *, {keys} from {target} as snapshotted_data where {current}\n),\n\
             source_data_keyed as (\n    select *, {keys} from snapshot_query\n),\n\
             insertions as (\n    select {src}, {stamp_src} as {updated}, {stamp_src} as {valid_from}, {open} as {valid_to}, {scd_id} as {scd}{ins_deleted}\n    \
             from source_data_keyed as source_data\n    left join snapshotted_data on {join}\n    \
             where snapshotted_data.dbt_unique_key_1 is null or {row_changed}\n),\n\
             updates as (\n    select {src}, {stamp_src} as {updated}, {stamp_src} as {valid_from}, {stamp_src} as {valid_to}, snapshotted_data.{scd}{upd_deleted}\n    \
             from source_data_keyed as source_data\n    join snapshotted_data on {join}\n    where {row_changed}\n)",
            current = self.is_current("snapshotted_data"),
            src = from_source("source_data"),
            stamp_src = qualified_stamp(&stamp, query_columns),
            open = self.open_valid_to(&qualified_stamp(&stamp, query_columns)),
            scd_id = self.scd_id_over("source_data", now, query_columns),
            ins_deleted = deleted_col("'False'"),
            upd_deleted = deleted_col(&was_deleted),
        );
        let gone = "source_data.dbt_unique_key_1 is null";
        let not_already_deleted = match new_record {
            true => format!(
                " and not ({was_deleted} = 'True' and {})",
                self.is_current("snapshotted_data")
            ),
            false => String::new(),
        };
        if self.hard_deletes != HardDeletes::Ignore {
            sql.push_str(&format!(
                ",\ndeletes as (\n    select {from_snapshot}, {now} as {updated}, {now} as {valid_from}, {now} as {valid_to}, snapshotted_data.{scd}{del_deleted}\n    \
                 from snapshotted_data\n    left join source_data_keyed as source_data on {join}\n    where {gone}{not_already_deleted}\n)",
                del_deleted = deleted_col(&was_deleted),
            ));
        }
        if new_record {
            sql.push_str(&format!(
                ",\ndeletion_records as (\n    select {from_snapshot}, {now} as {updated}, {now} as {valid_from}, snapshotted_data.{valid_to}, {new_id} as {scd}, 'True' as {deleted}\n    \
                 from snapshotted_data\n    left join source_data_keyed as source_data on {join}\n    where {gone}{not_already_deleted}\n)",
                new_id = hash(&[format!("snapshotted_data.{scd}"), now.to_string()]),
                deleted = ident(&c.is_deleted),
            ));
        }
        sql.push_str("\nselect * from insertions\nunion all\nselect * from updates");
        if self.hard_deletes != HardDeletes::Ignore {
            sql.push_str("\nunion all\nselect * from deletes");
        }
        if new_record {
            sql.push_str("\nunion all\nselect * from deletion_records");
        }
        sql
    }

    /// dbt's `row_changed` between `snapshotted_data` and `source_data`.
    fn row_changed(&self, query_columns: &[String], existing: &[String]) -> String {
        match &self.strategy {
            Strategy::Timestamp { updated_at } => format!(
                "snapshotted_data.{} < {}",
                ident(&self.columns.valid_from),
                qualified_stamp(updated_at, query_columns)
            ),
            Strategy::Check { columns, .. } => {
                let checked: Vec<&String> = match columns {
                    Some(listed) => listed.iter().collect(),
                    None => query_columns.iter().collect(),
                };
                // A column the table does not have yet: every row changed (dbt's
                // `column_added`).
                if checked.iter().any(|c| !existing.contains(c)) {
                    return "true".into();
                }
                checked
                    .iter()
                    .map(|col| {
                        let col = ident(col);
                        // Parenthesized: sqlparser reads `a is distinct from b or c` as
                        // `a is distinct from (b or c)`.
                        format!("(snapshotted_data.{col} is distinct from source_data.{col})")
                    })
                    .collect::<Vec<_>>()
                    .join(" or ")
            }
        }
    }

    /// The scd id of `table`'s row.
    fn scd_id_over(&self, table: &str, now: &str, query_columns: &[String]) -> String {
        let mut args: Vec<String> = (1..=self.unique_key.len())
            .map(|i| format!("{table}.dbt_unique_key_{i}"))
            .collect();
        args.push(qualified_stamp(&self.stamp(now), query_columns));
        hash(&args)
    }
}

/// `<key> as dbt_unique_key_<i>`, for each key.
fn key_fields(unique_key: &[String]) -> String {
    unique_key
        .iter()
        .enumerate()
        .map(|(i, key)| format!("{key} as dbt_unique_key_{}", i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The stamp read from `source_data` when it is one of the query's columns (both joined
/// tables have it otherwise).
fn qualified_stamp(stamp: &str, query_columns: &[String]) -> String {
    match query_columns.iter().any(|c| c == stamp) {
        true => format!("source_data.{}", ident(stamp)),
        false => stamp.to_string(),
    }
}

/// dbt's `snapshot_hash_arguments`.
fn hash(args: &[String]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| format!("coalesce(cast({a} as varchar), '')"))
        .collect();
    format!("md5({})", parts.join(" || '|' || "))
}

/// The snapshot's time as a SQL timestamp.
pub fn time_literal(now: DateTime<Utc>) -> String {
    format!(
        "cast('{}' as timestamp)",
        now.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f")
    )
}

/// Takes the snapshot `node` (whose compiled query is `sql`) into `relation`: the first run
/// creates the table, later ones merge in one commit.
pub async fn snapshot(
    ctx: &SessionContext,
    lake: &Lake,
    relation: &Relation,
    node: &Node,
    sql: &str,
    commit: CommitMetadata,
) -> Result<Committed, SnapshotError> {
    let spec = Spec::of(node)?;
    let now = time_literal(Utc::now());
    let path = layout::model_table(&relation.schema, &relation.name);
    let delta_error = |source| MaterializeError::Delta {
        relation: relation.to_string(),
        source,
    };
    let query_error = |source| MaterializeError::Query {
        relation: relation.to_string(),
        source,
    };
    let Some(existing) = delta::open(lake, &path).await.map_err(delta_error)? else {
        let first = spec.first_build_sql(sql, &now);
        return Ok(materialize::table(ctx, lake, relation, &first, &[], commit).await?);
    };
    let query_columns = column_names(ctx, sql).await.map_err(query_error)?;
    let existing_columns: Vec<String> = existing
        .snapshot()
        .map_err(delta_error)?
        .schema()
        .fields()
        .map(|f| f.name().clone())
        .collect();
    let target = relation_sql(relation);
    let staging = spec.staging_sql(sql, &target, &query_columns, &existing_columns, &now);
    tracing::debug!(snapshot = %relation, sql = %staging, "snapshot changes");
    let source = ctx.sql(&staging).await.map_err(query_error)?;
    let merged: Vec<String> = source
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let c = &spec.columns;
    let on = format!("target.{0} = source.{0}", ident(&c.scd_id));
    // Closing rows carry the scd id of a current record (they are read from the current
    // ones); new versions carry a new one. With `dbt_valid_to_current` the target's side is
    // not checked again: its SQL is the project's, which delta-rs's predicate parser may not
    // read.
    let close = match spec.valid_to_current {
        None => Some(format!("target.{} is null", ident(&c.valid_to))),
        Some(_) => None,
    };
    let valid_to = format!("source.{}", ident(&c.valid_to));
    let (table, metrics) = materialize::merge(ctx, existing, source, on.as_str(), commit)
        .when_matched_update(|update| {
            let update = update.update(c.valid_to.as_str(), valid_to.as_str());
            match &close {
                Some(predicate) => update.predicate(predicate.as_str()),
                None => update,
            }
        })
        .map_err(delta_error)?
        .when_not_matched_insert(|insert| {
            merged.iter().fold(insert, |i, col| {
                i.set(col.as_str(), format!("source.{}", ident(col)).as_str())
            })
        })
        .map_err(delta_error)?
        .await
        .map_err(delta_error)?;
    Ok(Committed {
        rows: Some((metrics.num_target_rows_inserted + metrics.num_target_rows_updated) as u64),
        version: table.version(),
    })
}

/// The columns `sql` returns.
async fn column_names(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<String>, datafusion::error::DataFusionError> {
    let plan = ctx.state().create_logical_plan(sql).await?;
    Ok(plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(strategy: Strategy, hard_deletes: HardDeletes) -> Spec {
        Spec {
            unique_key: vec!["id".into()],
            strategy,
            hard_deletes,
            valid_to_current: None,
            columns: MetaColumns::default(),
        }
    }

    #[test]
    fn the_first_build_adds_the_meta_columns() {
        let s = spec(
            Strategy::Timestamp {
                updated_at: "updated_at".into(),
            },
            HardDeletes::Ignore,
        );
        assert_eq!(
            s.first_build_sql("select 1 as id", "now()"),
            "select *,\n    updated_at as dbt_updated_at,\n    updated_at as dbt_valid_from,\n    case when false then updated_at end as dbt_valid_to\nfrom (\nselect *, md5(coalesce(cast(id as varchar), '') || '|' || coalesce(cast(updated_at as varchar), '')) as dbt_scd_id from (\nselect 1 as id\n) sbq\n) snapshot_query"
        );
    }

    #[test]
    fn check_all_with_a_new_column_changes_every_row() {
        let s = spec(
            Strategy::Check {
                columns: None,
                updated_at: None,
            },
            HardDeletes::Ignore,
        );
        let cols = ["id".to_string(), "name".to_string()];
        assert_eq!(
            s.row_changed(&cols, &cols),
            "(snapshotted_data.id is distinct from source_data.id) or (snapshotted_data.name is distinct from source_data.name)"
        );
        assert_eq!(s.row_changed(&cols, &cols[..1]), "true");
    }
}
