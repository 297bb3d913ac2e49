//! Session parameters that change how DataFusion plans: `search_path` picks the schema of
//! new objects and of names found nowhere, and tells the catalog functions what is visible;
//! `TimeZone` the zone of `now()` and timestamptz arithmetic, and
//! `datafusion.*` reach DataFusion's own options.

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::pg_catalog;
use super::settings::Settings;

/// Applies every parameter DataFusion cares about (at login and after each SET).
pub fn session_settings(ctx: &SessionContext, settings: &Settings) -> Result<(), DataFusionError> {
    let state = ctx.state_ref();
    let mut state = state.write();
    let options = state.config_mut().options_mut();
    let path = settings.search_path();
    options.catalog.default_schema = path.first().to_string();
    pg_catalog::set_search_path(&mut options.extensions, &path);
    if let Some(zone) = settings.get("TimeZone") {
        options.set("datafusion.execution.time_zone", zone)?;
    }
    Ok(())
}

/// `SET datafusion.…` passes through to DataFusion's options.
pub fn datafusion_option(
    ctx: &SessionContext,
    name: &str,
    value: &str,
) -> Result<(), DataFusionError> {
    let state = ctx.state_ref();
    let mut state = state.write();
    state.config_mut().options_mut().set(name, value)
}
