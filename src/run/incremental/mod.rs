//! Incremental models as dbt builds them: a run's rows meet the table's by the model's
//! `incremental_strategy`, after `on_schema_change` has decided which columns they carry. Each
//! run (each microbatch batch) is one Delta commit, so a failed one leaves the table as it was.

pub mod config;
pub mod microbatch;
pub mod schema_change;
mod strategy;

use datafusion::prelude::{DataFrame, SessionContext};

use self::config::OnSchemaChange;
use self::schema_change::SchemaChange;
use super::materialize::{self, Committed, MaterializeError, Relation};
use crate::lake::write::CommitMetadata;
use crate::lake::{Lake, delta, layout};

pub use self::config::{ConfigError, Incremental, Strategy};

#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "{relation}: the query's columns differ from the table's ({change}) and on_schema_change is fail; nothing was written"
    )]
    SchemaChanged {
        relation: String,
        change: SchemaChange,
    },
    #[error(transparent)]
    Materialize(#[from] MaterializeError),
    #[error("{relation}: batch {batch} failed: {source}")]
    Batch {
        relation: String,
        batch: String,
        #[source]
        source: Box<IncrementalError>,
    },
    #[error(transparent)]
    Compile(#[from] crate::compile::CompileError),
}

/// What an incremental run committed, and what it says about it (a schema change, the batches).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub committed: Committed,
    pub notes: Vec<String>,
}

/// Brings the query's rows (`sql`) into the relation's existing table by `config`'s strategy
/// and schema change policy, in one commit; a missing table is created like a `table` model.
pub async fn apply(
    ctx: &SessionContext,
    lake: &Lake,
    relation: &Relation,
    sql: &str,
    config: &Incremental,
    window: Option<&microbatch::Window>,
    commit: CommitMetadata,
) -> Result<Outcome, IncrementalError> {
    let path = layout::model_table(&relation.schema, &relation.name);
    let Some(existing) = delta::open(lake, &path)
        .await
        .map_err(MaterializeError::delta(relation))?
    else {
        let committed =
            materialize::table(ctx, lake, relation, sql, &config.partition_by, commit).await?;
        return Ok(Outcome {
            committed,
            notes: Vec::new(),
        });
    };
    let (plan, _held) = materialize::planned(ctx, relation, sql).await?;
    let query = DataFrame::new(ctx.state(), plan);
    let table_schema = existing
        .snapshot()
        .map_err(MaterializeError::delta(relation))?
        .snapshot()
        .arrow_schema();
    let query_schema = query.schema().as_arrow().clone();
    let change = SchemaChange::between(&table_schema, &query_schema)
        .map_err(MaterializeError::delta(relation))?;
    let policy = config.on_schema_change;
    let mut notes = Vec::new();
    if !change.is_empty() {
        if policy == OnSchemaChange::Fail {
            return Err(IncrementalError::SchemaChanged {
                relation: relation.to_string(),
                change,
            });
        }
        let note = change.applied(policy);
        tracing::info!(model = %relation, "{note}");
        notes.push(note);
    }
    let rows = query
        .select(change.columns(policy, &table_schema, &query_schema))
        .map_err(MaterializeError::query(relation))?;
    let apply = strategy::Apply {
        ctx,
        lake,
        relation,
        config,
        change: &change,
        window,
    };
    let committed = if change.rewrites(policy) {
        apply.rewrite(existing, rows, commit).await?
    } else {
        apply.run(existing, rows, commit).await?
    };
    Ok(Outcome { committed, notes })
}
