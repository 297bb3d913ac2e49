//! `manifest.json` (dbt's manifest schema v12): every node, unit test, source and project macro
//! with its config, checksum, dependencies and relation, written whenever a command loads the
//! project (dbt writes it at parse) and again once nodes are compiled, with their SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map as JsonMap, Value as Json, json};
use sha2::{Digest, Sha256};

use super::{ArtifactError, metadata, write};
use crate::compile::output::compiled_path;
use crate::project::files::template_name;
use crate::project::{
    ColumnDoc, Fixture, Node, Project, Resource, SourceTable, TestKind, UnitGiven, UnitTest,
};
use crate::run::nodes::{relation_of, relation_sql, source_sql};
use crate::session::CATALOG;

pub const FILE: &str = "manifest.json";

/// Writes `project`'s manifest; compiled SQL is included for the nodes compiled by this
/// invocation (their file under `target/compiled/` is newer than its start).
pub fn write_manifest(project: &Project) -> Result<PathBuf, ArtifactError> {
    write(project, FILE, &manifest(project))
}

/// The manifest of `project`.
pub fn manifest(project: &Project) -> Json {
    let invocation = &project.target.invocation;
    let mut meta = metadata("manifest/v12", invocation);
    if let Json::Object(map) = &mut meta {
        map.insert("project_name".into(), json!(project.name));
        map.insert("project_id".into(), Json::Null);
        map.insert("user_id".into(), Json::Null);
        map.insert("send_anonymous_usage_stats".into(), json!(false));
        map.insert("adapter_type".into(), json!("strata"));
        map.insert(
            "quoting".into(),
            json!({"database": true, "schema": true, "identifier": true, "column": null}),
        );
        map.insert(
            "run_started_at".into(),
            json!(super::timestamp(invocation.started_at)),
        );
    }
    let mut nodes = JsonMap::new();
    let mut unit_tests = JsonMap::new();
    for node in project.nodes.values() {
        match node.unit_test() {
            Some(unit) => unit_tests.insert(node.unique_id.clone(), unit_test(project, node, unit)),
            None => nodes.insert(node.unique_id.clone(), node_entry(project, node)),
        };
    }
    let sources: JsonMap<String, Json> = project
        .sources
        .values()
        .map(|s| (s.unique_id.clone(), source(project, s)))
        .collect();
    let (parent_map, child_map) = maps(project);
    json!({
        "metadata": meta,
        "nodes": nodes,
        "sources": sources,
        "macros": macros(project),
        "docs": docs(project),
        "exposures": {},
        "metrics": {},
        "groups": {},
        "selectors": {},
        "disabled": {},
        "parent_map": parent_map,
        "child_map": child_map,
        "group_map": {},
        "saved_queries": {},
        "semantic_models": {},
        "unit_tests": unit_tests,
        "functions": {},
    })
}

/// dbt's checksum of a file: sha256 of its text without leading and trailing whitespace.
pub fn checksum(text: &str) -> String {
    hex::encode(Sha256::digest(text.trim().as_bytes()))
}

/// A node's file relative to its package's root (dbt's `original_file_path`).
fn original_file_path(project: &Project, package: &str, path: &Path) -> String {
    let within = project
        .packages
        .get(package)
        .and_then(|folder| path.strip_prefix(folder).ok())
        .unwrap_or(path);
    template_name(within)
}

/// dbt's `path`: the file under its resource folder (a generic test: `<name>.sql`).
fn resource_path(node: &Node, original: &str) -> String {
    if node
        .path
        .extension()
        .is_some_and(|e| e == "sql" || e == "csv")
    {
        original
            .split_once('/')
            .map_or(original, |(_, rest)| rest)
            .to_string()
    } else {
        format!("{}.sql", node.name)
    }
}

fn columns(docs: &[ColumnDoc]) -> JsonMap<String, Json> {
    docs.iter()
        .map(|c| {
            (
                c.name.clone(),
                json!({
                    "name": c.name,
                    "description": c.description,
                    "meta": c.meta,
                    "data_type": c.data_type,
                    "constraints": c.constraints,
                    "quote": null,
                    "config": {"meta": c.meta, "tags": c.tags},
                    "tags": c.tags,
                    "granularity": null,
                    "doc_blocks": [],
                }),
            )
        })
        .collect()
}

/// The node's config as dbt spells it: hooks under `pre-hook`/`post-hook` as
/// `{sql, transaction, index}`, a test's severity in capitals.
fn config(node: &Node) -> JsonMap<String, Json> {
    let mut map = node.config.to_json();
    for (key, dbt_key) in [("pre_hook", "pre-hook"), ("post_hook", "post-hook")] {
        map.remove(key);
        let hooks: Vec<Json> = node
            .config
            .hooks(key)
            .iter()
            .enumerate()
            .map(|(i, sql)| json!({"sql": sql, "transaction": true, "index": i}))
            .collect();
        if node.resource != Resource::Test {
            map.insert(dbt_key.into(), Json::from(hooks));
        }
    }
    if node.resource == Resource::Test {
        map.insert(
            "severity".into(),
            json!(node.config.severity.as_str().to_uppercase()),
        );
        // Model configs dbt's tests do not have.
        for key in ["unique_key", "full_refresh"] {
            if map.get(key).is_some_and(Json::is_null) {
                map.remove(key);
            }
        }
    } else {
        map.remove("severity");
    }
    map
}

/// The SQL this invocation compiled for `node`, if it did.
pub(super) fn compiled_code(project: &Project, node: &Node) -> Option<(String, String)> {
    let rel = compiled_path(project, node);
    let path = project.root.join(&rel);
    let modified: chrono::DateTime<chrono::Utc> =
        std::fs::metadata(&path).ok()?.modified().ok()?.into();
    if modified < project.target.invocation.started_at {
        return None;
    }
    let sql = std::fs::read_to_string(&path).ok()?;
    Some((template_name(&rel), sql))
}

/// The models, seeds and snapshots a node refs, as dbt's `refs`.
fn refs(project: &Project, node: &Node) -> Vec<Json> {
    node.depends_on
        .iter()
        .filter_map(|id| project.nodes.get(id))
        .filter(|n| n.resource != Resource::Test)
        .map(|n| {
            let package = (n.package != node.package).then(|| n.package.clone());
            json!({"name": n.name, "package": package, "version": null})
        })
        .collect()
}

/// The unique ids a node depends on: refs, then sources.
fn parents(project: &Project, node: &Node) -> Vec<String> {
    let mut ids: Vec<String> = node.depends_on.clone();
    ids.extend(
        node.sources
            .iter()
            .filter_map(|key| project.sources.get(key))
            .map(|s| s.unique_id.clone()),
    );
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

fn node_entry(project: &Project, node: &Node) -> Json {
    let original = original_file_path(project, &node.package, &node.path);
    let file_text = std::fs::read_to_string(project.root.join(&node.path)).unwrap_or_default();
    let generic = matches!(
        node.test.as_ref().map(|t| &t.kind),
        Some(TestKind::Generic { .. })
    );
    let checksum = match generic {
        true => json!({"name": "none", "checksum": ""}),
        false => json!({"name": "sha256", "checksum": checksum(&file_text)}),
    };
    let relation = relation_of(node);
    let relation_name = match node.resource {
        Resource::Test => Json::Null,
        _ => json!(relation_sql(&relation)),
    };
    let mut entry = json!({
        "database": CATALOG,
        "schema": relation.schema,
        "name": node.name,
        "resource_type": node.resource.as_str(),
        "package_name": node.package,
        "path": resource_path(node, &original),
        "original_file_path": original,
        "unique_id": node.unique_id,
        "fqn": node.fqn,
        "alias": relation.name,
        "checksum": checksum,
        "config": config(node),
        "tags": node.config.tags,
        "description": node.description,
        "columns": columns(&node.columns),
        "meta": node.config.meta,
        "group": null,
        "docs": {"show": true, "node_color": null},
        "patch_path": node.patch_path.as_ref().map(|p| format!("{}://{}", node.package, template_name(p))),
        "build_path": null,
        "unrendered_config": {},
        "created_at": project.target.invocation.started_at.timestamp_millis() as f64 / 1000.0,
        "relation_name": relation_name,
        "raw_code": node.raw_code,
        "doc_blocks": [],
    });
    let Json::Object(map) = &mut entry else {
        return entry;
    };
    if node.resource == Resource::Seed {
        map.insert(
            "root_path".into(),
            json!(project.root.display().to_string()),
        );
        map.insert("depends_on".into(), json!({"macros": []}));
        return entry;
    }
    let compiled = compiled_code(project, node);
    let sources: Vec<Json> = node
        .sources
        .iter()
        .map(|(_, source, table)| json!([source, table]))
        .collect();
    map.extend([
        ("language".into(), json!("sql")),
        ("refs".into(), Json::from(refs(project, node))),
        ("sources".into(), Json::from(sources)),
        ("metrics".into(), json!([])),
        ("functions".into(), json!([])),
        (
            "depends_on".into(),
            json!({"macros": [], "nodes": parents(project, node)}),
        ),
        (
            "compiled_path".into(),
            json!(compiled.as_ref().map(|(path, _)| path)),
        ),
        ("compiled".into(), json!(compiled.is_some())),
        (
            "compiled_code".into(),
            json!(compiled.as_ref().map(|(_, sql)| sql)),
        ),
        ("extra_ctes_injected".into(), json!(compiled.is_some())),
        ("extra_ctes".into(), json!([])),
        (
            "contract".into(),
            json!({"enforced": node.contract_enforced(), "alias_types": true, "checksum": null}),
        ),
    ]);
    match node.resource {
        Resource::Model => {
            map.extend([
                ("access".into(), json!("protected")),
                ("constraints".into(), json!(node.constraints)),
                ("version".into(), Json::Null),
                ("latest_version".into(), Json::Null),
                ("deprecation_date".into(), Json::Null),
                ("primary_key".into(), json!([])),
                ("time_spine".into(), Json::Null),
            ]);
        }
        Resource::Test => {
            if let Some(TestKind::Generic {
                name,
                package,
                column,
                args,
            }) = node.test.as_ref().map(|t| &t.kind)
            {
                let mut kwargs: JsonMap<String, Json> = args.clone().into_iter().collect();
                if let Some(column) = column {
                    kwargs.insert("column_name".into(), json!(column));
                }
                let attached = node.test.as_ref().and_then(|t| t.attached_node.clone());
                let tested = attached.as_deref().and_then(|id| tested(project, id));
                if let Some((call, _)) = &tested {
                    kwargs.insert(
                        "model".into(),
                        json!(format!("{{{{ get_where_subquery({call}) }}}}")),
                    );
                }
                let namespace = (package != "dbt" && *package != project.name).then_some(package);
                map.extend([
                    ("column_name".into(), json!(column)),
                    ("file_key_name".into(), json!(tested.map(|(_, key)| key))),
                    ("attached_node".into(), json!(attached)),
                    (
                        "test_metadata".into(),
                        json!({"name": name, "kwargs": kwargs, "namespace": namespace}),
                    ),
                ]);
            }
        }
        Resource::Seed | Resource::Snapshot => {}
    }
    entry
}

/// How a generic test's kwargs name what it tests (`ref('x')`, `source('a', 'b')`), and dbt's
/// `file_key_name` for it (`models.x`, `sources.a`).
fn tested(project: &Project, unique_id: &str) -> Option<(String, String)> {
    if let Some(node) = project.nodes.get(unique_id) {
        return Some((
            format!("ref('{}')", node.name),
            format!("{}s.{}", node.resource.as_str(), node.name),
        ));
    }
    let source = project.source_by_id(unique_id)?;
    Some((
        format!("source('{}', '{}')", source.source_name, source.name),
        format!("sources.{}", source.source_name),
    ))
}

fn fixture(rows: &Fixture) -> Json {
    match rows {
        Fixture::Rows(rows) => json!({"rows": rows, "format": "dict", "fixture": null}),
        Fixture::Csv(text) => json!({"rows": text, "format": "csv", "fixture": null}),
        Fixture::Sql(text) => json!({"rows": text, "format": "sql", "fixture": null}),
    }
}

fn unit_test(project: &Project, node: &Node, unit: &UnitTest) -> Json {
    let original = original_file_path(project, &node.package, &node.path);
    let model = project
        .nodes
        .get(&unit.model)
        .map_or(unit.model.as_str(), |m| m.name.as_str());
    let given: Vec<Json> = unit
        .given
        .iter()
        .map(|UnitGiven { input, rows }| {
            let mut entry = fixture(rows);
            entry["input"] = json!(input.to_string());
            entry
        })
        .collect();
    let expect = fixture(&unit.expect);
    let overrides = match (unit.vars.is_empty(), unit.is_incremental) {
        (true, false) => Json::Null,
        _ => json!({
            "vars": unit.vars,
            "macros": {"is_incremental": unit.is_incremental},
            "env_vars": {},
        }),
    };
    // dbt's fqn: the package, the properties file's folders, the model and the test.
    let mut fqn = vec![node.package.clone()];
    let folders: Vec<&str> = original.split('/').collect();
    let within = folders.get(1..folders.len().saturating_sub(1));
    fqn.extend(within.unwrap_or_default().iter().map(|f| f.to_string()));
    fqn.extend([model.to_string(), node.name.clone()]);
    // dbt hashes the test's definition; Strata the same parts, as JSON.
    let definition =
        json!({"model": model, "given": given, "expect": expect, "overrides": overrides});
    json!({
        "model": model,
        "given": given,
        "expect": expect,
        "name": node.name,
        "resource_type": "unit_test",
        "package_name": node.package,
        "path": original.split_once('/').map_or(original.as_str(), |(_, rest)| rest),
        "original_file_path": original,
        "unique_id": node.unique_id,
        "fqn": fqn,
        "description": node.description,
        "overrides": overrides,
        "depends_on": {"macros": [], "nodes": [unit.model]},
        "config": {"tags": node.config.tags, "meta": node.config.meta, "enabled": true},
        "checksum": checksum(&definition.to_string()),
        "schema": relation_of(node).schema,
        "created_at": project.target.invocation.started_at.timestamp_millis() as f64 / 1000.0,
        "versions": null,
        "version": null,
    })
}

fn source(project: &Project, s: &SourceTable) -> Json {
    let original = original_file_path(project, &s.package, &s.path);
    let freshness = json!({
        "warn_after": {"count": null, "period": null},
        "error_after": {"count": null, "period": null},
        "filter": null,
    });
    json!({
        "database": s.database,
        "schema": s.schema,
        "name": s.name,
        "resource_type": "source",
        "package_name": s.package,
        "path": original,
        "original_file_path": original,
        "unique_id": s.unique_id,
        "fqn": [s.package, s.source_name, s.name],
        "source_name": s.source_name,
        "source_description": s.source_description,
        "loader": s.loader.clone().unwrap_or_default(),
        "identifier": s.identifier,
        "quoting": {"database": null, "schema": null, "identifier": null, "column": null},
        "loaded_at_field": null,
        "loaded_at_query": null,
        "freshness": freshness,
        "external": s.external_location.as_ref().map(|l| json!({"location": l})),
        "description": s.description,
        "columns": columns(&s.columns),
        "meta": s.meta,
        "source_meta": {},
        "tags": s.tags,
        "config": {"enabled": true, "event_time": null, "freshness": freshness, "loaded_at_field": null, "loaded_at_query": null, "meta": s.meta, "tags": s.tags},
        "patch_path": null,
        "unrendered_config": {},
        "relation_name": source_sql(s),
        "created_at": project.target.invocation.started_at.timestamp_millis() as f64 / 1000.0,
        "unrendered_database": null,
        "unrendered_schema": s.schema,
        "doc_blocks": [],
    })
}

/// The `{% macro name(...) %} ... {% endmacro %}` block of `name` in `text`.
fn macro_block<'a>(text: &'a str, name: &str) -> &'a str {
    let Some(at) = text
        .match_indices("macro")
        .map(|(i, _)| i)
        .find(|&i| text[i + 5..].trim_start().starts_with(name))
    else {
        return text;
    };
    let start = text[..at].rfind("{%").unwrap_or(0);
    let end = text[at..]
        .find("endmacro")
        .and_then(|e| text[at + e..].find("%}").map(|c| at + e + c + 2))
        .unwrap_or(text.len());
    &text[start..end]
}

fn macros(project: &Project) -> JsonMap<String, Json> {
    project
        .macros
        .iter()
        .map(|(name, path)| {
            let text = std::fs::read_to_string(project.root.join(path)).unwrap_or_default();
            let original = template_name(path);
            let id = format!("macro.{}.{name}", project.name);
            let entry = json!({
                "name": name,
                "resource_type": "macro",
                "package_name": project.name,
                "path": original,
                "original_file_path": original,
                "unique_id": id,
                "macro_sql": macro_block(&text, name),
                "depends_on": {"macros": []},
                "description": "",
                "meta": {},
                "docs": {"show": true, "node_color": null},
                "config": {"meta": {}, "docs": {"show": true, "node_color": null}},
                "patch_path": null,
                "arguments": [],
                "created_at": project.target.invocation.started_at.timestamp_millis() as f64 / 1000.0,
                "supported_languages": null,
            });
            (id, entry)
        })
        .collect()
}

fn docs(project: &Project) -> JsonMap<String, Json> {
    project
        .docs
        .iter()
        .map(|(name, text)| {
            let id = format!("doc.{}.{name}", project.name);
            let entry = json!({
                "name": name,
                "resource_type": "doc",
                "package_name": project.name,
                "path": "",
                "original_file_path": "",
                "unique_id": id,
                "block_contents": text,
            });
            (id, entry)
        })
        .collect()
}

/// dbt's `parent_map` and `child_map` over nodes, unit tests and sources.
fn maps(project: &Project) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
    let mut parent_map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut child_map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in project.sources.values() {
        parent_map.insert(s.unique_id.clone(), Vec::new());
        child_map.insert(s.unique_id.clone(), Vec::new());
    }
    for node in project.nodes.values() {
        child_map.entry(node.unique_id.clone()).or_default();
        let parents = parents(project, node);
        for parent in &parents {
            child_map
                .entry(parent.clone())
                .or_default()
                .push(node.unique_id.clone());
        }
        parent_map.insert(node.unique_id.clone(), parents);
    }
    for children in child_map.values_mut() {
        children.sort();
    }
    (parent_map, child_map)
}
