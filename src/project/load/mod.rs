//! The load pipeline: `dbt_project.yml` → files → docs and macros → one Jinja environment →
//! properties files → models, seeds, singular tests (each rendered once in parse mode),
//! sources, generic tests → `ref`/`source` resolution.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use minijinja::{Environment, Value};
use serde_json::{Map as JsonMap, Value as Json, json};

use super::config::{build_node_config, folder_config, is_enabled, normalize_map};
use super::files::{
    Ignore, PROJECT_FILE, ProjectFile, SourceFile, collect, parse_yaml, read_text, template_name,
};
use super::schema::{
    ColumnDef, Patch, Properties, ResourcePatch, parse_test, read_properties, test_entries,
    test_name,
};
use super::{ColumnDoc, Node, Project, ProjectError, Resource, SourceTable, TestInfo, TestKind};
use crate::jinja::blocks::{docs_blocks, preprocess_macros};
use crate::jinja::config::merge_config;
use crate::jinja::context::{Relation, template_context};
use crate::jinja::error::{RenderFailure, column_of, describe};
use crate::jinja::frame::{Failure, Frame, Mode};
use crate::jinja::{
    BUILTIN_TESTS, BUILTIN_TESTS_TEMPLATE, MACRO_PREFIX, MacroRef, Phase, RenderError, Shared,
    Target, call_macro, eval_test_arg, is_template, new_env, render_str, render_template,
    run_in_frame,
};

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

    // Docs blocks.
    let mut docs = BTreeMap::new();
    let mut doc_origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    for md in &doc_files {
        let blocks =
            docs_blocks(&md.text).map_err(|(line, message)| ProjectError::JinjaSyntax {
                path: md.rel.clone(),
                line,
                column: 1,
                message,
            })?;
        for block in blocks {
            if let Some(first) = doc_origin.get(&block.name) {
                return Err(ProjectError::Duplicate {
                    kind: "docs block",
                    name: block.name,
                    first: first.clone(),
                    second: md.rel.clone(),
                });
            }
            doc_origin.insert(block.name.clone(), md.rel.clone());
            docs.insert(block.name, block.text);
        }
    }

    // Macros: the built-in generic tests, then the project's (which may override them).
    let mut macros = BTreeMap::new();
    let (builtin_source, builtin_decls) = preprocess_macros(BUILTIN_TESTS);
    for decl in builtin_decls {
        macros.insert(
            decl.name.clone(),
            MacroRef {
                template: BUILTIN_TESTS_TEMPLATE.into(),
                mangled: format!("{MACRO_PREFIX}{}", decl.name),
            },
        );
    }
    let mut macro_origin: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut macro_sources = Vec::new();
    for mf in &macro_files {
        let (source, decls) = preprocess_macros(&mf.text);
        for decl in decls {
            if let Some(first) = macro_origin.get(&decl.name) {
                return Err(ProjectError::Duplicate {
                    kind: "macro",
                    name: decl.name,
                    first: first.clone(),
                    second: mf.rel.clone(),
                });
            }
            macro_origin.insert(decl.name.clone(), mf.rel.clone());
            macros.insert(
                decl.name.clone(),
                MacroRef {
                    template: mf.template_name(),
                    mangled: format!("{MACRO_PREFIX}{}", decl.name),
                },
            );
        }
        macro_sources.push((mf, source));
    }

    let shared = Arc::new(Shared {
        project_name: name.clone(),
        vars: vars.clone(),
        docs: docs.clone(),
        macros,
    });
    let mut env = new_env(shared.clone());
    add_template(
        &mut env,
        BUILTIN_TESTS_TEMPLATE,
        builtin_source,
        Path::new(BUILTIN_TESTS_TEMPLATE),
    )?;
    for (mf, source) in macro_sources {
        add_template(&mut env, &mf.template_name(), source, &mf.rel)?;
    }
    for f in model_files.iter().chain(&test_files) {
        add_template(&mut env, &f.template_name(), f.text.clone(), &f.rel)?;
    }

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
        macros: macro_origin,
        target: target.clone(),
        warnings: loader.warnings,
        env: loader.env,
        shared: loader.shared,
    })
}

fn add_template(
    env: &mut Environment<'static>,
    name: &str,
    source: String,
    rel: &Path,
) -> Result<(), ProjectError> {
    env.add_template_owned(name.to_string(), source.clone())
        .map_err(|err| ProjectError::JinjaSyntax {
            path: rel.to_path_buf(),
            line: err.line().unwrap_or(1),
            column: err.range().map_or(1, |r| column_of(&source, r.start)),
            message: err.detail().map_or_else(|| describe(&err), str::to_string),
        })
}

fn parse_cli_vars(text: Option<&str>) -> Result<JsonMap<String, Json>, ProjectError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(JsonMap::new());
    };
    let value: Json = serde_norway::from_str(text).map_err(|e| ProjectError::CliVars {
        message: e.to_string(),
    })?;
    match value {
        Json::Object(map) => Ok(map),
        Json::Null => Ok(JsonMap::new()),
        other => Err(ProjectError::CliVars {
            message: format!("expected a mapping such as '{{key: value}}', got {other}"),
        }),
    }
}

/// Global vars, then the ones scoped under the project's name, then `--vars`.
fn merge_vars(
    project: &str,
    section: Option<&JsonMap<String, Json>>,
    cli: &JsonMap<String, Json>,
) -> BTreeMap<String, Json> {
    let mut vars = BTreeMap::new();
    if let Some(section) = section {
        for (key, value) in section {
            if key == project && value.is_object() {
                continue;
            }
            vars.insert(key.clone(), value.clone());
        }
        if let Some(Json::Object(scoped)) = section.get(project) {
            for (key, value) in scoped {
                vars.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in cli {
        vars.insert(key.clone(), value.clone());
    }
    vars
}

/// Renders the Jinja in `dbt_project.yml`'s config trees (`env_var`, `var` from `--vars`,
/// `target`); hooks are left for run time.
fn render_project_configs(
    file: &mut ProjectFile,
    cli: &JsonMap<String, Json>,
    target: &Target,
) -> Result<(), ProjectError> {
    let trees = [
        &mut file.models,
        &mut file.seeds,
        &mut file.data_tests,
        &mut file.tests,
    ];
    if !trees.iter().any(|t| {
        t.as_ref()
            .is_some_and(|t| t.to_string().contains("{{") || t.to_string().contains("{%"))
    }) {
        return Ok(());
    }
    let shared = Arc::new(Shared {
        project_name: file.name.clone(),
        vars: cli.clone().into_iter().collect(),
        ..Shared::default()
    });
    let env = new_env(shared);
    let ctx = template_context(&file.name, target, false, Value::from(()), Value::from(()));
    for tree in trees.into_iter().flatten() {
        render_json(&env, PROJECT_FILE, &ctx, tree, &|key| {
            key.ends_with("pre-hook") || key.ends_with("post-hook") || key.ends_with("_hook")
        })
        .map_err(|f| render_error(Path::new(PROJECT_FILE), PROJECT_FILE, f))?;
    }
    Ok(())
}

/// Renders every string holding Jinja in `value`, except under keys `skip` accepts.
fn render_json(
    env: &Environment<'_>,
    name: &str,
    ctx: &Value,
    value: &mut Json,
    skip: &dyn Fn(&str) -> bool,
) -> Result<(), RenderFailure> {
    match value {
        Json::String(s) if is_template(s) => {
            let frame = Rc::new(Frame::new(Mode::Parse, ctx.clone(), false, JsonMap::new()));
            *s = render_str(env, name, s, frame)?;
        }
        Json::Array(items) => {
            for item in items {
                render_json(env, name, ctx, item, skip)?;
            }
        }
        Json::Object(map) => {
            for (key, item) in map.iter_mut() {
                if !skip(key) {
                    render_json(env, name, ctx, item, skip)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A parse-time render failure as a [`ProjectError`] about `node`, defined in `path`.
fn render_error(path: &Path, node: &str, failure: RenderFailure) -> ProjectError {
    let path = path.to_path_buf();
    let node = node.to_string();
    match failure.failure {
        Some(Failure::MissingVar(var)) => RenderError::MissingVar { path, node, var }.into(),
        Some(Failure::MissingEnvVar(var)) => RenderError::MissingEnvVar { path, node, var }.into(),
        Some(Failure::UnknownDoc(name)) => ProjectError::UnknownDoc { path, node, name },
        Some(Failure::Raised(message) | Failure::Unsupported(message)) => RenderError::Template {
            path,
            line: None,
            node,
            phase: Phase::Parse,
            message,
        }
        .into(),
        Some(Failure::UndeclaredRef(_) | Failure::UndeclaredSource(..)) | None => {
            RenderError::Template {
                path: failure.template.map_or(path, PathBuf::from),
                line: failure.line,
                node,
                phase: Phase::Parse,
                message: failure.message,
            }
            .into()
        }
    }
}

/// The closest of `candidates` to `name`, if close enough to be a likely typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_string())
}

/// Refs and sources captured while parsing a node, resolved once every node is known.
struct Pending {
    unique_id: String,
    refs: Vec<(Option<String>, String)>,
    sources: Vec<(String, String)>,
}

/// What a generic test is attached to.
enum TestTarget {
    Node { unique_id: String, name: String },
    Source { source: String, table: String },
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

    /// A parse-mode frame for rendering outside any node (properties values).
    fn yaml_frame(&self) -> Rc<Frame> {
        let ctx = template_context(
            &self.name,
            &self.target,
            false,
            Value::from(()),
            Value::from(()),
        );
        Rc::new(Frame::new(Mode::Parse, ctx, false, JsonMap::new()))
    }

    /// A parse-mode frame for a node whose config so far is `config`.
    fn node_frame(
        &self,
        unique_id: &str,
        name: &str,
        resource: Resource,
        path: &Path,
        fqn: &[String],
        config: &JsonMap<String, Json>,
    ) -> Rc<Frame> {
        let this = Relation {
            rendered: name.to_string(),
            database: None,
            schema: Some(self.target.schema.clone()),
            identifier: name.to_string(),
        }
        .value();
        let model = Value::from_serialize(json!({
            "unique_id": unique_id,
            "name": name,
            "resource_type": resource.as_str(),
            "package_name": self.name,
            "original_file_path": template_name(path),
            "path": template_name(path),
            "fqn": fqn,
            "config": config,
            "tags": config.get("tags").cloned().unwrap_or(json!([])),
        }));
        let ctx = template_context(&self.name, &self.target, false, this, model);
        Rc::new(Frame::new(Mode::Parse, ctx, false, config.clone()))
    }

    fn render_text(
        &self,
        text: Option<&str>,
        path: &Path,
        node: &str,
    ) -> Result<String, ProjectError> {
        match text {
            None => Ok(String::new()),
            Some(text) if !is_template(text) => Ok(text.to_string()),
            Some(text) => render_str(&self.env, &template_name(path), text, self.yaml_frame())
                .map_err(|f| render_error(path, node, f)),
        }
    }

    /// A properties entry's config layer: its `meta`/`tags`, then its `config:`.
    fn patch_config(
        &self,
        def: &ResourcePatch,
        path: &Path,
        node: &str,
    ) -> Result<JsonMap<String, Json>, ProjectError> {
        let mut layer = JsonMap::new();
        if let Some(meta) = &def.meta {
            layer.insert("meta".into(), Json::Object(meta.clone()));
        }
        if let Some(tags) = &def.tags {
            layer.insert("tags".into(), tags.clone());
        }
        if let Some(config) = &def.config {
            merge_config(&mut layer, &self.rendered_config(config, path, node)?);
        }
        Ok(layer)
    }

    /// A `config:` mapping from a properties file, keys normalized, Jinja rendered (except
    /// hooks and a test's `where`, which are rendered when compiling).
    fn rendered_config(
        &self,
        config: &JsonMap<String, Json>,
        path: &Path,
        node: &str,
    ) -> Result<JsonMap<String, Json>, ProjectError> {
        let mut value = Json::Object(normalize_map(config));
        let ctx = self.yaml_frame().ctx.clone();
        render_json(&self.env, &template_name(path), &ctx, &mut value, &|key| {
            matches!(key, "pre_hook" | "post_hook" | "where")
        })
        .map_err(|f| render_error(path, node, f))?;
        match value {
            Json::Object(map) => Ok(map),
            _ => unreachable!("an object stays an object"),
        }
    }

    fn columns(
        &self,
        defs: Option<&Vec<ColumnDef>>,
        path: &Path,
        node: &str,
    ) -> Result<Vec<ColumnDoc>, ProjectError> {
        let mut columns = Vec::new();
        for def in defs.into_iter().flatten() {
            let mut meta: BTreeMap<String, Json> =
                def.meta.clone().unwrap_or_default().into_iter().collect();
            let mut tags = string_list(def.tags.as_ref());
            if let Some(config) = &def.config {
                if let Some(Json::Object(m)) = config.get("meta") {
                    meta.extend(m.clone());
                }
                tags.extend(string_list(config.get("tags")));
            }
            columns.push(ColumnDoc {
                name: def.name.clone(),
                description: self.render_text(def.description.as_deref(), path, node)?,
                data_type: def.data_type.clone(),
                meta,
                tags,
            });
        }
        Ok(columns)
    }

    /// Builds a node from its merged raw config; resolves its schema and alias.
    #[allow(clippy::too_many_arguments)]
    fn make_node(
        &self,
        unique_id: String,
        name: String,
        resource: Resource,
        path: PathBuf,
        fqn: Vec<String>,
        raw_code: String,
        raw: &JsonMap<String, Json>,
        patch: Option<&Patch<ResourcePatch>>,
    ) -> Result<Node, ProjectError> {
        let config_error = |message: String| ProjectError::Config {
            path: path.clone(),
            node: unique_id.clone(),
            message,
        };
        let (mut config, custom_schema) = build_node_config(resource, raw).map_err(config_error)?;
        config.schema = self.target.schema.clone();
        let (description, columns, patch_path) = match patch {
            Some(p) => (
                self.render_text(p.def.description.as_deref(), &p.path, &unique_id)?,
                self.columns(p.def.columns.as_ref(), &p.path, &unique_id)?,
                Some(p.path.clone()),
            ),
            None => (String::new(), Vec::new(), None),
        };
        let mut node = Node {
            unique_id,
            name,
            resource,
            path,
            fqn,
            raw_code,
            config,
            depends_on: Vec::new(),
            sources: Vec::new(),
            description,
            columns,
            patch_path,
            test: None,
        };
        node.config.schema = self.schema_for(&node, custom_schema.as_deref())?;
        if let Some(target) = self.shared.macros.get("generate_alias_name") {
            let custom = node.config.alias.clone();
            let args = [
                custom.map_or(Value::from(()), Value::from),
                node.model_value(),
            ];
            let alias = self.call_at_parse(&node, target, &args)?;
            node.config.alias = (alias != node.name).then_some(alias);
        }
        Ok(node)
    }

    /// `generate_schema_name(custom_schema_name, node)`: the project's macro if it defines
    /// one, else Strata's default (the custom schema as is, or the target's schema).
    fn schema_for(&self, node: &Node, custom: Option<&str>) -> Result<String, ProjectError> {
        match self.shared.macros.get("generate_schema_name") {
            Some(target) => {
                let args = [
                    custom.map_or(Value::from(()), Value::from),
                    node.model_value(),
                ];
                self.call_at_parse(node, target, &args)
            }
            None => Ok(custom.map_or_else(|| self.target.schema.clone(), |s| s.trim().to_string())),
        }
    }

    fn call_at_parse(
        &self,
        node: &Node,
        target: &MacroRef,
        args: &[Value],
    ) -> Result<String, ProjectError> {
        let frame = self.node_frame(
            &node.unique_id,
            &node.name,
            node.resource,
            &node.path,
            &node.fqn,
            &node.config.to_json(),
        );
        run_in_frame(frame, || call_macro(&self.env, target, args))
            .map(|v| v.to_string().trim().to_string())
            .map_err(|f| render_error(&node.path, &node.unique_id, f))
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

    /// Renders a model or singular test in parse mode; returns the merged config and what
    /// it referenced.
    #[allow(clippy::type_complexity)]
    fn parse_render(
        &self,
        file: &SourceFile,
        unique_id: &str,
        resource: Resource,
        fqn: &[String],
        mut raw: JsonMap<String, Json>,
    ) -> Result<(JsonMap<String, Json>, Pending), ProjectError> {
        let name = file.stem();
        let frame = self.node_frame(unique_id, &name, resource, &file.rel, fqn, &raw);
        render_template(&self.env, &file.template_name(), frame.clone())
            .map_err(|f| render_error(&file.rel, unique_id, f))?;
        merge_config(&mut raw, &frame.captured_config.borrow());
        let pending = Pending {
            unique_id: unique_id.to_string(),
            refs: frame.refs.take(),
            sources: frame.sources.take(),
        };
        Ok((raw, pending))
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

    fn models(&mut self, files: &[SourceFile], props: &Properties) -> Result<(), ProjectError> {
        for file in files {
            let name = file.stem();
            let fqn = self.fqn(file.dirs(), &name);
            let unique_id = format!("model.{}.{name}", self.name);
            let mut raw = folder_config(self.file.models.as_ref(), &self.name, &fqn);
            let patch = props.models.get(&name);
            if let Some(p) = patch {
                merge_config(&mut raw, &self.patch_config(&p.def, &p.path, &unique_id)?);
            }
            let (raw, pending) = self.parse_render(file, &unique_id, Resource::Model, &fqn, raw)?;
            if !self.enabled(&raw, &file.rel, &unique_id)? {
                self.disabled
                    .entry(name)
                    .or_insert_with(|| file.rel.clone());
                continue;
            }
            let node = self.make_node(
                unique_id,
                name,
                Resource::Model,
                file.rel.clone(),
                fqn,
                file.text.clone(),
                &raw,
                patch,
            )?;
            self.insert_named(node)?;
            self.pending.push(pending);
        }
        Ok(())
    }

    fn seeds(&mut self, files: &[SourceFile], props: &Properties) -> Result<(), ProjectError> {
        for file in files {
            let name = file.stem();
            let fqn = self.fqn(file.dirs(), &name);
            let unique_id = format!("seed.{}.{name}", self.name);
            let mut raw = folder_config(self.file.seeds.as_ref(), &self.name, &fqn);
            let patch = props.seeds.get(&name);
            if let Some(p) = patch {
                merge_config(&mut raw, &self.patch_config(&p.def, &p.path, &unique_id)?);
            }
            if !self.enabled(&raw, &file.rel, &unique_id)? {
                self.disabled
                    .entry(name)
                    .or_insert_with(|| file.rel.clone());
                continue;
            }
            let node = self.make_node(
                unique_id,
                name,
                Resource::Seed,
                file.rel.clone(),
                fqn,
                String::new(),
                &raw,
                patch,
            )?;
            self.insert_named(node)?;
        }
        Ok(())
    }

    fn singular_tests(&mut self, files: &[SourceFile]) -> Result<(), ProjectError> {
        for file in files {
            let name = file.stem();
            let fqn = self.fqn(file.dirs(), &name);
            let unique_id = format!("test.{}.{name}", self.name);
            let raw = folder_config(self.file.test_configs(), &self.name, &fqn);
            let (raw, pending) = self.parse_render(file, &unique_id, Resource::Test, &fqn, raw)?;
            if !self.enabled(&raw, &file.rel, &unique_id)? {
                continue;
            }
            if let Some(other) = self.nodes.get(&unique_id) {
                return Err(ProjectError::Duplicate {
                    kind: "test",
                    name,
                    first: other.path.clone(),
                    second: file.rel.clone(),
                });
            }
            let mut node = self.make_node(
                unique_id.clone(),
                name,
                Resource::Test,
                file.rel.clone(),
                fqn,
                file.text.clone(),
                &raw,
                None,
            )?;
            node.test = Some(TestInfo {
                kind: TestKind::Singular,
                attached_node: None,
            });
            self.nodes.insert(unique_id, node);
            self.pending.push(pending);
        }
        Ok(())
    }

    fn sources(&mut self, props: &Properties) -> Result<(), ProjectError> {
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
                let key = (def.name.clone(), table.name.clone());
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
                let mut tags = source_tags.clone();
                tags.extend(string_list(table.tags.as_ref()));
                let source_table = SourceTable {
                    unique_id: unique_id.clone(),
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
                    path: path.clone(),
                };
                self.sources.insert(key, source_table);
            }
        }
        Ok(())
    }

    fn generic_tests(&mut self, props: &Properties) -> Result<(), ProjectError> {
        for (resource, patches) in [
            (Resource::Model, &props.models),
            (Resource::Seed, &props.seeds),
        ] {
            for (name, patch) in patches {
                let kind = resource.as_str();
                let attached = self
                    .by_name
                    .get(name)
                    .filter(|id| self.nodes[*id].resource == resource)
                    .cloned();
                let Some(unique_id) = attached else {
                    if !self.disabled.contains_key(name) {
                        self.warnings.push(format!(
                            "{}: {kind} '{name}' has properties but no {kind} of that name exists",
                            patch.path.display()
                        ));
                    }
                    continue;
                };
                let target = || TestTarget::Node {
                    unique_id: unique_id.clone(),
                    name: name.clone(),
                };
                let def = &patch.def;
                let entries =
                    test_entries(&def.tests, &def.data_tests, &format!("{kind} '{name}'"))
                        .map_err(|message| ProjectError::Invalid {
                            path: patch.path.clone(),
                            message,
                        })?;
                for entry in entries {
                    self.generic_test(target(), None, entry, &patch.path)?;
                }
                for column in def.columns.iter().flatten() {
                    let what = format!("{kind} '{name}', column '{}'", column.name);
                    let entries = test_entries(&column.tests, &column.data_tests, &what).map_err(
                        |message| ProjectError::Invalid {
                            path: patch.path.clone(),
                            message,
                        },
                    )?;
                    for entry in entries {
                        self.generic_test(target(), Some(column), entry, &patch.path)?;
                    }
                }
            }
        }
        for patch in &props.sources {
            let def = &patch.def;
            for table in def.tables.iter().flatten() {
                if !self
                    .sources
                    .contains_key(&(def.name.clone(), table.name.clone()))
                {
                    continue;
                }
                let target = || TestTarget::Source {
                    source: def.name.clone(),
                    table: table.name.clone(),
                };
                let what = format!("source '{}', table '{}'", def.name, table.name);
                let entries =
                    test_entries(&table.tests, &table.data_tests, &what).map_err(|message| {
                        ProjectError::Invalid {
                            path: patch.path.clone(),
                            message,
                        }
                    })?;
                for entry in entries {
                    self.generic_test(target(), None, entry, &patch.path)?;
                }
                for column in table.columns.iter().flatten() {
                    let what = format!("{what}, column '{}'", column.name);
                    let entries = test_entries(&column.tests, &column.data_tests, &what).map_err(
                        |message| ProjectError::Invalid {
                            path: patch.path.clone(),
                            message,
                        },
                    )?;
                    for entry in entries {
                        self.generic_test(target(), Some(column), entry, &patch.path)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn generic_test(
        &mut self,
        target: TestTarget,
        column: Option<&ColumnDef>,
        entry: &Json,
        path: &Path,
    ) -> Result<(), ProjectError> {
        let (subject, target_name, on_source) = match &target {
            TestTarget::Node { unique_id, name } => (unique_id.clone(), name.clone(), false),
            TestTarget::Source { source, table } => (
                format!("source.{}.{source}.{table}", self.name),
                format!("{source}_{table}"),
                true,
            ),
        };
        let spec = parse_test(entry).map_err(|message| ProjectError::Invalid {
            path: path.to_path_buf(),
            message: match column {
                Some(c) => format!("{subject}, column '{}': {message}", c.name),
                None => format!("{subject}: {message}"),
            },
        })?;
        let full_test_name = match &spec.namespace {
            Some(ns) => format!("{ns}.{}", spec.test_name),
            None => spec.test_name.clone(),
        };
        if spec.namespace.as_ref().is_some_and(|ns| ns != &self.name)
            || !self
                .shared
                .macros
                .contains_key(&format!("test_{}", spec.test_name))
        {
            let known = self
                .shared
                .macros
                .keys()
                .filter_map(|m| m.strip_prefix("test_"));
            return Err(ProjectError::UnknownTest {
                path: path.to_path_buf(),
                node: subject,
                test: full_test_name,
                suggestion: closest(&spec.test_name, known),
            });
        }
        let column_name = spec.column_name.clone().or_else(|| {
            column.map(|c| {
                if c.quote == Some(true) {
                    format!("\"{}\"", c.name)
                } else {
                    c.name.clone()
                }
            })
        });
        let mut name_args = spec.args.clone();
        if let Some(column_name) = &column_name {
            name_args.insert("column_name".into(), Json::String(column_name.clone()));
        }
        let test_type = match &spec.namespace {
            Some(ns) => format!("{ns}_{}", spec.test_name),
            None => spec.test_name.clone(),
        };
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| test_name(&test_type, &target_name, &name_args, on_source));
        let dirs = self.property_dirs.get(path).cloned().unwrap_or_default();
        let fqn = self.fqn(dirs, &name);
        let mut unique_id = format!("test.{}.{name}", self.name);
        let mut n = 2;
        while self.nodes.contains_key(&unique_id) {
            unique_id = format!("test.{}.{name}_{n}", self.name);
            n += 1;
        }
        let mut raw = folder_config(self.file.test_configs(), &self.name, &fqn);
        merge_config(
            &mut raw,
            &self.rendered_config(&spec.config, path, &unique_id)?,
        );
        if !self.enabled(&raw, path, &unique_id)? {
            return Ok(());
        }

        // Evaluate the arguments in parse mode to capture `ref`s (`to: ref('customers')`).
        let frame = self.node_frame(&unique_id, &name, Resource::Test, path, &fqn, &raw);
        let ctx = frame.ctx.clone();
        run_in_frame(frame.clone(), || {
            for arg in spec.args.values() {
                eval_test_arg(&self.env, &ctx, arg)?;
            }
            Ok(())
        })
        .map_err(|f| render_error(path, &unique_id, f))?;

        let raw_code = format!(
            "{{{{ test_{}(**_dbt_generic_test_kwargs) }}}}",
            spec.test_name
        );
        let mut node = self.make_node(
            unique_id.clone(),
            name,
            Resource::Test,
            path.to_path_buf(),
            fqn,
            raw_code,
            &raw,
            None,
        )?;
        node.description = spec.description.clone().unwrap_or_default();
        node.patch_path = Some(path.to_path_buf());
        match &target {
            TestTarget::Node { unique_id, .. } => node.depends_on.push(unique_id.clone()),
            TestTarget::Source { source, table } => {
                node.sources.push((source.clone(), table.clone()));
            }
        }
        node.test = Some(TestInfo {
            kind: TestKind::Generic {
                name: spec.test_name.clone(),
                column: column_name,
                args: spec.args.clone(),
            },
            attached_node: Some(subject),
        });
        self.nodes.insert(unique_id.clone(), node);
        self.pending.push(Pending {
            unique_id,
            refs: frame.refs.take(),
            sources: frame.sources.take(),
        });
        Ok(())
    }

    /// Resolves captured `ref`s and `source`s into dependencies.
    fn resolve(&mut self) -> Result<(), ProjectError> {
        for pending in std::mem::take(&mut self.pending) {
            let node = &self.nodes[&pending.unique_id];
            let is_test = node.resource == Resource::Test;
            let path = node.path.clone();
            let mut depends_on = node.depends_on.clone();
            let mut sources = node.sources.clone();
            let mut skip = None;
            for (package, name) in &pending.refs {
                if let Some(package) = package
                    && package != &self.name
                {
                    return Err(ProjectError::UnknownPackage {
                        path,
                        node: pending.unique_id.clone(),
                        package: package.clone(),
                        project: self.name.clone(),
                    });
                }
                match self.by_name.get(name) {
                    Some(id) => {
                        if !depends_on.contains(id) {
                            depends_on.push(id.clone());
                        }
                    }
                    None if self.disabled.contains_key(name) => {
                        if is_test {
                            skip = Some(format!("'{name}' is disabled"));
                            break;
                        }
                        return Err(ProjectError::DisabledRef {
                            path,
                            node: pending.unique_id.clone(),
                            name: name.clone(),
                        });
                    }
                    None => {
                        return Err(ProjectError::UnknownRef {
                            path,
                            node: pending.unique_id.clone(),
                            name: name.clone(),
                            suggestion: closest(name, self.by_name.keys().map(String::as_str)),
                        });
                    }
                }
            }
            for key in &pending.sources {
                if self.sources.contains_key(key) {
                    if !sources.contains(key) {
                        sources.push(key.clone());
                    }
                } else if is_test && self.disabled_sources.contains(key) {
                    skip = Some(format!("source '{}.{}' is disabled", key.0, key.1));
                } else {
                    let dotted: Vec<String> = self
                        .sources
                        .keys()
                        .map(|(s, t)| format!("{s}.{t}"))
                        .collect();
                    let suggestion = closest(
                        &format!("{}.{}", key.0, key.1),
                        dotted.iter().map(String::as_str),
                    );
                    return Err(ProjectError::UnknownSource {
                        path,
                        node: pending.unique_id.clone(),
                        source_name: key.0.clone(),
                        table: key.1.clone(),
                        suggestion,
                    });
                }
            }
            if let Some(reason) = skip {
                self.warnings.push(format!(
                    "{}: {} is disabled because {reason}",
                    path.display(),
                    pending.unique_id
                ));
                self.nodes.remove(&pending.unique_id);
                continue;
            }
            let node = self
                .nodes
                .get_mut(&pending.unique_id)
                .expect("pending node");
            node.depends_on = depends_on;
            node.sources = sources;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = ["stg_orders", "stg_customers", "orders"];
        assert_eq!(
            closest("stg_ordres", names.into_iter()).as_deref(),
            Some("stg_orders")
        );
        assert_eq!(
            closest("order", names.into_iter()).as_deref(),
            Some("orders")
        );
        assert_eq!(closest("payments", names.into_iter()), None);
    }

    #[test]
    fn vars_are_scoped() {
        let section = json!({"a": 1, "b": 2, "shop": {"b": 3, "c": 4}, "other_pkg": {"x": 1}});
        let cli = json!({"c": 5}).as_object().unwrap().clone();
        let vars = merge_vars("shop", section.as_object(), &cli);
        assert_eq!(
            serde_json::to_value(&vars).unwrap(),
            json!({"a": 1, "b": 3, "c": 5, "other_pkg": {"x": 1}})
        );
        assert!(parse_cli_vars(Some("[1]")).is_err());
        assert_eq!(parse_cli_vars(Some("{\"a\": 1}")).unwrap()["a"], json!(1));
        assert_eq!(parse_cli_vars(Some("a: x")).unwrap()["a"], json!("x"));
    }
}
