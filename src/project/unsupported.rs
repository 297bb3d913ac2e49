//! Nothing silently ignored: every key of `dbt_project.yml`, a properties file or a node's
//! config that Strata reads but does not apply (`grants`, `exposures:`, ...) is recorded
//! here, naming the file, the node and the key, so the command can warn about it once (or,
//! with `--strict`, refuse to run). Keys applied outside the typed config (`fail_calc`, a
//! seed's `column_types`, `incremental_strategy`) are not reported.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::Resource;

/// A key Strata does not apply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unsupported {
    /// The file that sets it.
    pub path: PathBuf,
    /// What it is set on (`model.shop.orders`, `source 'shop'`, `the project`).
    pub node: String,
    /// The key, dotted where nested (`contract.enforced`).
    pub key: String,
    /// What Strata does instead (`the model is built without it`).
    pub effect: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: `{}` is not supported yet; {}",
            self.path.display(),
            self.node,
            self.key,
            self.effect
        )
    }
}

/// Keys of `dbt_project.yml` that need nothing from Strata.
const PROJECT_BENIGN: &[&str] = &[
    "version",
    "config-version",
    "profile",
    "require-dbt-version",
    "clean-targets",
    "log-path",
];

/// Top-level keys of a properties file that only document (Strata builds no analyses).
const PROPERTIES_BENIGN: &[&str] = &["macros", "groups", "analyses"];

/// Keys of a model's or seed's properties that only document or govern references.
const PATCH_BENIGN: &[&str] = &[
    "docs",
    "group",
    "access",
    "latest_version",
    "deprecation_date",
];

/// Config keys (besides those Strata applies) that only document.
const CONFIG_BENIGN: &[&str] = &["docs", "persist_docs", "group", "access", "description"];

/// The keys of `other` (what a file sets beyond what Strata reads) that are not `benign`, as
/// unsupported on `node` in `path`.
pub(crate) fn unknown_keys(
    other: &BTreeMap<String, Json>,
    benign: &[&str],
    path: &Path,
    node: &str,
    effect: &str,
) -> Vec<Unsupported> {
    other
        .iter()
        .filter(|(k, v)| !benign.contains(&k.as_str()) && !is_unset(v))
        .map(|(key, _)| Unsupported {
            path: path.to_path_buf(),
            node: node.to_string(),
            key: key.clone(),
            effect: effect.to_string(),
        })
        .collect()
}

/// `dbt_project.yml`'s keys beyond those Strata reads.
pub(crate) fn project_keys(other: &BTreeMap<String, Json>, path: &Path) -> Vec<Unsupported> {
    unknown_keys(
        other,
        PROJECT_BENIGN,
        path,
        "the project",
        "the project is run without it",
    )
}

/// A properties file's top-level keys beyond `models`, `seeds` and `sources`.
pub(crate) fn properties_keys(other: &BTreeMap<String, Json>, path: &Path) -> Vec<Unsupported> {
    unknown_keys(
        other,
        PROPERTIES_BENIGN,
        path,
        "the properties file",
        "it is not run or checked",
    )
}

/// A model's or seed's properties beyond those Strata reads.
pub(crate) fn patch_keys(
    other: &BTreeMap<String, Json>,
    path: &Path,
    node: &str,
) -> Vec<Unsupported> {
    unknown_keys(other, PATCH_BENIGN, path, node, "it is built without it")
}

/// The effect of config `key` = `value` of a `resource`'s node when Strata does not apply it
/// (the keys it does apply never get here), or `None` when the value asks for what Strata
/// does anyway.
pub(crate) fn config_effect(resource: Resource, key: &str, value: &Json) -> Option<String> {
    if is_unset(value) || CONFIG_BENIGN.contains(&key) {
        return None;
    }
    let default = match key {
        // An incremental model's strategy, columns and schema change policy, and a table's
        // partitions (see `run::incremental`).
        "incremental_strategy"
        | "on_schema_change"
        | "merge_update_columns"
        | "merge_exclude_columns"
        | "incremental_predicates"
        | "partition_by"
        | "batch_size"
        | "begin"
        | "lookback" => resource == Resource::Model,
        // A table's clustering and Delta properties, applied after its write (`run::upkeep`).
        "cluster_by" | "zorder" | "tblproperties" => resource == Resource::Model,
        // What a microbatch model filters this node's rows by when it reads them.
        "event_time" => resource != Resource::Test,
        // Applied: a model's contract (`run::contract`), hooks around models, seeds and
        // snapshots, a data test's configs (`run::test_config`).
        "contract" => {
            resource == Resource::Model
                || value
                    .get("enforced")
                    .is_none_or(|e| e == &Json::Bool(false))
        }
        "pre_hook" | "post_hook" => resource != Resource::Test,
        "warn_if" | "error_if" | "limit" | "store_failures" | "store_failures_as" => {
            resource == Resource::Test
        }
        // Applied: the failures are what `fail_calc` computes over the failing rows; a seed's
        // columns are read as `column_types` says.
        "fail_calc" => true,
        "column_types" => resource == Resource::Seed,
        // A snapshot's strategy and columns (see `run::snapshot`).
        "strategy"
        | "updated_at"
        | "check_cols"
        | "hard_deletes"
        | "invalidate_hard_deletes"
        | "dbt_valid_to_current"
        | "snapshot_meta_column_names"
        | "target_schema" => resource == Resource::Snapshot,
        _ => false,
    };
    if default {
        return None;
    }
    Some(
        match resource {
            Resource::Model => "the model is built without it",
            Resource::Seed => "the seed is loaded without it",
            Resource::Test => "the test is run without it",
            Resource::Snapshot => "the snapshot is taken without it",
        }
        .to_string(),
    )
}

/// The dotted key to report for config `key` (`contract.enforced`).
pub(crate) fn config_key(key: &str, value: &Json) -> String {
    match (key, value.get("enforced")) {
        ("contract", Some(_)) => "contract.enforced".to_string(),
        _ => key.to_string(),
    }
}

/// Whether a value sets nothing (null, empty list or mapping, empty text).
fn is_unset(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::Array(items) => items.is_empty(),
        Json::Object(map) => map.is_empty(),
        Json::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_are_not_reported() {
        let model = Resource::Model;
        assert!(config_effect(model, "incremental_strategy", &json!("merge")).is_none());
        assert!(config_effect(model, "incremental_strategy", &json!("delete+insert")).is_none());
        assert!(config_effect(Resource::Seed, "partition_by", &json!("day")).is_some());
        assert!(config_effect(model, "contract", &json!({"enforced": true})).is_none());
        assert!(config_effect(Resource::Seed, "contract", &json!({"enforced": true})).is_some());
        assert!(config_effect(model, "grants", &json!({})).is_none());
        assert!(config_effect(model, "grants", &json!({"select": ["bi"]})).is_some());
        assert!(config_effect(model, "pre_hook", &json!(["select 1"])).is_none());
        assert!(config_effect(model, "docs", &json!({"show": false})).is_none());
        assert!(config_effect(Resource::Test, "warn_if", &json!(">10")).is_none());
        assert!(config_effect(Resource::Test, "store_failures", &json!(true)).is_none());
        assert!(config_effect(model, "store_failures", &json!(true)).is_some());
        assert_eq!(
            config_key("contract", &json!({"enforced": true})),
            "contract.enforced"
        );
    }
}
