//! The one place a DataFusion session is built. Every command that plans or runs SQL gets its
//! context here, so object stores, Delta support, table functions and the catalog are
//! registered the same way everywhere (and a distributed session can replace it later).

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;

use crate::lake::Lake;

/// Name of the catalog Strata's schemas live in.
pub const CATALOG: &str = "strata";
/// Schema for session-local objects (temporary views).
pub const DEFAULT_SCHEMA: &str = "public";

/// A bare session over `lake`: its file system registered so paths and URLs in the lake
/// resolve, `information_schema` on. Used for Strata's own metadata reads.
pub fn base_context(lake: &Lake) -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, DEFAULT_SCHEMA);
    let ctx = SessionContext::new_with_config(config);
    ctx.register_object_store(&lake.store_url(), Arc::clone(lake.base_store()));
    ctx
}

/// Registers a loaded Delta table under `name` (at the snapshot it was loaded at).
pub async fn register_delta(
    ctx: &SessionContext,
    name: &str,
    table: &DeltaTable,
) -> Result<(), DataFusionError> {
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let provider = table.table_provider().await?;
    ctx.register_table(name, provider)?;
    Ok(())
}
