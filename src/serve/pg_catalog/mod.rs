//! `pg_catalog`, `information_schema` and the PostgreSQL functions tools call.
//!
//! [`register`] installs them into a session built by [`crate::session::context`]. The
//! relations they describe are read from the session's catalog when a query scans them, so
//! tables built later appear; PostgreSQL's fixed catalog data is loaded once per process.

mod catalog_types;
mod descriptions;
mod functions;
mod information_schema;
mod literals;
mod live;
mod live_table;
mod schema;
mod session;
mod tables;
mod types;

use std::sync::{Arc, LazyLock};

use datafusion::catalog::TableProvider;
use datafusion::common::DataFusionError;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::generate_series_arg_coercion::CoerceIntArgsToBigInt;
use datafusion_pg_catalog::pg_catalog::{
    self as upstream, PgCatalogSchemaProvider, PgCatalogStaticTables, array_bounds_udf,
    quote_ident_udf,
};

pub use descriptions::{Descriptions, RelationDoc};
pub use functions::VERSION;
pub use session::{PgSession, set_search_path, set_user};
pub use types::{
    column_type_name, format_type, marked_type, pg_field_type, pg_type, type_modifier,
};

use crate::session::CATALOG;
use catalog_types::CatalogTypes;
use live::{INFORMATION_SCHEMA, Live, PG_CATALOG};
use schema::Overlay;

/// PostgreSQL's fixed catalog tables, decoded once and shared by every session.
static FIXED_UPSTREAM: LazyLock<Result<Arc<PgCatalogStaticTables>, String>> = LazyLock::new(|| {
    PgCatalogStaticTables::try_new()
        .map(Arc::new)
        .map_err(|e| e.to_string())
});

/// Tables by name.
type Tables = Vec<(&'static str, Arc<dyn TableProvider>)>;

/// The database, role and type tables, built once.
static FIXED_OWN: LazyLock<Result<Tables, String>> = LazyLock::new(|| {
    let upstream = fixed(&FIXED_UPSTREAM).map_err(|e| e.to_string())?;
    tables::fixed_tables(&upstream).map_err(|e| e.to_string())
});

fn fixed<T: Clone>(tables: &Result<T, String>) -> Result<T, DataFusionError> {
    tables
        .clone()
        .map_err(|e| DataFusionError::Internal(format!("PostgreSQL catalog data: {e}")))
}

/// Installs `pg_catalog`, PostgreSQL's `information_schema` and the PostgreSQL functions in
/// `ctx`, describing its `strata` catalog with `descriptions` as comments.
pub fn register(
    ctx: &SessionContext,
    descriptions: Arc<Descriptions>,
) -> Result<(), DataFusionError> {
    let catalog = ctx.catalog(CATALOG).ok_or_else(|| {
        DataFusionError::Configuration(format!("the session has no catalog {CATALOG}"))
    })?;
    let catalogs = Arc::clone(ctx.state_ref().read().catalog_list());
    let live = Arc::new(Live::new(Arc::clone(&catalog), descriptions));

    let upstream = PgCatalogSchemaProvider::try_new(
        Arc::clone(&catalogs),
        fixed(&FIXED_UPSTREAM)?,
        EmptyContextProvider,
    )?;
    let mut own = tables::live_tables(&live);
    own.extend(fixed(&FIXED_OWN)?);
    catalog.register_schema(PG_CATALOG, Arc::new(Overlay::new(own, Arc::new(upstream))))?;
    catalog.register_schema(
        INFORMATION_SCHEMA,
        Arc::new(information_schema::information_schema(&live, catalogs)),
    )?;

    {
        let state = ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        // DataFusion's built-in information_schema would shadow the PostgreSQL one.
        options.catalog.information_schema = false;
        if options.extensions.get::<PgSession>().is_none() {
            options.extensions.insert(PgSession::default());
        }
        // Lets casts to `regclass`, `oid`, `pg_catalog.text`, `name`, ... plan.
        *state = crate::session::with_type_planner(state.clone(), Arc::new(CatalogTypes));
        state.register_expr_planner(Arc::new(literals::BooleanLiterals))?;
    }

    for udf in [
        upstream::create_pg_get_constraintdef(),
        upstream::create_pg_encoding_to_char_udf(),
        upstream::create_pg_backend_pid_udf(),
        upstream::create_pg_relation_size_udf(),
        upstream::create_pg_total_relation_size_udf(),
        upstream::create_pg_get_partkeydef_udf(),
        upstream::create_pg_relation_is_publishable_udf(),
        upstream::create_pg_get_statisticsobjdef_columns_udf(),
        upstream::create_pg_stat_get_numscans(),
        upstream::create_pg_get_partition_ancestors_udf(),
        quote_ident_udf::create_quote_ident_udf(),
        quote_ident_udf::create_parse_ident_udf(),
        array_bounds_udf::create_array_upper_udf(),
        array_bounds_udf::create_array_lower_udf(),
    ] {
        ctx.register_udf(udf);
    }
    ctx.register_udtf(
        "pg_get_keywords",
        fixed(&FIXED_UPSTREAM)?.pg_get_keywords.clone(),
    );
    CoerceIntArgsToBigInt::widen(ctx);
    functions::register(ctx, &live);
    Ok(())
}
