//! What surrounds a table or incremental model's write beyond the rows: the contract's stale
//! Delta check constraints dropped before it (and added back should the write fail, so the
//! table keeps its constraints with its rows), then the contract's constraints, the
//! `tblproperties` and the `cluster_by` OPTIMIZE after it, each a commit of its own over the
//! written version (data unchanged). A failure after the write says that the written version
//! is the table's and readable.

use std::collections::HashMap;

use datafusion::prelude::SessionContext;
use deltalake::{DeltaTable, DeltaTableError};

use super::incremental::ConfigError;
use super::materialize::{Committed, Relation};
use super::{cluster, contract, tblproperties};
use crate::lake::write::CommitMetadata;
use crate::lake::{Lake, delta, layout};
use crate::project::{Materialized, Node};

#[derive(Debug, thiserror::Error)]
pub enum UpkeepError {
    #[error("{relation}: reading the table: {source}")]
    Open {
        relation: String,
        #[source]
        source: DeltaTableError,
    },
    #[error(
        "{relation}: dropping the check constraints the contract no longer declares failed; nothing was written: {source}"
    )]
    DropConstraints {
        relation: String,
        #[source]
        source: DeltaTableError,
    },
    #[error(
        "{relation}: the write failed, and adding back the check constraints dropped for it failed too: {source}"
    )]
    Restore {
        relation: String,
        #[source]
        source: DeltaTableError,
    },
    #[error("{relation}: version {version} is written and readable, but {step} failed: {source}")]
    After {
        relation: String,
        version: u64,
        step: String,
        #[source]
        source: DeltaTableError,
    },
}

/// The check constraints (name, expression) dropped before a write.
#[derive(Debug, Default)]
pub struct Dropped(HashMap<String, String>);

/// A model's upkeep, read from its config before anything is written.
#[derive(Debug, Clone)]
pub struct Upkeep {
    contract: bool,
    properties: HashMap<String, String>,
    clustered: Vec<String>,
}

impl Upkeep {
    /// The upkeep of `node` (nothing for a view or an ephemeral model).
    pub fn of(node: &Node) -> Result<Upkeep, ConfigError> {
        Ok(Upkeep {
            contract: node.contract_enforced()
                && matches!(
                    node.config.materialized,
                    Materialized::Table | Materialized::Incremental
                ),
            properties: tblproperties::of(node)?,
            clustered: cluster::columns_of(node)?,
        })
    }

    /// Before the write to `existing` (the table as the run found it, if any): drops the
    /// Delta check constraints the contract no longer declares; what it dropped.
    pub async fn before_write(
        &self,
        existing: Option<DeltaTable>,
        relation: &Relation,
        node: &Node,
    ) -> Result<Dropped, UpkeepError> {
        let Some(table) = existing.filter(|_| self.contract) else {
            return Ok(Dropped::default());
        };
        let constraints = contract::drop_stale_constraints(table, node)
            .await
            .map_err(|source| UpkeepError::DropConstraints {
                relation: relation.to_string(),
                source,
            })?;
        Ok(Dropped(constraints))
    }

    /// After a failed write: the constraints `before_write` dropped, added back (the table's
    /// rows met them before).
    pub async fn restore(
        &self,
        lake: &Lake,
        relation: &Relation,
        dropped: Dropped,
    ) -> Result<(), UpkeepError> {
        if dropped.0.is_empty() {
            return Ok(());
        }
        let Some(table) = open(lake, relation).await? else {
            return Ok(());
        };
        table
            .add_constraint()
            .with_constraints(dropped.0)
            .await
            .map_err(|source| UpkeepError::Restore {
                relation: relation.to_string(),
                source,
            })?;
        Ok(())
    }

    /// After the write that `committed` says: the table's constraints, properties and
    /// clustering; what the node committed, its version the table's last.
    pub async fn after_write(
        &self,
        ctx: &SessionContext,
        lake: &Lake,
        relation: &Relation,
        node: &Node,
        committed: Committed,
        commit: CommitMetadata,
    ) -> Result<Committed, UpkeepError> {
        let Some(mut table) = open(lake, relation).await? else {
            return Ok(committed);
        };
        let version = committed.version.unwrap_or_default();
        let failed = |step: &str| {
            let step = step.to_string();
            move |source| UpkeepError::After {
                relation: relation.to_string(),
                version,
                step,
                source,
            }
        };
        if self.contract {
            table = contract::add_table_constraints(table, node)
                .await
                .map_err(failed("adding its check constraints"))?;
        }
        if !self.properties.is_empty() {
            table = tblproperties::apply(table, &self.properties, commit.clone())
                .await
                .map_err(failed("setting its tblproperties"))?;
        }
        if !self.clustered.is_empty() {
            let schema = table
                .snapshot()
                .map_err(failed("reading its schema"))?
                .snapshot()
                .arrow_schema();
            let step = format!(
                "Z-ordering it by {} (cluster_by)",
                self.clustered.join(", ")
            );
            // The query returns the columns (the check saw to it); the table may not take
            // them (on_schema_change: ignore).
            if let Some(missing) = self
                .clustered
                .iter()
                .find(|c| schema.field_with_name(c).is_err())
            {
                return Err(failed(&step)(DeltaTableError::Generic(format!(
                    "the table has no column '{missing}' (on_schema_change decides which new columns it takes)"
                ))));
            }
            table = cluster::optimize(ctx, table, &self.clustered, commit)
                .await
                .map_err(failed(&step))?;
        }
        Ok(Committed {
            rows: committed.rows,
            version: table.version().or(committed.version),
        })
    }
}

async fn open(lake: &Lake, relation: &Relation) -> Result<Option<DeltaTable>, UpkeepError> {
    delta::open(lake, &layout::model_table(&relation.schema, &relation.name))
        .await
        .map_err(|source| UpkeepError::Open {
            relation: relation.to_string(),
            source,
        })
}
