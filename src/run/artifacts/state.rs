//! `--state <dir>`: a manifest saved earlier (by Strata or dbt) that `state:` selectors compare
//! the project with. A node is `new` when the saved manifest lacks it, `old` when it has it,
//! `modified.body` when its file's checksum differs, `modified.configs` when its config does
//! (defaults and empty values aside, relation keys apart), `modified.relation` when its schema or
//! alias does (not for tests); `modified` is any of these, or new.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map as JsonMap, Value as Json};

use super::{ArtifactError, manifest};
use crate::graph::{Graph, Selection};
use crate::project::Project;
use crate::run::RunError;
use crate::run::materialize::Relation;
use crate::run::nodes::graph_nodes;

/// A saved manifest's nodes, unit tests and sources, by unique id.
#[derive(Debug)]
pub struct StateManifest {
    pub path: PathBuf,
    entries: BTreeMap<String, Json>,
}

impl StateManifest {
    /// Reads `<dir>/manifest.json`.
    pub fn read(dir: &Path) -> Result<StateManifest, ArtifactError> {
        let path = dir.join(manifest::FILE);
        let json = super::read(&path, "manifest")?;
        let entries = entries(&json).ok_or_else(|| ArtifactError::Invalid {
            path: path.clone(),
            kind: "manifest",
            message: "it has no `nodes` mapping".into(),
        })?;
        Ok(StateManifest { path, entries })
    }

    /// The relation the saved manifest names for a model, seed or snapshot.
    pub fn relation(&self, unique_id: &str) -> Option<Relation> {
        let entry = self.entries.get(unique_id)?;
        let schema = entry.get("schema")?.as_str()?;
        let name = entry
            .get("alias")
            .and_then(Json::as_str)
            .or_else(|| entry.get("name")?.as_str())?;
        Some(Relation {
            schema: schema.to_string(),
            name: name.to_string(),
        })
    }

    /// The `state:` values the node with this `current` manifest entry matches.
    fn compare(&self, unique_id: &str, current: Option<&Json>) -> Vec<String> {
        let Some(saved) = self.entries.get(unique_id) else {
            return vec!["new".into(), "modified".into()];
        };
        let mut values = vec!["old".to_string()];
        let Some(current) = current else {
            return values;
        };
        let differs = |key: &str| saved.get(key) != current.get(key);
        let kind = current.get("resource_type").and_then(Json::as_str);
        // A unit test's checksum is dbt's hash of Python's rendering of it: compared by parts.
        let body = match kind {
            Some("unit_test") => ["given", "expect", "overrides"].iter().any(|k| differs(k)),
            _ => {
                checksum(saved) != checksum(current)
                    || (checksum(current).is_none_or(str::is_empty)
                        && (differs("raw_code") || differs("test_metadata")))
            }
        };
        let configs = config(saved) != config(current);
        // A test's relation is only where stored failures go: not a change of the test.
        let relation = !matches!(kind, Some("test" | "unit_test"))
            && ["schema", "alias"].iter().any(|key| {
                let text = |entry: &Json| {
                    entry
                        .get(*key)
                        .and_then(Json::as_str)
                        .map(str::to_lowercase)
                };
                text(saved) != text(current)
            });
        for (modified, value) in [
            (body, "modified.body"),
            (configs, "modified.configs"),
            (relation, "modified.relation"),
        ] {
            if modified {
                values.push(value.into());
            }
        }
        if body || configs || relation {
            values.push("modified".into());
        }
        values
    }
}

/// `nodes`, `unit_tests` and `sources` of a manifest, by unique id. A generic test of dbt's is
/// also found by its id without dbt's hash suffix (`test.p.not_null_a_id.b8516e7472`), as
/// Strata names it.
fn entries(manifest: &Json) -> Option<BTreeMap<String, Json>> {
    let mut entries = BTreeMap::new();
    for key in ["nodes", "unit_tests", "sources"] {
        match manifest.get(key) {
            Some(Json::Object(map)) => entries.extend(map.clone()),
            _ if key == "nodes" => return None,
            _ => {}
        }
    }
    let hashed: Vec<(String, Json)> = entries
        .iter()
        .filter(|(id, _)| id.starts_with("test."))
        .filter_map(|(id, entry)| {
            let (bare, hash) = id.rsplit_once('.')?;
            let is_hash = hash.len() == 10 && hash.chars().all(|c| c.is_ascii_hexdigit());
            (is_hash && bare.matches('.').count() >= 2).then(|| (bare.to_string(), entry.clone()))
        })
        .collect();
    for (bare, entry) in hashed {
        entries.entry(bare).or_insert(entry);
    }
    Some(entries)
}

/// A manifest entry's checksum (an object for nodes, a string for unit tests).
fn checksum(entry: &Json) -> Option<&str> {
    let checksum = entry.get("checksum")?;
    checksum.get("checksum").unwrap_or(checksum).as_str()
}

/// Config values that are dbt's defaults: an entry holding one is as if not written.
const DEFAULTS: [(&str, &str); 10] = [
    ("enabled", "true"),
    ("on_schema_change", "\"ignore\""),
    ("on_configuration_change", "\"apply\""),
    ("lookback", "1"),
    ("show", "true"),
    ("alias_types", "true"),
    ("enforced", "false"),
    ("access", "\"protected\""),
    ("delimiter", "\",\""),
    ("fail_calc", "\"count(*)\""),
];

/// A config to compare: the relation keys (compared apart) and every empty or default
/// value left out, at any depth, so that Strata's and dbt's spellings of one config agree.
fn config(entry: &Json) -> Json {
    fn normalized(value: &Json) -> Option<Json> {
        match value {
            Json::Null => None,
            Json::Array(items) if items.is_empty() => None,
            Json::Object(map) => {
                let kept: JsonMap<String, Json> = map
                    .iter()
                    .filter(|(key, value)| !is_default(key, value))
                    .filter_map(|(key, value)| Some((key.clone(), normalized(value)?)))
                    .collect();
                (!kept.is_empty()).then_some(Json::Object(kept))
            }
            other => Some(other.clone()),
        }
    }
    fn is_default(key: &str, value: &Json) -> bool {
        let text = value.to_string();
        DEFAULTS.iter().any(|(k, v)| *k == key && *v == text)
            || (key == "severity"
                && value
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("error")))
            || (["warn_if", "error_if"].contains(&key) && value.as_str() == Some("!= 0"))
    }
    let mut config = entry.get("config").cloned().unwrap_or(Json::Null);
    if let Json::Object(map) = &mut config {
        for key in ["schema", "alias", "database"] {
            map.remove(key);
        }
    }
    normalized(&config).unwrap_or(Json::Null)
}

/// The selection of `select`/`exclude` in `project`, `state:` selectors compared with `state`;
/// with the graph it was made on.
pub fn select(
    project: &Project,
    state: Option<&StateManifest>,
    select: &[String],
    exclude: &[String],
) -> Result<(Graph, Selection), RunError> {
    let mut nodes = graph_nodes(project);
    let by_state = select
        .iter()
        .chain(exclude)
        .flat_map(|s| s.split_whitespace())
        .find(|s| s.contains("state:"));
    match (state, by_state) {
        (None, Some(selector)) => return Err(RunError::NoState(selector.to_string())),
        (Some(state), _) => {
            let current = entries(&manifest::manifest(project)).unwrap_or_default();
            for node in &mut nodes {
                node.state = state.compare(&node.id, current.get(&node.id));
            }
        }
        (None, None) => {}
    }
    let graph = Graph::new(nodes)?;
    let selection = graph.select(select, exclude)?;
    Ok((graph, selection))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strata_and_dbt_spellings_of_one_config_agree() {
        let dbt = json!({"config": {"enabled": true, "schema": null, "tags": [], "meta": {},
            "materialized": "table", "post-hook": [], "contract": {"enforced": false, "alias_types": true},
            "docs": {"show": true, "node_color": null}, "on_schema_change": "ignore", "lookback": 1}});
        let strata = json!({"config": {"materialized": "table", "schema": "main", "alias": null,
            "severity": "error", "enabled": true, "tags": [], "meta": {}, "unique_key": null}});
        assert_eq!(config(&dbt), config(&strata));
        let changed = json!({"config": {"materialized": "view"}});
        assert_ne!(config(&dbt), config(&changed));
    }

    #[test]
    fn new_old_and_modified_nodes() {
        let saved = json!({"nodes": {"model.p.a": {"checksum": {"name": "sha256", "checksum": "1"},
            "config": {"materialized": "view"}, "schema": "main", "alias": "a"}}});
        let state = StateManifest {
            path: PathBuf::from("state/manifest.json"),
            entries: entries(&saved).unwrap(),
        };
        assert_eq!(state.compare("model.p.b", None), ["new", "modified"]);
        let same = saved["nodes"]["model.p.a"].clone();
        assert_eq!(state.compare("model.p.a", Some(&same)), ["old"]);
        let mut edited = same.clone();
        edited["checksum"]["checksum"] = json!("2");
        edited["alias"] = json!("b");
        assert_eq!(
            state.compare("model.p.a", Some(&edited)),
            ["old", "modified.body", "modified.relation", "modified"]
        );
    }
}
