//! DataFusion over the lake: a context in which the lake's paths and URLs resolve and Delta
//! tables can be read and written, and a loaded Delta table registered in it. The storage
//! layer's own session: Strata's metadata tables are read with it as is, and `session` builds
//! the user's session on it with Strata's planning rules and catalog.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;

use super::Lake;

/// A context over `lake` with DataFusion's defaults: what reading Strata's own metadata tables
/// needs.
pub fn base_context(lake: &Lake) -> SessionContext {
    over_lake(
        lake,
        state_builder(SessionConfig::new(), Arc::new(RuntimeEnv::default())).build(),
    )
}

/// DataFusion's default features with Delta's planner installed (Delta writes and merges plan
/// nodes of their own), for a caller to add its rules to before building.
pub fn state_builder(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionStateBuilder {
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_query_planner(local_planner())
}

/// The planner of queries run in this process: DataFusion's, with Delta's nodes and the
/// parallel write of Delta files ([`super::write`]).
pub fn local_planner() -> Arc<dyn QueryPlanner + Send + Sync> {
    Arc::new(super::write::LakePlanner)
}

/// A context with `state` and the lake's file system registered, so paths and URLs in the lake
/// resolve.
pub fn over_lake(lake: &Lake, state: SessionState) -> SessionContext {
    let ctx = SessionContext::new_with_state(state);
    ctx.register_object_store(&lake.store_url(), Arc::clone(lake.base_store()));
    ctx
}

/// Registers a loaded Delta table under `name` (at the snapshot it was loaded at), read as
/// [`super::delta_files::provider`] says.
pub async fn register_delta(
    ctx: &SessionContext,
    name: &str,
    table: &DeltaTable,
) -> Result<(), DataFusionError> {
    let provider = super::delta_files::provider(table, name, &ctx.state()).await?;
    ctx.register_table(name, provider)?;
    Ok(())
}
