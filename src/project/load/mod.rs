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
mod sources;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::Environment;
use serde_json::{Map as JsonMap, Value as Json};

use crate::jinja::{Shared, Target};
use crate::project::files::{
    Ignore, PROJECT_FILE, ProjectFile, SourceFile, collect, parse_yaml, read_text,
};
use crate::project::node_config::is_enabled;
use crate::project::schema::read_properties;
use crate::project::{Node, Project, ProjectError, SourceTable};
use macros::{build_env, read_docs, read_macros};
use project_file::{merge_vars, parse_cli_vars, render_project_configs};
use resolve::Pending;

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
    file.check_paths(&root)?;
    let name = file.name.clone();
    let target_path = file.target_path();
    render_project_configs(&mut file, &cli, target)?;
    let vars = merge_vars(&name, file.vars.as_ref(), &cli);

    // Files.
    let ignore = Ignore::load(&root)?;
    let test_paths = file.test_paths();
    let generic_dirs: Vec<String> = test_paths.iter().map(|t| format!("{t}/generic")).collect();
    let mut macro_files = collect(&root, &file.macro_paths(), &["sql"], &ignore, true)?;
    macro_files.extend(collect(&root, &generic_dirs, &["sql"], &ignore, true)?);
    let model_files = collect(&root, &file.model_paths(), &["sql"], &ignore, true)?;
    let test_files: Vec<SourceFile> = collect(&root, &test_paths, &["sql"], &ignore, true)?
        .into_iter()
        .filter(|f| !f.within.starts_with("generic"))
        .collect();
    let seed_files = collect(&root, &file.seed_paths(), &["csv"], &ignore, false)?;
    let mut property_dirs = file.model_paths();
    for dir in file
        .seed_paths()
        .into_iter()
        .chain(test_paths.clone())
        .chain(file.macro_paths())
    {
        if !property_dirs.contains(&dir) {
            property_dirs.push(dir);
        }
    }
    let property_files = collect(&root, &property_dirs, &["yml", "yaml"], &ignore, true)?;
    let doc_files = collect(&root, &file.docs_paths(), &["md"], &ignore, true)?;

    let docs = read_docs(&doc_files)?;
    let macros = read_macros(&macro_files)?;
    let shared = Arc::new(Shared {
        project_name: name.clone(),
        vars: vars.clone(),
        docs: docs.clone(),
        macros: macros.callable,
    });
    let env = build_env(
        shared.clone(),
        macros.builtin_source,
        macros.sources,
        model_files.iter().chain(&test_files),
    )?;

    let props = read_properties(&property_files)?;
    let property_dirs_of: BTreeMap<PathBuf, Vec<String>> = property_files
        .iter()
        .map(|f| (f.rel.clone(), f.dirs()))
        .collect();

    let mut loader = Loader {
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
        warnings: Vec::new(),
        property_dirs: property_dirs_of,
    };
    loader.models(&model_files, &props)?;
    loader.seeds(&seed_files, &props)?;
    loader.singular_tests(&test_files)?;
    loader.sources(&props)?;
    loader.generic_tests(&props)?;
    loader.resolve()?;

    Ok(Project {
        root,
        name,
        target_path,
        vars,
        nodes: loader.nodes,
        sources: loader.sources,
        docs,
        macros: macros.origin,
        target: target.clone(),
        warnings: loader.warnings,
        env: loader.env,
        shared: loader.shared,
    })
}

struct Loader {
    name: String,
    target: Target,
    file: ProjectFile,
    env: Arc<Environment<'static>>,
    shared: Arc<Shared>,
    nodes: BTreeMap<String, Node>,
    /// Enabled models and seeds by name: what `ref` resolves to.
    by_name: BTreeMap<String, String>,
    /// Disabled models and seeds by name.
    disabled: BTreeMap<String, PathBuf>,
    pending: Vec<Pending>,
    sources: BTreeMap<(String, String), SourceTable>,
    disabled_sources: BTreeSet<(String, String)>,
    warnings: Vec<String>,
    /// Folders of each properties file below its resource path (for test fqns).
    property_dirs: BTreeMap<PathBuf, Vec<String>>,
}

impl Loader {
    fn fqn(&self, dirs: Vec<String>, name: &str) -> Vec<String> {
        let mut fqn = vec![self.name.clone()];
        fqn.extend(dirs);
        fqn.push(name.to_string());
        fqn
    }

    /// Records an enabled model or seed; two of the same name are an error.
    fn insert_named(&mut self, node: Node) -> Result<(), ProjectError> {
        if let Some(other) = self.by_name.get(&node.name) {
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
        self.by_name
            .insert(node.name.clone(), node.unique_id.clone());
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
