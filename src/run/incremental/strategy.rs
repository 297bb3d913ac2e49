//! The strategies, each one Delta commit: `merge` and `delete+insert` as one MERGE, `append` as
//! a write, `insert_overwrite` and a microbatch's window as a predicate replace (`replaceWhere`),
//! and a table rewrite for a `sync_all_columns` change Delta cannot make in place.

use std::collections::BTreeSet;

use arrow::array::RecordBatch;
use datafusion::common::{Column, JoinType, ScalarValue};
use datafusion::logical_expr::{Expr, and, cast, lit, or, when};
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake::DeltaTable;

use super::config::{Incremental, Strategy};
use super::microbatch::Window;
use super::schema_change::{SchemaChange, null_of};
use crate::lake::Lake;
use crate::lake::write::{CommitMetadata, WriteMode};
use crate::run::materialize::{self, Committed, MaterializeError, Placement, Relation, quote};

/// The names dbt gives the table and the new rows in a merge (and `incremental_predicates`).
/// delta-rs reads predicates case-sensitively: a predicate's own spelling of them is made
/// this one ([`dbt_aliases`]).
const DEST: &str = "DBT_INTERNAL_DEST";
const SOURCE: &str = "DBT_INTERNAL_SOURCE";
/// Marks each row of a delete+insert's MERGE source: a key to delete or a row to insert.
const ACTION: &str = "dbt_internal_action";

/// One incremental run's rows meeting the table.
pub(super) struct Apply<'a> {
    pub ctx: &'a SessionContext,
    pub lake: &'a Lake,
    pub relation: &'a Relation,
    pub config: &'a Incremental,
    pub change: &'a SchemaChange,
    /// A microbatch's batch.
    pub window: Option<&'a Window>,
}

impl Apply<'_> {
    /// `rows` (shaped by the schema change policy) into `existing` by the strategy.
    pub async fn run(
        &self,
        existing: DeltaTable,
        rows: DataFrame,
        commit: CommitMetadata,
    ) -> Result<Committed, MaterializeError> {
        match self.config.strategy {
            Strategy::Append => self.write(WriteMode::Append, None, rows, commit).await,
            Strategy::Merge => self.merge(existing, rows, commit).await,
            Strategy::DeleteInsert => self.delete_insert(existing, rows, commit).await,
            Strategy::InsertOverwrite => self.insert_overwrite(existing, rows, commit).await,
            Strategy::Microbatch => {
                let window = self.window_predicate(&rows)?;
                let rows = rows.filter(window.clone()).map_err(self.query())?;
                self.write(WriteMode::Replace, Some(window), rows, commit)
                    .await
            }
        }
    }

    fn query(&self) -> impl FnOnce(datafusion::error::DataFusionError) -> MaterializeError + '_ {
        MaterializeError::query(self.relation)
    }

    fn delta(&self) -> impl FnOnce(deltalake::DeltaTableError) -> MaterializeError + '_ {
        MaterializeError::delta(self.relation)
    }

    async fn write(
        &self,
        mode: WriteMode,
        replace_where: Option<Expr>,
        rows: DataFrame,
        commit: CommitMetadata,
    ) -> Result<Committed, MaterializeError> {
        let placement = Placement {
            partition_by: &self.config.partition_by,
            replace_where,
        };
        let plan = rows.logical_plan().clone();
        let table = materialize::write(
            self.ctx,
            self.lake,
            self.relation,
            mode,
            placement,
            plan,
            commit,
        )
        .await?;
        materialize::committed(&table).await.map_err(self.delta())
    }

    /// The MERGE condition: the unique key, then `incremental_predicates` as written.
    fn condition(&self, extra: Option<String>) -> String {
        let keys = self
            .config
            .unique_key
            .iter()
            .map(|k| format!("{DEST}.{0} = {SOURCE}.{0}", quote(k)));
        let predicates = self
            .config
            .predicates
            .iter()
            .map(|p| format!("({})", dbt_aliases(p)));
        keys.chain(extra)
            .chain(predicates)
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// dbt's merge: matched rows take the new values of the update columns, others are
    /// inserted.
    async fn merge(
        &self,
        existing: DeltaTable,
        rows: DataFrame,
        commit: CommitMetadata,
    ) -> Result<Committed, MaterializeError> {
        let columns = names(&rows);
        let updated = self.updated_columns(&columns)?;
        let on = self.condition(None);
        let source = |c: &String| format!("{SOURCE}.{}", quote(c));
        let mut merge =
            materialize::merge_as(self.ctx, existing, rows, &on, (DEST, SOURCE), commit);
        if !updated.is_empty() {
            merge = merge
                .when_matched_update(|update| {
                    updated
                        .iter()
                        .fold(update, |u, c| u.update(c.as_str(), source(c).as_str()))
                })
                .map_err(self.delta())?;
        }
        let (table, metrics) = merge
            .when_not_matched_insert(|insert| {
                columns
                    .iter()
                    .fold(insert, |i, c| i.set(c.as_str(), source(c).as_str()))
            })
            .map_err(self.delta())?
            .await
            .map_err(self.delta())?;
        Ok(Committed {
            rows: Some((metrics.num_target_rows_inserted + metrics.num_target_rows_updated) as u64),
            version: table.version(),
        })
    }

    /// The columns a matched row takes from the new one: `merge_update_columns`, or all but
    /// `merge_exclude_columns` (never a column the query no longer has).
    fn updated_columns(&self, columns: &[String]) -> Result<Vec<String>, MaterializeError> {
        let named = |list: &[String], key: &str| -> Result<BTreeSet<String>, MaterializeError> {
            list.iter()
                .map(|name| {
                    columns
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(name))
                        .cloned()
                        .ok_or_else(|| {
                            MaterializeError::query(self.relation)(
                                datafusion::error::DataFusionError::Plan(format!(
                                    "{key} names the column '{name}', which the model does not have"
                                )),
                            )
                        })
                })
                .collect()
        };
        let excluded = named(&self.config.exclude_columns, "merge_exclude_columns")?;
        let only = match &self.config.update_columns {
            Some(list) => Some(named(list, "merge_update_columns")?),
            None => None,
        };
        Ok(columns
            .iter()
            .filter(|c| !self.change.removed.contains(*c))
            .filter(|c| only.as_ref().is_none_or(|o| o.contains(*c)))
            .filter(|c| !excluded.contains(*c))
            .cloned()
            .collect())
    }

    /// dbt's delete+insert in one MERGE: its source is every new row (inserted) plus each new
    /// key once (deleting the table's rows with that key), told apart by [`ACTION`].
    async fn delete_insert(
        &self,
        existing: DeltaTable,
        rows: DataFrame,
        commit: CommitMetadata,
    ) -> Result<Committed, MaterializeError> {
        let columns = names(&rows);
        let keys_only: Vec<Expr> = rows
            .schema()
            .fields()
            .iter()
            .map(
                |f| match self.config.unique_key.iter().any(|k| k == f.name()) {
                    true => Expr::Column(Column::new_unqualified(f.name())),
                    false => null_of(f.data_type()).alias(f.name()),
                },
            )
            .collect();
        let deletes = rows
            .clone()
            .select(keys_only)
            .and_then(DataFrame::distinct)
            .and_then(|d| d.with_column(ACTION, lit("delete")))
            .map_err(self.query())?;
        let source = rows
            .with_column(ACTION, lit("insert"))
            .and_then(|inserts| inserts.union(deletes))
            .map_err(self.query())?;
        let on = self.condition(Some(format!("{SOURCE}.{ACTION} = 'delete'")));
        let is_insert = format!("{SOURCE}.{ACTION} = 'insert'");
        let (table, metrics) =
            materialize::merge_as(self.ctx, existing, source, &on, (DEST, SOURCE), commit)
                .when_matched_delete(|delete| delete)
                .map_err(self.delta())?
                .when_not_matched_insert(|insert| {
                    columns
                        .iter()
                        .fold(insert.predicate(is_insert.as_str()), |i, c| {
                            i.set(c.as_str(), format!("{SOURCE}.{}", quote(c)).as_str())
                        })
                })
                .map_err(self.delta())?
                .await
                .map_err(self.delta())?;
        Ok(Committed {
            rows: Some(metrics.num_target_rows_inserted as u64),
            version: table.version(),
        })
    }

    /// dbt's insert_overwrite: the partitions the new rows touch are replaced by them.
    async fn insert_overwrite(
        &self,
        existing: DeltaTable,
        rows: DataFrame,
        commit: CommitMetadata,
    ) -> Result<Committed, MaterializeError> {
        let rows = rows.cache().await.map_err(self.query())?;
        let partitions = self.touched_partitions(&rows).await?;
        let Some(predicate) = partitions else {
            return Ok(Committed {
                rows: Some(0),
                version: existing.version(),
            });
        };
        self.write(WriteMode::Replace, Some(predicate), rows, commit)
            .await
    }

    /// Selects the partitions `rows` fall in (`None`: no rows).
    async fn touched_partitions(&self, rows: &DataFrame) -> Result<Option<Expr>, MaterializeError> {
        let columns: Vec<Expr> = self
            .config
            .partition_by
            .iter()
            .map(|p| Expr::Column(Column::new_unqualified(p)))
            .collect();
        let batches: Vec<RecordBatch> = rows
            .clone()
            .select(columns)
            .and_then(DataFrame::distinct)
            .map_err(self.query())?
            .collect()
            .await
            .map_err(self.query())?;
        let mut partitions = Vec::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                let mut matches = Vec::new();
                for (name, array) in self.config.partition_by.iter().zip(batch.columns()) {
                    let value = ScalarValue::try_from_array(array, row).map_err(self.query())?;
                    let column = Expr::Column(Column::new_unqualified(name));
                    matches.push(match value.is_null() {
                        true => column.is_null(),
                        false => column.eq(lit(value)),
                    });
                }
                partitions.extend(matches.into_iter().reduce(and));
            }
        }
        Ok(partitions.into_iter().reduce(or))
    }

    /// The batch's window on the model's `event_time`: `start <= event_time < end`.
    fn window_predicate(&self, rows: &DataFrame) -> Result<Expr, MaterializeError> {
        let (Some(window), Some(batch)) = (self.window, &self.config.microbatch) else {
            return Err(MaterializeError::query(self.relation)(
                datafusion::error::DataFusionError::Internal(
                    "a microbatch run without its batch window".into(),
                ),
            ));
        };
        let field = rows
            .schema()
            .field_with_unqualified_name(&batch.event_time)
            .map_err(self.query())?;
        Ok(window.predicate(&batch.event_time, field.data_type()))
    }

    /// `sync_all_columns` with a column dropped or retyped: the whole table rewritten in one
    /// commit, as the strategy would leave it, in the query's columns.
    pub async fn rewrite(
        &self,
        existing: DeltaTable,
        rows: DataFrame,
        commit: CommitMetadata,
    ) -> Result<Committed, MaterializeError> {
        let name = self.relation.to_string();
        let provider = crate::lake::delta_files::provider(&existing, &name, &self.ctx.state())
            .await
            .map_err(self.query())?;
        let target = self.ctx.read_table(provider).map_err(self.query())?;
        let keys = match self.config.strategy {
            Strategy::Merge | Strategy::DeleteInsert => Some(&self.config.unique_key),
            Strategy::InsertOverwrite => Some(&self.config.partition_by),
            Strategy::Append | Strategy::Microbatch => None,
        };
        let (kept, rows) = match (keys, self.config.strategy) {
            (Some(keys), strategy) => {
                let kept = anti_join(target.clone(), &rows, keys).map_err(self.query())?;
                let rows = match strategy {
                    Strategy::Merge => self.merged_rows(&target, rows, &names(&kept))?,
                    _ => rows,
                };
                (kept, rows)
            }
            (None, Strategy::Microbatch) => {
                let window = self.window_predicate(&rows)?;
                let kept = target.filter(!window.clone()).map_err(self.query())?;
                (kept, rows.filter(window).map_err(self.query())?)
            }
            (None, _) => (target, rows),
        };
        let shaped: Vec<Expr> = rows
            .schema()
            .fields()
            .iter()
            .map(
                |f| match kept.schema().has_column_with_unqualified_name(f.name()) {
                    true => cast(
                        Expr::Column(Column::new_unqualified(f.name())),
                        f.data_type().clone(),
                    )
                    .alias(f.name()),
                    false => null_of(f.data_type()).alias(f.name()),
                },
            )
            .collect();
        let all = kept
            .select(shaped)
            .and_then(|kept| kept.union(rows))
            .map_err(self.query())?;
        self.write(WriteMode::Replace, None, all, commit).await
    }

    /// A merge's new rows as the merge leaves them: a matched row keeps the table's value of
    /// each column it does not update (`table_columns` are the table's).
    fn merged_rows(
        &self,
        target: &DataFrame,
        rows: DataFrame,
        table_columns: &[String],
    ) -> Result<DataFrame, MaterializeError> {
        let columns = names(&rows);
        let updated = self.updated_columns(&columns)?;
        let kept: Vec<&String> = columns
            .iter()
            .filter(|c| !updated.contains(c) && table_columns.contains(c))
            .collect();
        if kept.is_empty() {
            return Ok(rows);
        }
        let keys: Vec<String> = self.config.unique_key.clone();
        let dest = |c: &str| Expr::Column(Column::new(Some(DEST), c));
        let source = |c: &str| Expr::Column(Column::new(Some(SOURCE), c));
        let matched = dest(&keys[0]).is_not_null();
        let fields = rows.schema().fields().clone();
        let left: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        let select: Vec<Expr> = fields
            .iter()
            .map(|f| match kept.contains(&f.name()) {
                true => when(matched.clone(), cast(dest(f.name()), f.data_type().clone()))
                    .otherwise(source(f.name()))
                    .map(|e| e.alias(f.name())),
                false => Ok(source(f.name()).alias(f.name())),
            })
            .collect::<Result<_, _>>()
            .map_err(self.query())?;
        rows.alias(SOURCE)
            .and_then(|r| {
                let t = target.clone().alias(DEST)?;
                r.join(t, JoinType::Left, &left, &left, None)
            })
            .and_then(|j| j.select(select))
            .map_err(self.query())
    }
}

/// `target`'s rows whose `keys` no row of `rows` has.
fn anti_join(
    target: DataFrame,
    rows: &DataFrame,
    keys: &[String],
) -> datafusion::error::Result<DataFrame> {
    let key_columns: Vec<Expr> = keys
        .iter()
        .map(|k| Expr::Column(Column::new_unqualified(k)))
        .collect();
    let new_keys = rows
        .clone()
        .select(key_columns)?
        .distinct()?
        .alias(SOURCE)?;
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    let projected: Vec<Expr> = target
        .schema()
        .fields()
        .iter()
        .map(|f| Expr::Column(Column::new(Some(DEST), f.name())).alias(f.name()))
        .collect();
    target
        .alias(DEST)?
        .join(new_keys, JoinType::LeftAnti, &names, &names, None)?
        .select(projected)
}

/// `predicate` with dbt's aliases, in whatever case it writes them, spelled as [`DEST`] and
/// [`SOURCE`] (dbt's adapters read them case-insensitively).
fn dbt_aliases(predicate: &str) -> String {
    let mut out = predicate.to_string();
    for alias in [DEST, SOURCE] {
        let mut from = 0;
        while let Some(at) = out[from..].to_ascii_uppercase().find(alias) {
            let at = from + at;
            out.replace_range(at..at + alias.len(), alias);
            from = at + alias.len();
        }
    }
    out
}

fn names(frame: &DataFrame) -> Vec<String> {
    frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_name_dbts_aliases_in_any_case() {
        assert_eq!(
            dbt_aliases(
                "dbt_internal_dest.at > Dbt_Internal_Source.at - 1 and dbt_internal_dest.x"
            ),
            "DBT_INTERNAL_DEST.at > DBT_INTERNAL_SOURCE.at - 1 and DBT_INTERNAL_DEST.x"
        );
    }
}
