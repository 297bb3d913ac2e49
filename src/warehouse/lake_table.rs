//! A modelled table as queries see it: planned against the version that was latest when its
//! name was looked up, scanned at the version that is latest when the query runs. A plan kept
//! for a prepared statement (Parse once, Execute many) so reads what a build committed since,
//! as PostgreSQL's prepared statements do; re-checking costs one listing of the table's log.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use object_store::path::Path;

use crate::lake::Lake;
use crate::lake::delta::Commit;
use crate::lake::snapshots::Snapshots;

/// One Delta table of the lake, read at its latest version.
#[derive(Debug)]
pub struct LakeTable {
    lake: Lake,
    path: Path,
    /// `schema.table`, for messages.
    name: String,
    snapshots: Arc<Snapshots>,
    /// The commit the plan was made at, and that version's provider.
    planned: Commit,
    provider: Arc<dyn TableProvider>,
}

impl LakeTable {
    /// The table at `path`, at its latest version, or `None` before its first commit.
    pub async fn latest(
        lake: &Lake,
        snapshots: &Arc<Snapshots>,
        path: Path,
        name: String,
        session: &dyn Session,
    ) -> Result<Option<Self>> {
        let Some((planned, version)) = snapshots.latest(lake, &path).await.map_err(external)?
        else {
            return Ok(None);
        };
        let provider = version.provider(&name, session).await?;
        Ok(Some(Self {
            lake: lake.clone(),
            path,
            name,
            snapshots: Arc::clone(snapshots),
            planned,
            provider,
        }))
    }

    /// The provider of the version latest now: the planned one, or a newer one with the same
    /// columns that takes `filters` as the planned one did (a version's features decide how
    /// it is read, and a filter the plan left to the scan must still be applied).
    async fn current(
        &self,
        session: &dyn Session,
        filters: &[Expr],
    ) -> Result<Arc<dyn TableProvider>> {
        let latest = self
            .snapshots
            .latest(&self.lake, &self.path)
            .await
            .map_err(external)?;
        let Some((commit, version)) = latest else {
            return Err(DataFusionError::Plan(format!(
                "{} was dropped after the statement was planned",
                self.name
            )));
        };
        if commit == self.planned {
            return Ok(Arc::clone(&self.provider));
        }
        let provider = version.provider(&self.name, session).await?;
        let filters: Vec<&Expr> = filters.iter().collect();
        if provider.schema() != self.provider.schema()
            || provider.supports_filters_pushdown(&filters)?
                != self.provider.supports_filters_pushdown(&filters)?
        {
            // PostgreSQL's words when a prepared statement's table changed shape.
            return Err(DataFusionError::Plan(format!(
                "cached plan must not change result type: {} changed its columns after the \
                 statement was planned (version {}); prepare it again",
                self.name, commit.version
            )));
        }
        Ok(provider)
    }
}

fn external(e: deltalake::DeltaTableError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.provider.schema()
    }

    fn table_type(&self) -> TableType {
        self.provider.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.provider.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.provider.statistics()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.current(state, filters)
            .await?
            .scan(state, projection, filters, limit)
            .await
    }
}
