//! The one place a DataFusion session is built. Every command that plans or runs SQL gets its
//! context here, so object stores, Delta support, table functions and the catalog are
//! registered the same way everywhere (and a distributed session can replace it later).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, DynamicFileCatalog, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;

use crate::bronze::catalog::{Bronze, BronzeSchema};
use crate::bronze::functions::{self, RawPathTables};
use crate::bronze::paths::AllowedRoots;
use crate::config::Config;
use crate::lake::Lake;
use crate::land::{SourceKind, SourcesFile};

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

/// The full session users query: the `bronze` schema over landed raw files, the raw-read
/// table functions and bare quoted paths, confined to the lake and declared source folders.
pub async fn context(config: &Config, lake: &Lake) -> Result<SessionContext, DataFusionError> {
    let sources_path = config.project_path(&config.land.sources);
    let declaration = if sources_path.exists() {
        Some(SourcesFile::load(&sources_path).map_err(|e| DataFusionError::External(Box::new(e)))?)
    } else {
        None
    };
    let folders: Vec<PathBuf> = declaration
        .iter()
        .flat_map(|d| &d.sources)
        .map(|s| match &s.kind {
            SourceKind::Folder { location } => location.clone(),
        })
        .collect();
    let roots = AllowedRoots::new(&config.project_dir, config.lake.clone(), folders);
    let bronze = Arc::new(Bronze::new(lake.clone(), declaration.as_ref(), roots));
    bronze.refresh().await?;

    let ctx = base_context(lake);
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(DEFAULT_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
    catalog.register_schema("bronze", Arc::new(BronzeSchema(Arc::clone(&bronze))))?;
    ctx.register_catalog(CATALOG, Arc::new(catalog));
    functions::register(&ctx, &bronze);

    // Unknown quoted names in FROM are tried as raw paths (like DuckDB and datafusion-cli).
    let state = ctx.state();
    let catalogs = Arc::new(DynamicFileCatalog::new(
        Arc::clone(state.catalog_list()),
        Arc::new(RawPathTables(bronze)),
    ));
    let state = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(catalogs)
        .build();
    Ok(SessionContext::new_with_state(state))
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
