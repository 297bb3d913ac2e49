//! Properties files (`schema.yml` and any `*.yml` in the resource paths): models, seeds and
//! sources with their descriptions, columns, configs and data tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map as JsonMap, Value as Json};

use super::ProjectError;
use super::files::{SourceFile, parse_yaml};
use super::unsupported::{Unsupported, patch_keys, properties_keys, unknown_keys};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PropertiesFile {
    pub version: Option<Json>,
    pub models: Option<Vec<ResourcePatch>>,
    pub seeds: Option<Vec<ResourcePatch>>,
    pub snapshots: Option<Vec<ResourcePatch>>,
    pub sources: Option<Vec<SourceDef>>,
    pub unit_tests: Option<Vec<UnitTestDef>>,
    /// Every other key (reported as not supported unless it only documents).
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

/// A `unit_tests:` entry (dbt ≥ 1.8).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UnitTestDef {
    pub name: String,
    pub model: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub given: Vec<FixtureDef>,
    pub expect: FixtureDef,
    #[serde(default)]
    pub overrides: Option<OverridesDef>,
    #[serde(default)]
    pub config: Option<JsonMap<String, Json>>,
    /// Every other key (`versions`, ...: reported as not supported).
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

/// A unit test's `given:` input or its `expect:`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FixtureDef {
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub rows: Option<Json>,
    #[serde(default)]
    pub fixture: Option<String>,
}

/// A unit test's `overrides:`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct OverridesDef {
    #[serde(default)]
    pub vars: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub macros: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub env_vars: Option<JsonMap<String, Json>>,
}

/// The properties of a model, seed or snapshot.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResourcePatch {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub columns: Option<Vec<ColumnDef>>,
    #[serde(default)]
    pub tests: Option<Vec<Json>>,
    #[serde(default)]
    pub data_tests: Option<Vec<Json>>,
    #[serde(default)]
    pub meta: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub versions: Option<Json>,
    /// A snapshot's input in dbt's YAML form (`ref('x')` or `source('a', 'b')`).
    #[serde(default)]
    pub relation: Option<String>,
    /// Model-level `constraints:` (applied with an enforced contract).
    #[serde(default)]
    pub constraints: Option<Vec<Json>>,
    /// Every other key (reported as not supported unless it only documents).
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ColumnDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub data_type: Option<String>,
    #[serde(default)]
    pub quote: Option<bool>,
    #[serde(default)]
    pub meta: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub tests: Option<Vec<Json>>,
    #[serde(default)]
    pub data_tests: Option<Vec<Json>>,
    #[serde(default)]
    pub config: Option<JsonMap<String, Json>>,
    /// Column `constraints:` (applied with an enforced contract).
    #[serde(default)]
    pub constraints: Option<Vec<Json>>,
    /// Every other key (reported as not supported unless it only documents).
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SourceDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub loader: Option<String>,
    #[serde(default)]
    pub meta: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub config: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub tables: Option<Vec<SourceTableDef>>,
    /// The column (a SQL expression) `strata source freshness` takes the latest load time of.
    #[serde(default)]
    pub loaded_at_field: Option<String>,
    /// `freshness:` as written; `Some(null)` when set to null (which disables it).
    #[serde(default, deserialize_with = "present")]
    pub freshness: Option<Json>,
    /// Every other key (reported as not supported unless it only documents).
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SourceTableDef {
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub meta: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub config: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub columns: Option<Vec<ColumnDef>>,
    #[serde(default)]
    pub tests: Option<Vec<Json>>,
    #[serde(default)]
    pub data_tests: Option<Vec<Json>>,
    #[serde(default)]
    pub external: Option<Json>,
    #[serde(default)]
    pub loaded_at_field: Option<String>,
    /// `freshness:` as written; `Some(null)` when set to null (which disables the source's).
    #[serde(default, deserialize_with = "present")]
    pub freshness: Option<Json>,
    /// Every other key (reported as not supported unless it only documents).
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

/// A key that is present, even when null (absent keys take the field's default, `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// A properties entry with the file it came from.
#[derive(Debug, Clone)]
pub(crate) struct Patch<T> {
    pub def: T,
    pub path: PathBuf,
}

/// Everything the properties files declare.
#[derive(Debug, Default)]
pub(crate) struct Properties {
    pub models: BTreeMap<String, Patch<ResourcePatch>>,
    pub seeds: BTreeMap<String, Patch<ResourcePatch>>,
    pub snapshots: BTreeMap<String, Patch<ResourcePatch>>,
    pub sources: Vec<Patch<SourceDef>>,
    pub unit_tests: Vec<Patch<UnitTestDef>>,
    /// Keys the files set that Strata does not apply.
    pub unsupported: Vec<Unsupported>,
}

pub(crate) fn read_properties(files: &[SourceFile]) -> Result<Properties, ProjectError> {
    let mut props = Properties::default();
    for file in files {
        let parsed: PropertiesFile = parse_yaml(&file.rel, &file.text)?;
        let invalid = |message: String| ProjectError::Invalid {
            path: file.rel.clone(),
            message,
        };
        match &parsed.version {
            None => {}
            Some(Json::Number(n)) if n.as_f64() == Some(2.0) => {}
            Some(Json::String(s)) if s.trim() == "2" => {}
            Some(other) => {
                return Err(invalid(format!(
                    "unsupported properties version {other}: only version 2 is supported"
                )));
            }
        }
        let path = &file.rel;
        let found = &mut props.unsupported;
        found.extend(properties_keys(&parsed.other, path));
        for (kind, list, into) in [
            ("model", parsed.models, &mut props.models),
            ("seed", parsed.seeds, &mut props.seeds),
            ("snapshot", parsed.snapshots, &mut props.snapshots),
        ] {
            for def in list.unwrap_or_default() {
                let what = format!("{kind} '{}'", def.name);
                found.extend(patch_keys(&def.other, path, &what));
                found.extend(column_keys(def.columns.as_ref(), path, &what));
                if def.versions.is_some() {
                    return Err(invalid(format!(
                        "{kind} '{}': model versions are not supported by Strata",
                        def.name
                    )));
                }
                if let Some(previous) = into.get(&def.name) {
                    return Err(invalid(format!(
                        "{kind} '{}' already has properties in {}",
                        def.name,
                        previous.path.display()
                    )));
                }
                into.insert(
                    def.name.clone(),
                    Patch {
                        def,
                        path: file.rel.clone(),
                    },
                );
            }
        }
        for def in parsed.unit_tests.unwrap_or_default() {
            props.unit_tests.push(Patch {
                def,
                path: file.rel.clone(),
            });
        }
        for def in parsed.sources.unwrap_or_default() {
            let what = format!("source '{}'", def.name);
            let effect = "the source is read without it";
            found.extend(unknown_keys(&def.other, &[], path, &what, effect));
            for table in def.tables.iter().flatten() {
                let what = format!("source '{}', table '{}'", def.name, table.name);
                found.extend(unknown_keys(&table.other, &[], path, &what, effect));
                found.extend(column_keys(table.columns.as_ref(), path, &what));
            }
            if let Some(previous) = props.sources.iter().find(|p| p.def.name == def.name) {
                return Err(invalid(format!(
                    "source '{}' is also defined in {}",
                    def.name,
                    previous.path.display()
                )));
            }
            props.sources.push(Patch {
                def,
                path: file.rel.clone(),
            });
        }
    }
    Ok(props)
}

/// Column properties Strata does not apply (`constraints`, ...).
fn column_keys(
    columns: Option<&Vec<ColumnDef>>,
    path: &std::path::Path,
    what: &str,
) -> Vec<Unsupported> {
    columns
        .into_iter()
        .flatten()
        .flat_map(|c| {
            let what = format!("{what}, column '{}'", c.name);
            unknown_keys(&c.other, &[], path, &what, "the column is built without it")
        })
        .collect()
}

/// `tests:` and `data_tests:` of one resource or column (both at once is an error in dbt).
pub(crate) fn test_entries<'a>(
    tests: &'a Option<Vec<Json>>,
    data_tests: &'a Option<Vec<Json>>,
    what: &str,
) -> Result<&'a [Json], String> {
    match (tests, data_tests) {
        (Some(_), Some(_)) => Err(format!(
            "{what} has both 'tests' and 'data_tests'; use only 'data_tests'"
        )),
        (Some(list), None) | (None, Some(list)) => Ok(list),
        (None, None) => Ok(&[]),
    }
}

/// Keys of a test entry that configure the test rather than being its arguments.
const TEST_CONFIG_KEYS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

/// One entry of a `data_tests:` list, taken apart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestSpec {
    /// The generic test's name (`not_null`, `accepted_values`, a custom test).
    pub test_name: String,
    /// `dbt_utils` in `dbt_utils.expression_is_true`.
    pub namespace: Option<String>,
    /// An explicit `name:`.
    pub name: Option<String>,
    pub description: Option<String>,
    /// The test's arguments, without `model` and `column_name`.
    pub args: BTreeMap<String, Json>,
    /// `column_name:` given explicitly (model-level tests on an expression).
    pub column_name: Option<String>,
    pub config: JsonMap<String, Json>,
}

/// Parses `unique`, `{not_null: {config: ...}}`, `{accepted_values: {values: [...]}}` or
/// `{accepted_values: {arguments: {values: [...]}}}`.
pub(crate) fn parse_test(entry: &Json) -> Result<TestSpec, String> {
    let (full_name, body) = match entry {
        Json::String(name) => (name.clone(), None),
        Json::Object(map) if map.len() == 1 => {
            let (name, body) = map.iter().next().expect("one entry");
            (name.clone(), Some(body))
        }
        other => {
            return Err(format!(
                "a test must be a name or a mapping of one test name to its arguments, got {other}"
            ));
        }
    };
    let (namespace, test_name) = match full_name.rsplit_once('.') {
        Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
        None => (None, full_name.clone()),
    };
    let mut spec = TestSpec {
        test_name,
        namespace,
        name: None,
        description: None,
        args: BTreeMap::new(),
        column_name: None,
        config: JsonMap::new(),
    };
    let body = match body {
        None | Some(Json::Null) => return Ok(spec),
        Some(Json::Object(body)) => body,
        Some(other) => {
            return Err(format!(
                "test '{full_name}' must map to its arguments, got {other}"
            ));
        }
    };
    let string = |key: &str, value: &Json| match value {
        Json::String(s) => Ok(s.clone()),
        other => Err(format!(
            "test '{full_name}': '{key}' must be a string, got {other}"
        )),
    };
    for (key, value) in body {
        match key.as_str() {
            "config" => match value {
                Json::Object(config) => spec.config.extend(config.clone()),
                Json::Null => {}
                other => {
                    return Err(format!(
                        "test '{full_name}': 'config' must be a mapping, got {other}"
                    ));
                }
            },
            "arguments" => match value {
                Json::Object(args) => spec
                    .args
                    .extend(args.iter().map(|(k, v)| (k.clone(), v.clone()))),
                Json::Null => {}
                other => {
                    return Err(format!(
                        "test '{full_name}': 'arguments' must be a mapping, got {other}"
                    ));
                }
            },
            "name" => spec.name = Some(string(key, value)?),
            "description" => spec.description = Some(string(key, value)?),
            "column_name" => spec.column_name = Some(string(key, value)?),
            k if TEST_CONFIG_KEYS.contains(&k) => {
                spec.config.insert(key.clone(), value.clone());
            }
            _ => {
                spec.args.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(Json::String(column)) = spec.args.remove("column_name") {
        spec.column_name = Some(column);
    }
    Ok(spec)
}

/// Python's `str()` of a YAML value, as dbt's test names use it.
fn py_str(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn py_repr(value: &Json) -> String {
    match value {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) if s.contains('\'') && !s.contains('"') => format!("\"{s}\""),
        Json::String(s) => format!("'{}'", s.replace('\'', "\\'")),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Longest generic test name kept as is (PostgreSQL's identifier limit).
const MAX_TEST_NAME: usize = 63;

/// dbt's synthesized name of a generic test: `<test>_<target>_<args flattened>`, e.g.
/// `not_null_orders_id`, `accepted_values_orders_status__placed__shipped`; tests on sources
/// are `source_<test>_<source>_<table>_...`. Names longer than 63 characters keep their
/// first 52 characters and get a hash of the full name.
pub(crate) fn test_name(
    test_type: &str,
    target: &str,
    args: &BTreeMap<String, Json>,
    on_source: bool,
) -> String {
    let mut flat = Vec::new();
    for (key, value) in args {
        if key == "model" {
            continue;
        }
        match value {
            Json::Object(map) => flat.extend(map.values().map(py_str)),
            Json::Array(items) => flat.extend(items.iter().map(py_str)),
            other => flat.push(py_str(other)),
        }
    }
    let clean: Vec<String> = flat.iter().map(|s| clean_identifier(s)).collect();
    let prefix = if on_source { "source_" } else { "" };
    let full = format!("{prefix}{test_type}_{target}_{}", clean.join("__"));
    shorten(&full)
}

/// Replaces each run of characters other than `[0-9a-zA-Z_]` by one `_`.
fn clean_identifier(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

fn shorten(full: &str) -> String {
    if full.len() <= MAX_TEST_NAME {
        return full.to_string();
    }
    let mut cut = 52;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    // FNV-1a: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in full.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}_{:010x}", &full[..cut], hash & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Json) -> BTreeMap<String, Json> {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn dbt_test_names() {
        assert_eq!(
            test_name(
                "not_null",
                "orders",
                &args(json!({"column_name": "id"})),
                false
            ),
            "not_null_orders_id"
        );
        assert_eq!(
            test_name(
                "relationships",
                "orders",
                &args(
                    json!({"column_name": "customer_id", "to": "ref('customers')", "field": "id"})
                ),
                false
            ),
            "relationships_orders_customer_id__id__ref_customers_"
        );
        assert_eq!(
            test_name(
                "accepted_values",
                "orders",
                &args(
                    json!({"column_name": "status", "values": ["placed", "shipped"], "quote": false})
                ),
                false
            ),
            "accepted_values_orders_status__False__placed__shipped"
        );
        assert_eq!(
            test_name(
                "unique",
                "shop_orders",
                &args(json!({"column_name": "id"})),
                true
            ),
            "source_unique_shop_orders_id"
        );
        assert_eq!(
            test_name("has_rows", "orders", &BTreeMap::new(), false),
            "has_rows_orders_"
        );
        let long = test_name(
            "accepted_values",
            "orders",
            &args(
                json!({"column_name": "status", "values": ["placed", "shipped", "completed", "return_pending", "returned"]}),
            ),
            false,
        );
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("accepted_values_orders_status__placed__shipped__comp_"));
    }

    #[test]
    fn test_entries_in_every_form() {
        let spec = parse_test(&json!("unique")).unwrap();
        assert_eq!(spec.test_name, "unique");
        assert!(spec.args.is_empty());

        let spec = parse_test(&json!({"not_null": {"config": {"severity": "warn"}}})).unwrap();
        assert_eq!(spec.config["severity"], json!("warn"));

        let old =
            parse_test(&json!({"accepted_values": {"values": ["a"], "severity": "warn"}})).unwrap();
        let new = parse_test(&json!({"accepted_values": {"arguments": {"values": ["a"]}, "config": {"severity": "warn"}}})).unwrap();
        assert_eq!(old, new);

        let spec = parse_test(
            &json!({"dbt_utils.expression_is_true": {"name": "positive", "expression": "x > 0"}}),
        )
        .unwrap();
        assert_eq!(spec.namespace.as_deref(), Some("dbt_utils"));
        assert_eq!(spec.test_name, "expression_is_true");
        assert_eq!(spec.name.as_deref(), Some("positive"));
        assert_eq!(spec.args["expression"], json!("x > 0"));

        assert!(parse_test(&json!(["unique"])).is_err());
    }
}
