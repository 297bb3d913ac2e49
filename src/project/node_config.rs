//! Node configs as dbt layers them: folder configs from `dbt_project.yml`, then the
//! properties file's `config:`, then the file's own `{{ config(...) }}`. Each layer is a raw
//! key/value map (keys normalized: no `+`, `_` for `-`); [`merge_config`] (dbt's rule, which the
//! in-file `config()` follows too) stacks them and
//! [`build_node_config`] turns the result into a typed [`NodeConfig`].

use std::collections::BTreeMap;

use serde_json::{Map as JsonMap, Value as Json};

use super::{Materialized, NodeConfig, Resource, Severity};
use crate::jinja::config_call::{loose_list, merge_config, normalize_key};

/// Configs whose value is a mapping: an unprefixed key of this name is a config, not a folder.
const DICT_CONFIGS: &[&str] = &[
    "meta",
    "persist_docs",
    "docs",
    "column_types",
    "grants",
    "contract",
    "quoting",
    "labels",
];

/// Normalizes the keys of a config map written by a user.
pub(crate) fn normalize_map(map: &JsonMap<String, Json>) -> JsonMap<String, Json> {
    map.iter()
        .map(|(k, v)| (normalize_key(k), v.clone()))
        .collect()
}

/// The configs written at one level of a `models:`/`seeds:`/`data_tests:` tree.
fn level_configs(level: &JsonMap<String, Json>) -> JsonMap<String, Json> {
    let mut configs = JsonMap::new();
    for (key, value) in level {
        let is_config = key.starts_with('+')
            || match value {
                Json::Object(_) => DICT_CONFIGS.contains(&normalize_key(key).as_str()),
                _ => true,
            };
        if is_config {
            configs.insert(normalize_key(key), value.clone());
        }
    }
    configs
}

/// The folder-level config of the node at `fqn` (`[project, dirs..., name]`): the tree's
/// top-level configs, then those under the project's name, then each folder down to the node.
pub(crate) fn folder_config(
    tree: Option<&Json>,
    project: &str,
    fqn: &[String],
) -> JsonMap<String, Json> {
    let mut out = JsonMap::new();
    let Some(Json::Object(top)) = tree else {
        return out;
    };
    merge_config(&mut out, &level_configs(top));
    let Some(Json::Object(project_level)) = top.get(project) else {
        return out;
    };
    let mut level = project_level;
    merge_config(&mut out, &level_configs(level));
    for segment in fqn.iter().skip(1) {
        match level.get(segment.as_str()) {
            Some(Json::Object(next)) if !DICT_CONFIGS.contains(&segment.as_str()) => {
                level = next;
                merge_config(&mut out, &level_configs(level));
            }
            _ => break,
        }
    }
    out
}

/// Whether a raw config leaves the node enabled.
pub(crate) fn is_enabled(raw: &JsonMap<String, Json>) -> Result<bool, String> {
    match raw.get("enabled") {
        None | Some(Json::Null) => Ok(true),
        Some(value) => boolish(value, "enabled"),
    }
}

/// The typed config of a node from its merged raw config. The schema is left as the
/// configured custom schema; the loader resolves `schema` itself.
pub(crate) fn build_node_config(
    resource: Resource,
    raw: &JsonMap<String, Json>,
) -> Result<(NodeConfig, Option<String>), String> {
    let mut config = NodeConfig {
        materialized: match resource {
            Resource::Model => Materialized::View,
            Resource::Seed => Materialized::Seed,
            Resource::Test => Materialized::Test,
            Resource::Snapshot => Materialized::Snapshot,
        },
        schema: String::new(),
        alias: None,
        tags: Vec::new(),
        unique_key: Vec::new(),
        enabled: true,
        full_refresh: None,
        severity: Severity::Error,
        meta: BTreeMap::new(),
        where_clause: None,
        extra: BTreeMap::new(),
    };
    let mut custom_schema = None;
    for (key, value) in raw {
        match key.as_str() {
            "materialized" => {
                if resource == Resource::Model {
                    config.materialized = materialized(value)?;
                }
            }
            "schema" => custom_schema = opt_string(value, key)?,
            "alias" => config.alias = opt_string(value, key)?,
            "tags" => config.tags = string_list(value, key)?,
            "unique_key" => config.unique_key = string_list(value, key)?,
            "enabled" => config.enabled = boolish(value, key)?,
            "full_refresh" => {
                config.full_refresh = match value {
                    Json::Null => None,
                    other => Some(boolish(other, key)?),
                }
            }
            "severity" => config.severity = severity(value)?,
            "meta" => {
                config.meta = match value {
                    Json::Null => BTreeMap::new(),
                    Json::Object(map) => map.clone().into_iter().collect(),
                    other => return Err(format!("config 'meta' must be a mapping, got {other}")),
                }
            }
            "where" => config.where_clause = opt_string(value, key)?,
            _ => {
                config.extra.insert(key.clone(), value.clone());
            }
        }
    }
    Ok((config, custom_schema))
}

/// A hook key's SQL: a string, or a list of strings or `{sql: ...}` mappings (dbt's forms).
pub(crate) fn hook_list(value: Option<&Json>) -> Vec<String> {
    let one = |item: &Json| match item {
        Json::String(s) => Some(s.clone()),
        Json::Object(map) => map.get("sql")?.as_str().map(str::to_string),
        _ => None,
    };
    match value {
        Some(Json::Array(items)) => items.iter().filter_map(one).collect(),
        Some(item) => one(item).into_iter().collect(),
        None => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.trim().is_empty())
    .collect()
}

fn materialized(value: &Json) -> Result<Materialized, String> {
    let Json::String(name) = value else {
        return Err(format!(
            "config 'materialized' must be a string, got {value}"
        ));
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "view" => Ok(Materialized::View),
        "table" => Ok(Materialized::Table),
        "incremental" => Ok(Materialized::Incremental),
        "ephemeral" => Ok(Materialized::Ephemeral),
        other => Err(format!(
            "materialization '{other}' is not supported (Strata supports view, table, incremental and ephemeral)"
        )),
    }
}

fn severity(value: &Json) -> Result<Severity, String> {
    match value {
        Json::String(s) if s.trim().eq_ignore_ascii_case("warn") => Ok(Severity::Warn),
        Json::String(s) if s.trim().eq_ignore_ascii_case("error") => Ok(Severity::Error),
        other => Err(format!(
            "config 'severity' must be 'warn' or 'error', got {other}"
        )),
    }
}

fn opt_string(value: &Json, key: &str) -> Result<Option<String>, String> {
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.clone())),
        Json::Number(n) => Ok(Some(n.to_string())),
        other => Err(format!("config '{key}' must be a string, got {other}")),
    }
}

pub(crate) fn boolish(value: &Json, key: &str) -> Result<bool, String> {
    match value {
        Json::Bool(b) => Ok(*b),
        Json::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Json::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("config '{key}' must be true or false, got {other}")),
    }
}

fn string_list(value: &Json, key: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in loose_list(Some(value)) {
        match item {
            Json::String(s) => {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            other => {
                return Err(format!(
                    "config '{key}' must be a string or a list of strings, got {other}"
                ));
            }
        }
    }
    Ok(out)
}

impl NodeConfig {
    /// The `pre_hook` or `post_hook` SQL of the node, in order (folder ones first).
    pub fn hooks(&self, key: &str) -> Vec<String> {
        hook_list(self.extra.get(key))
    }

    /// The config as templates see it (`config.get(...)`, `model.config`).
    pub fn to_json(&self) -> JsonMap<String, Json> {
        let mut map = JsonMap::new();
        for (key, value) in &self.extra {
            map.insert(key.clone(), value.clone());
        }
        map.insert(
            "materialized".into(),
            Json::from(self.materialized.as_str()),
        );
        map.insert("schema".into(), Json::from(self.schema.clone()));
        map.insert(
            "alias".into(),
            self.alias.clone().map_or(Json::Null, Json::from),
        );
        map.insert("tags".into(), Json::from(self.tags.clone()));
        map.insert(
            "unique_key".into(),
            match self.unique_key.as_slice() {
                [] => Json::Null,
                [one] => Json::from(one.clone()),
                many => Json::from(many.to_vec()),
            },
        );
        map.insert("enabled".into(), Json::from(self.enabled));
        map.insert(
            "full_refresh".into(),
            self.full_refresh.map_or(Json::Null, Json::from),
        );
        map.insert("severity".into(), Json::from(self.severity.as_str()));
        map.insert(
            "meta".into(),
            Json::Object(self.meta.clone().into_iter().collect()),
        );
        if let Some(clause) = &self.where_clause {
            map.insert("where".into(), Json::from(clause.clone()));
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Json) -> JsonMap<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn folder_configs_walk_the_fqn() {
        let tree = json!({
            "+tags": ["all"],
            "shop": {
                "materialized": "view",
                "+meta": {"owner": "a"},
                "silver": {"+schema": "silver", "+materialized": "table", "orders": {"+alias": "o"}},
                "other": {"+schema": "x"}
            },
            "some_package": {"+schema": "ignored"}
        });
        let fqn = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let got = folder_config(Some(&tree), "shop", &fqn(&["shop", "silver", "orders"]));
        assert_eq!(
            Json::Object(got),
            json!({"tags": ["all"], "materialized": "table", "meta": {"owner": "a"}, "schema": "silver", "alias": "o"})
        );
        let got = folder_config(Some(&tree), "shop", &fqn(&["shop", "gold", "x"]));
        assert_eq!(
            Json::Object(got),
            json!({"tags": ["all"], "materialized": "view", "meta": {"owner": "a"}})
        );
    }

    #[test]
    fn typed_configs() {
        let raw = map(json!({
            "materialized": "incremental", "unique_key": ["id", "day"], "enabled": "true",
            "full_refresh": false, "severity": "WARN", "incremental_strategy": "merge", "schema": "gold"
        }));
        let (config, schema) = build_node_config(Resource::Model, &raw).unwrap();
        assert_eq!(config.materialized, Materialized::Incremental);
        assert_eq!(config.unique_key, ["id", "day"]);
        assert_eq!(config.full_refresh, Some(false));
        assert_eq!(config.severity, Severity::Warn);
        assert_eq!(config.extra["incremental_strategy"], json!("merge"));
        assert_eq!(schema.as_deref(), Some("gold"));
        let bad = map(json!({"materialized": "snapshot"}));
        assert!(
            build_node_config(Resource::Model, &bad)
                .unwrap_err()
                .contains("'snapshot' is not supported")
        );
    }
}
