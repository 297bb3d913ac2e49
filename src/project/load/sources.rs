//! Sources: each table of each `sources:` entry of the properties files, with its rendered
//! schema, identifier, meta and external location.

use std::collections::BTreeMap;

use serde_json::{Map as JsonMap, Value as Json};

use super::render::{render_error, render_json};
use super::{Loader, string_list};
use crate::jinja::config_call::merge_config;
use crate::project::files::template_name;
use crate::project::freshness::merged;
use crate::project::schema::Properties;
use crate::project::unsupported::unknown_keys;
use crate::project::{ProjectError, SourceTable};

/// The keys of a source's `config:` Strata applies (or that only document).
const SOURCE_CONFIG: &[&str] = &[
    "enabled",
    "meta",
    "tags",
    "event_time",
    "freshness",
    "loaded_at_field",
    "docs",
];

impl Loader {
    pub(super) fn sources(&mut self, props: &Properties) -> Result<(), ProjectError> {
        for patch in &props.sources {
            let def = &patch.def;
            let path = &patch.path;
            let what = format!("source '{}'", def.name);
            let source_config = match &def.config {
                Some(config) => self.rendered_config(config, path, &what)?,
                None => JsonMap::new(),
            };
            let render = |s: &str| self.render_text(Some(s), path, &what);
            let schema = render(def.schema.as_deref().unwrap_or(&def.name))?;
            let database = def.database.as_deref().map(render).transpose()?;
            let source_description = self.render_text(def.description.as_deref(), path, &what)?;
            let mut source_meta = def.meta.clone().unwrap_or_default();
            if let Some(Json::Object(meta)) = source_config.get("meta") {
                source_meta.extend(meta.clone());
            }
            let source_tags = string_list(def.tags.as_ref());
            for table in def.tables.iter().flatten() {
                let key = (self.name.clone(), def.name.clone(), table.name.clone());
                let unique_id = format!("source.{}.{}.{}", self.name, def.name, table.name);
                let mut config = source_config.clone();
                if let Some(table_config) = &table.config {
                    merge_config(
                        &mut config,
                        &self.rendered_config(table_config, path, &unique_id)?,
                    );
                }
                if !self.enabled(&config, path, &unique_id)? {
                    self.disabled_sources.insert(key);
                    continue;
                }
                if self.sources.contains_key(&key) {
                    return Err(ProjectError::Invalid {
                        path: path.clone(),
                        message: format!("{what} lists table '{}' twice", table.name),
                    });
                }
                let identifier = self.render_text(
                    Some(table.identifier.as_deref().unwrap_or(&table.name)),
                    path,
                    &unique_id,
                )?;
                let mut meta: BTreeMap<String, Json> = source_meta.clone().into_iter().collect();
                meta.extend(table.meta.clone().unwrap_or_default());
                if let Some(Json::Object(m)) = table.config.as_ref().and_then(|c| c.get("meta")) {
                    meta.extend(m.clone());
                }
                let mut meta_json = Json::Object(meta.clone().into_iter().collect());
                let ctx = self.yaml_frame().ctx.clone();
                render_json(
                    &self.env,
                    &template_name(path),
                    &ctx,
                    &mut meta_json,
                    &|_| false,
                )
                .map_err(|f| render_error(path, &unique_id, f))?;
                let meta: BTreeMap<String, Json> = match meta_json {
                    Json::Object(m) => m.into_iter().collect(),
                    _ => BTreeMap::new(),
                };
                let external_location = match meta.get("external_location") {
                    Some(Json::String(location)) => Some(
                        location
                            .replace("{name}", &table.name)
                            .replace("{identifier}", &identifier)
                            .replace("{schema}", &schema),
                    ),
                    _ => match &table.external {
                        Some(Json::Object(ext)) => ext
                            .get("location")
                            .and_then(Json::as_str)
                            .map(|l| self.render_text(Some(l), path, &unique_id))
                            .transpose()?,
                        _ => None,
                    },
                };
                let text = |key: &str| config.get(key).and_then(Json::as_str).map(str::to_string);
                let loaded_at_field = text("loaded_at_field")
                    .or_else(|| table.loaded_at_field.clone())
                    .or_else(|| def.loaded_at_field.clone());
                // dbt 1.10 moved `freshness` into `config:`; the top-level keys still count.
                let freshness = merged(
                    source_config.get("freshness").or(def.freshness.as_ref()),
                    table
                        .config
                        .as_ref()
                        .and_then(|c| c.get("freshness"))
                        .or(table.freshness.as_ref()),
                )
                .map_err(|message| ProjectError::Invalid {
                    path: path.clone(),
                    message: format!("{unique_id}: {message}"),
                })?;
                let mut tags = source_tags.clone();
                tags.extend(string_list(table.tags.as_ref()));
                tags.extend(string_list(config.get("tags")));
                self.unsupported.extend(unknown_keys(
                    &config.clone().into_iter().collect(),
                    SOURCE_CONFIG,
                    path,
                    &unique_id,
                    "the source is read without it",
                ));
                let source_table = SourceTable {
                    unique_id: unique_id.clone(),
                    package: self.name.clone(),
                    source_name: def.name.clone(),
                    name: table.name.clone(),
                    identifier,
                    schema: schema.clone(),
                    database: database.clone(),
                    description: self.render_text(
                        table.description.as_deref(),
                        path,
                        &unique_id,
                    )?,
                    source_description: source_description.clone(),
                    loader: def.loader.clone(),
                    columns: self.columns(table.columns.as_ref(), path, &unique_id)?,
                    meta,
                    tags,
                    external_location,
                    loaded_at_field,
                    freshness,
                    event_time: text("event_time"),
                    path: path.clone(),
                };
                self.sources.insert(key, source_table);
            }
        }
        Ok(())
    }
}
