//! The load pipeline: `dbt_project.yml` → files → docs and macros → one Jinja environment →
//! properties files → models, seeds, singular tests (each rendered once in parse mode),
//! sources, generic tests → `ref`/`source` resolution. One file per step, as dbt's parsers:
//! [`project_file`], [`macros`], [`models`], [`seeds`], [`singular_tests`], [`sources`],
//! [`generic_tests`], [`resolve`]; [`node`] builds a node from its config layers and
//! [`render`] renders in parse mode.

mod generic_tests;
mod macros;
mod models;
mod node;
mod project_file;
mod render;
mod resolve;
mod seeds;
mod singular_tests;
mod snapshots;
mod sources;
mod unit_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::Environment;
use serde_json::{Map as JsonMap, Value as Json};

use crate::jinja::config_call::merge_config;
use crate::jinja::{GLOBAL_PROJECT, MacroTable, Shared, Target};
use crate::project::files::{
    Ignore, PROJECT_FILE, ProjectFile, SourceFile, collect, parse_yaml, read_text, template_name,
};
use crate::project::node_config::{folder_config, hook_list, is_enabled};
use crate::project::packages;
use crate::project::schema::read_properties;
use crate::project::unsupported::{Unsupported, project_keys};
use crate::project::{Node, Project, ProjectError, SourceKey, SourceTable};
use macros::{build_env, builtin_macros, read_docs, read_macros};
use project_file::{merge_vars, parse_cli_vars, render_project_configs};
use resolve::Pending;

pub(super) fn target_path(dir: &Path) -> Result<PathBuf, ProjectError> {
    let rel = Path::new(PROJECT_FILE);
    let file: ProjectFile = parse_yaml(rel, &read_text(dir, rel)?)?;
    Ok(file.target_path())
}

pub(super) fn load(
    dir: &Path,
    cli_vars: Option<&str>,
    target: &Target,
) -> Result<Project, ProjectError> {
    let root = dir.to_path_buf();
    let cli = parse_cli_vars(cli_vars)?;
    let project_rel = Path::new(PROJECT_FILE);
    let text = read_text(&root, project_rel)?;
    let mut file: ProjectFile = parse_yaml(project_rel, &text)?;
    if file.name.trim().is_empty() {
        return Err(ProjectError::Invalid {
            path: project_rel.to_path_buf(),
            message: "'name' is required".into(),
        });
    }
    let mut warnings = file.missing_folders(&root, project_rel);
    let name = file.name.clone();
    let target_path = file.target_path();
    let on_run_start = hook_list(file.on_run_start.as_ref());
    let on_run_end = hook_list(file.on_run_end.as_ref());
    render_project_configs(&mut file, &cli, target)?;
    let vars = merge_vars(&name, file.vars.as_ref(), &cli);

    // The root project first, then each installed package (dbt reads them alike).
    let installed = packages::installed(&root, &file)?;
    let (declared, declared_in) = packages::declared(&root)?;
    if declared.len() > installed.len() {
        return Err(ProjectError::NotInstalled {
            path: declared_in.unwrap_or_default(),
            declared: declared.len(),
            installed: installed.len(),
            install_path: file.packages_install_path(),
        });
    }
    let mut unsupported = project_keys(&file.other, project_rel);
    let mut package_vars = BTreeMap::new();
    let mut units = vec![Unit::read(&root, Path::new(""), &file, true)?];
    for package in &installed {
        let mut scoped = merge_vars(&package.name, package.file.vars.as_ref(), &JsonMap::new());
        scoped.extend(merge_vars(&package.name, file.vars.as_ref(), &cli));
        package_vars.insert(package.name.clone(), scoped);
        unsupported.extend(project_keys(
            &package.file.other,
            &package.dir.join(PROJECT_FILE),
        ));
        warnings.extend(
            package
                .file
                .missing_folders(&root.join(&package.dir), &package.dir.join(PROJECT_FILE)),
        );
        units.push(Unit::read(&root, &package.dir, &package.file, false)?);
    }

    let mut docs = BTreeMap::new();
    let mut table = MacroTable {
        root: name.clone(),
        packages: BTreeMap::new(),
    };
    let mut macro_sources = Vec::new();
    let mut macro_origin = BTreeMap::new();
    for unit in &units {
        docs.extend(read_docs(&unit.doc_files)?);
        let macros = read_macros(&unit.file.name, &unit.macro_files)?;
        table
            .packages
            .insert(unit.file.name.clone(), macros.callable);
        if unit.is_root {
            macro_origin = macros.origin;
        }
        macro_sources.extend(macros.sources);
    }
    let (builtins, builtin_sources) = builtin_macros();
    table.packages.insert(GLOBAL_PROJECT.to_string(), builtins);
    let dispatch = file
        .dispatch
        .iter()
        .flatten()
        .map(|d| (d.macro_namespace.clone(), d.search_order.clone()))
        .collect();
    let shared = Arc::new(Shared {
        project_name: name.clone(),
        vars: vars.clone(),
        package_vars,
        docs: docs.clone(),
        macros: table,
        dispatch,
        graph: Default::default(),
    });
    let env = build_env(
        shared.clone(),
        builtin_sources,
        macro_sources,
        units
            .iter()
            .flat_map(|u| u.model_files.iter().chain(&u.test_files)),
    )?;

    let mut loader = Loader {
        root_name: name.clone(),
        root_file: file.clone(),
        name: name.clone(),
        target: target.clone(),
        file,
        env: Arc::new(env),
        shared,
        nodes: BTreeMap::new(),
        by_name: BTreeMap::new(),
        disabled: BTreeMap::new(),
        pending: Vec::new(),
        sources: BTreeMap::new(),
        disabled_sources: BTreeSet::new(),
        warnings,
        unsupported,
        property_dirs: BTreeMap::new(),
    };
    let mut properties = Vec::new();
    for unit in &units {
        loader.enter(unit);
        let mut props = read_properties(&unit.property_files)?;
        loader.unsupported.append(&mut props.unsupported);
        loader
            .unsupported
            .extend(unit.python_models.iter().map(|f| Unsupported {
                path: f.rel.clone(),
                node: format!("model.{}.{}", unit.file.name, f.stem()),
                key: "python model".into(),
                effect: "it is not built (Strata runs SQL models)".into(),
            }));
        loader.models(&unit.model_files, &props)?;
        loader.seeds(&unit.seed_files, &props)?;
        loader.snapshots(&unit.snapshot_files, &props)?;
        loader.singular_tests(&unit.test_files)?;
        loader.sources(&props)?;
        properties.push(props);
    }
    for (unit, props) in units.iter().zip(&properties) {
        loader.enter(unit);
        loader.generic_tests(props)?;
    }
    loader.resolve()?;
    for (unit, props) in units.iter().zip(&properties) {
        loader.enter(unit);
        loader.unit_tests(props, &unit.fixture_files)?;
    }
    let graph = graph_json(&loader.nodes, &loader.sources);
    let mut unsupported = std::mem::take(&mut loader.unsupported);
    unsupported.sort();
    unsupported.dedup();
    loader.shared.graph.set(graph).ok();

    Ok(Project {
        root,
        name,
        packages: installed.into_iter().map(|p| (p.name, p.dir)).collect(),
        target_path,
        vars,
        nodes: loader.nodes,
        sources: loader.sources,
        docs,
        macros: macro_origin,
        target: target.clone(),
        warnings: loader.warnings,
        unsupported,
        on_run_start,
        on_run_end,
        env: loader.env,
        shared: loader.shared,
    })
}

/// The files of the root project or of one installed package.
struct Unit {
    file: ProjectFile,
    is_root: bool,
    macro_files: Vec<SourceFile>,
    model_files: Vec<SourceFile>,
    /// dbt's Python models (`models/**.py`), which Strata reports rather than builds.
    python_models: Vec<SourceFile>,
    test_files: Vec<SourceFile>,
    seed_files: Vec<SourceFile>,
    snapshot_files: Vec<SourceFile>,
    property_files: Vec<SourceFile>,
    doc_files: Vec<SourceFile>,
    /// Unit tests' fixture files (`<test path>/fixtures/**.csv|sql`).
    fixture_files: Vec<SourceFile>,
}

impl Unit {
    /// The files of the project in `dir` (relative to `root`; empty for the root project),
    /// each named relative to `root`.
    fn read(
        root: &Path,
        dir: &Path,
        file: &ProjectFile,
        is_root: bool,
    ) -> Result<Unit, ProjectError> {
        let ignore = if is_root {
            Ignore::load(root)?
        } else {
            Ignore::default()
        };
        let at = |dirs: Vec<String>| -> Vec<String> {
            dirs.into_iter()
                .map(|d| template_name(&dir.join(d)))
                .collect()
        };
        let test_paths = at(file.test_paths());
        let generic_dirs: Vec<String> = test_paths.iter().map(|t| format!("{t}/generic")).collect();
        let mut macro_files = collect(root, &at(file.macro_paths()), &["sql"], &ignore, true)?;
        macro_files.extend(collect(root, &generic_dirs, &["sql"], &ignore, true)?);
        let model_files = collect(root, &at(file.model_paths()), &["sql"], &ignore, true)?;
        let python_models = collect(root, &at(file.model_paths()), &["py"], &ignore, false)?;
        let test_files: Vec<SourceFile> = collect(root, &test_paths, &["sql"], &ignore, true)?
            .into_iter()
            .filter(|f| !f.within.starts_with("generic") && !f.within.starts_with("fixtures"))
            .collect();
        let fixture_dirs: Vec<String> =
            test_paths.iter().map(|t| format!("{t}/fixtures")).collect();
        let fixture_files = collect(root, &fixture_dirs, &["csv", "sql"], &ignore, true)?;
        let seed_files = collect(root, &at(file.seed_paths()), &["csv"], &ignore, false)?;
        let snapshot_files = collect(root, &at(file.snapshot_paths()), &["sql"], &ignore, true)?;
        let mut property_dirs = at(file.model_paths());
        for d in at(file.seed_paths())
            .into_iter()
            .chain(at(file.snapshot_paths()))
            .chain(test_paths.clone())
            .chain(at(file.macro_paths()))
        {
            if !property_dirs.contains(&d) {
                property_dirs.push(d);
            }
        }
        let property_files = collect(root, &property_dirs, &["yml", "yaml"], &ignore, true)?;
        let doc_files = collect(root, &at(file.docs_paths()), &["md"], &ignore, true)?;
        Ok(Unit {
            file: file.clone(),
            is_root,
            macro_files,
            model_files,
            python_models,
            test_files,
            seed_files,
            snapshot_files,
            property_files,
            doc_files,
            fixture_files,
        })
    }
}

/// dbt's `graph` as templates see it: nodes and sources by unique id.
fn graph_json(nodes: &BTreeMap<String, Node>, sources: &BTreeMap<SourceKey, SourceTable>) -> Json {
    let nodes: JsonMap<String, Json> = nodes
        .values()
        .map(|n| {
            let value = serde_json::to_value(n.model_value()).unwrap_or(Json::Null);
            (n.unique_id.clone(), value)
        })
        .collect();
    let sources: JsonMap<String, Json> = sources
        .values()
        .map(|s| {
            (
                s.unique_id.clone(),
                serde_json::json!({
                    "unique_id": s.unique_id,
                    "name": s.name,
                    "source_name": s.source_name,
                    "identifier": s.identifier,
                    "schema": s.schema,
                    "package_name": s.package,
                    "resource_type": "source",
                    "meta": s.meta,
                    "tags": s.tags,
                }),
            )
        })
        .collect();
    serde_json::json!({"nodes": nodes, "sources": sources, "exposures": {}, "metrics": {}, "groups": {}})
}

struct Loader {
    /// The root project's name and file.
    root_name: String,
    root_file: ProjectFile,
    /// The package being read (the root project or an installed package) and its file.
    name: String,
    target: Target,
    file: ProjectFile,
    env: Arc<Environment<'static>>,
    shared: Arc<Shared>,
    nodes: BTreeMap<String, Node>,
    /// Enabled models and seeds by package and name: what `ref` resolves to.
    by_name: BTreeMap<(String, String), String>,
    /// Disabled models and seeds by name.
    disabled: BTreeMap<String, PathBuf>,
    pending: Vec<Pending>,
    sources: BTreeMap<SourceKey, SourceTable>,
    disabled_sources: BTreeSet<SourceKey>,
    warnings: Vec<String>,
    /// Keys read but not applied, as found.
    unsupported: Vec<Unsupported>,
    /// Folders of each properties file below its resource path (for test fqns).
    property_dirs: BTreeMap<PathBuf, Vec<String>>,
}

impl Loader {
    /// Reads `unit`'s files from now on.
    fn enter(&mut self, unit: &Unit) {
        self.name = unit.file.name.clone();
        self.file = unit.file.clone();
        self.property_dirs = unit
            .property_files
            .iter()
            .map(|f| (f.rel.clone(), f.dirs()))
            .collect();
    }

    fn fqn(&self, dirs: Vec<String>, name: &str) -> Vec<String> {
        let mut fqn = vec![self.name.clone()];
        fqn.extend(dirs);
        fqn.push(name.to_string());
        fqn
    }

    /// The folder configs of a node of the current package at `fqn`: the package's own
    /// `dbt_project.yml`, then (for an installed package) the root project's entry for it.
    fn folder_configs(
        &self,
        tree: fn(&ProjectFile) -> Option<&Json>,
        fqn: &[String],
    ) -> JsonMap<String, Json> {
        let mut raw = folder_config(tree(&self.file), &self.name, fqn);
        if self.name != self.root_name {
            merge_config(
                &mut raw,
                &folder_config(tree(&self.root_file), &self.name, fqn),
            );
        }
        raw
    }

    /// The enabled model or seed named `name` in the current package.
    fn named(&self, name: &str) -> Option<&String> {
        self.by_name.get(&(self.name.clone(), name.to_string()))
    }

    /// Records an enabled model or seed; two of the same name in a package are an error.
    fn insert_named(&mut self, node: Node) -> Result<(), ProjectError> {
        if let Some(other) = self.named(&node.name) {
            let other = &self.nodes[other];
            return Err(ProjectError::Duplicate {
                kind: if other.resource == node.resource {
                    node.resource.as_str()
                } else {
                    "resource"
                },
                name: node.name.clone(),
                first: other.path.clone(),
                second: node.path.clone(),
            });
        }
        self.by_name.insert(
            (node.package.clone(), node.name.clone()),
            node.unique_id.clone(),
        );
        self.nodes.insert(node.unique_id.clone(), node);
        Ok(())
    }

    fn enabled(
        &self,
        raw: &JsonMap<String, Json>,
        path: &Path,
        node: &str,
    ) -> Result<bool, ProjectError> {
        is_enabled(raw).map_err(|message| ProjectError::Config {
            path: path.to_path_buf(),
            node: node.to_string(),
            message,
        })
    }
}

fn string_list(value: Option<&Json>) -> Vec<String> {
    match value {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}
