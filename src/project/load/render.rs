//! Parse-mode rendering for the loader: the frames nodes and properties values are rendered
//! in, and render failures as [`ProjectError`]s naming the file and node.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use minijinja::{Environment, Value};
use serde_json::{Map as JsonMap, Value as Json, json};

use super::Loader;
use super::resolve::Pending;
use crate::jinja::config_call::merge_config;
use crate::jinja::context::{JinjaRelation, batch_value, model_with_batch, template_context};
use crate::jinja::error::RenderFailure;
use crate::jinja::frame::{Frame, FrameFailure, Mode};
use crate::jinja::{
    MacroRef, Phase, RenderError, call_macro, is_template, mutable_literals, render_str,
    render_template, run_in_frame,
};
use crate::project::files::{SourceFile, template_name};
use crate::project::node_config::normalize_map;
use crate::project::schema::ResourcePatch;
use crate::project::{Node, ProjectError, Resource};

/// Renders every string holding Jinja in `value`, except under keys `skip` accepts.
pub(super) fn render_json(
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
pub(super) fn render_error(path: &Path, node: &str, failure: RenderFailure) -> ProjectError {
    let path = path.to_path_buf();
    let node = node.to_string();
    match failure.failure {
        Some(FrameFailure::MissingVar(var)) => RenderError::MissingVar { path, node, var }.into(),
        Some(FrameFailure::MissingEnvVar(var)) => {
            RenderError::MissingEnvVar { path, node, var }.into()
        }
        Some(FrameFailure::UnknownDoc(name)) => ProjectError::UnknownDoc { path, node, name },
        Some(
            FrameFailure::Raised(message)
            | FrameFailure::Unsupported(message)
            | FrameFailure::Deferred(message),
        ) => RenderError::Template {
            path,
            line: None,
            node,
            phase: Phase::Parse,
            message,
        }
        .into(),
        Some(FrameFailure::UndeclaredRef(_) | FrameFailure::UndeclaredSource(..)) | None => {
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

impl Loader {
    /// A parse-mode frame for rendering outside any node (properties values).
    pub(super) fn yaml_frame(&self) -> Rc<Frame> {
        let ctx = template_context(
            &self.root_name,
            &self.target,
            false,
            Value::from(()),
            Value::from(()),
        );
        Rc::new(Frame::new(Mode::Parse, ctx, false, JsonMap::new()).in_package(&self.name))
    }

    /// A parse-mode frame for a node whose config so far is `config`.
    pub(super) fn node_frame(
        &self,
        unique_id: &str,
        name: &str,
        resource: Resource,
        path: &Path,
        fqn: &[String],
        config: &JsonMap<String, Json>,
    ) -> Rc<Frame> {
        let this = JinjaRelation {
            rendered: name.to_string(),
            database: None,
            schema: Some(self.target.schema.clone()),
            identifier: name.to_string(),
        }
        .value();
        let model: JsonMap<String, Json> = [
            ("unique_id", json!(unique_id)),
            ("name", json!(name)),
            ("resource_type", json!(resource.as_str())),
            ("package_name", json!(self.name)),
            ("original_file_path", json!(template_name(path))),
            ("path", json!(template_name(path))),
            ("fqn", json!(fqn)),
            ("config", json!(config)),
            ("tags", config.get("tags").cloned().unwrap_or(json!([]))),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        // Whether a model runs in batches is known only once parsed: its SQL may read
        // `model.batch`, so parsing sees a stand-in (dbt's parse tolerates anything missing).
        let started = self.target.invocation.started_at;
        let model = model_with_batch(model, batch_value("", started, started));
        let ctx = template_context(&self.root_name, &self.target, false, this, model);
        Rc::new(Frame::new(Mode::Parse, ctx, false, config.clone()).in_package(&self.name))
    }

    pub(super) fn render_text(
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
    pub(super) fn patch_config(
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
    pub(super) fn rendered_config(
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

    /// Renders a model or singular test in parse mode; returns the merged config and what
    /// it referenced.
    #[allow(clippy::type_complexity)]
    pub(super) fn parse_render(
        &self,
        file: &SourceFile,
        unique_id: &str,
        resource: Resource,
        fqn: &[String],
        raw: JsonMap<String, Json>,
    ) -> Result<(JsonMap<String, Json>, Pending), ProjectError> {
        let name = file.stem();
        let frame = self.node_frame(unique_id, &name, resource, &file.rel, fqn, &raw);
        render_template(&self.env, &file.template_name(), frame.clone())
            .map_err(|f| render_error(&file.rel, unique_id, f))?;
        Ok(Self::rendered(frame, raw, unique_id))
    }

    /// [`Self::parse_render`] for a node whose SQL is `text` rather than a whole file (a
    /// snapshot block, or a YAML snapshot's `select`), defined in `path`.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub(super) fn parse_render_text(
        &self,
        path: &Path,
        name: &str,
        unique_id: &str,
        resource: Resource,
        fqn: &[String],
        raw: JsonMap<String, Json>,
        text: &str,
    ) -> Result<(JsonMap<String, Json>, Pending), ProjectError> {
        let frame = self.node_frame(unique_id, name, resource, path, fqn, &raw);
        render_str(
            &self.env,
            &template_name(path),
            &mutable_literals(text),
            frame.clone(),
        )
        .map_err(|f| render_error(path, unique_id, f))?;
        Ok(Self::rendered(frame, raw, unique_id))
    }

    /// The node's config with what its render's `config()` calls set, and what it referenced.
    fn rendered(
        frame: Rc<Frame>,
        mut raw: JsonMap<String, Json>,
        unique_id: &str,
    ) -> (JsonMap<String, Json>, Pending) {
        merge_config(&mut raw, &frame.captured_config.borrow());
        let pending = Pending {
            unique_id: unique_id.to_string(),
            refs: frame.refs.take(),
            sources: frame.sources.take(),
        };
        (raw, pending)
    }

    pub(super) fn call_at_parse(
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
}
