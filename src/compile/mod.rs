//! The compiler: renders a parsed node's SQL for execution with the [`crate::jinja`] runtime,
//! as dbt's `compile` does.
//!
//! The caller decides how relations are spelled ([`CompileContext::relation`] and
//! [`CompileContext::source_relation`]); references to ephemeral models become CTEs
//! (`__dbt__cte__<name>`) injected at the top of the compiled query, dependencies first.
//! Data tests compile to a query returning their failing rows.

pub(crate) mod origin;
pub(crate) mod output;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Kwargs, merge_maps};
use serde_json::Value as Json;

use crate::jinja::context::{EPHEMERAL_PREFIX, JinjaRelation, model_with_batch, template_context};
use crate::jinja::error::RenderFailure;
use crate::jinja::frame::{Frame, FrameFailure, Mode, RefTarget, Resolved};
use crate::jinja::{
    Phase, RenderError, Target, Warehouse, call_macro, eval_test_arg, is_template,
    mutable_literals, render_str, render_template, run_in_frame,
};
use crate::project::files::template_name;
use crate::project::{Materialized, Node, Project, Resource, SourceTable, TestKind};

/// How to compile: whether the incremental branch is taken, and how relations are spelled.
pub struct CompileContext<'a> {
    /// Whether the node's relation exists and is built incrementally (`is_incremental()` is
    /// true only for incremental models, and only when this is).
    pub is_incremental: bool,
    pub target: Target,
    /// The SQL spelling of a model's or seed's relation (`silver.stg_orders`); also `this`.
    pub relation: &'a dyn Fn(&Node) -> String,
    /// The SQL spelling of a source table (`bronze.shop_orders`, `read_csv('…')`).
    pub source_relation: &'a dyn Fn(&SourceTable) -> String,
    /// Where compile-time queries (`run_query`, `adapter.get_columns_in_relation`) go; without
    /// one they fail, naming the node.
    pub warehouse: Option<Arc<dyn Warehouse>>,
}

/// Why a node could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("no node '{0}' in the project")]
    UnknownNode(String),
    #[error("{0} is a seed: seeds are loaded, not compiled")]
    NotCompilable(String),
    #[error("{0} is a unit test: it compiles its model on the given rows when it runs")]
    UnitTest(String),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{}: {node} calls ref('{name}'), which was not captured when the project was parsed: dbt could not infer all dependencies (a ref() inside {{% if execute %}}?)", .path.display())]
    UndeclaredRef {
        path: PathBuf,
        node: String,
        name: String,
    },
    #[error("{}: {node} calls source('{source_name}', '{table}'), which was not captured when the project was parsed (a source() inside {{% if execute %}}?)", .path.display())]
    UndeclaredSource {
        path: PathBuf,
        node: String,
        source_name: String,
        table: String,
    },
    #[error("{}{}: {node}: {message}", .path.display(), .line.map(|l| format!(":{l}")).unwrap_or_default())]
    Raised {
        path: PathBuf,
        line: Option<usize>,
        node: String,
        message: String,
    },
    #[error("ephemeral models form a cycle: {}", .0.join(" -> "))]
    EphemeralCycle(Vec<String>),
    /// Rendering queries a relation this run has not built yet; render again once it is.
    #[error("{}: {node}: {reason}", .path.display())]
    Deferred {
        path: PathBuf,
        node: String,
        reason: String,
    },
}

/// The name an ephemeral model's CTE goes by.
pub fn ephemeral_cte_name(name: &str) -> String {
    format!("{EPHEMERAL_PREFIX}{name}")
}

/// Renders node `unique_id`'s SQL for execution: models and singular tests from their file,
/// generic tests from their test macro; ephemeral models it references injected as CTEs.
pub fn compile(
    project: &Project,
    unique_id: &str,
    ctx: &CompileContext<'_>,
) -> Result<String, CompileError> {
    compile_with(project, unique_id, ctx, &Overrides::default())
}

/// What a unit test changes in its model's render: dbt's `overrides` and the given rows of
/// ephemeral inputs.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `overrides.vars`: vars over the project's.
    pub vars: BTreeMap<String, Json>,
    /// `overrides.env_vars`: what `env_var` answers.
    pub env_vars: BTreeMap<String, String>,
    /// `overrides.macros`: what a call of these macros (`name` or `package.name`) returns.
    pub macros: BTreeMap<String, Json>,
    /// Ephemeral models' CTE bodies in place of their SQL, by unique id.
    pub ephemerals: BTreeMap<String, String>,
}

/// [`compile`] with `overrides` (a unit test's).
pub fn compile_with(
    project: &Project,
    unique_id: &str,
    ctx: &CompileContext<'_>,
    overrides: &Overrides,
) -> Result<String, CompileError> {
    compile_root(project, unique_id, ctx, overrides, None)
}

/// [`compile`] for one batch of a microbatch model: its `model.batch` is `batch` (dbt's
/// `id`, `event_time_start`, `event_time_end`).
pub fn compile_batch(
    project: &Project,
    unique_id: &str,
    ctx: &CompileContext<'_>,
    batch: Value,
) -> Result<String, CompileError> {
    compile_root(project, unique_id, ctx, &Overrides::default(), Some(batch))
}

fn compile_root(
    project: &Project,
    unique_id: &str,
    ctx: &CompileContext<'_>,
    overrides: &Overrides,
    batch: Option<Value>,
) -> Result<String, CompileError> {
    let node = project
        .nodes
        .get(unique_id)
        .ok_or_else(|| CompileError::UnknownNode(unique_id.to_string()))?;
    if node.config.materialized == Materialized::Seed {
        return Err(CompileError::NotCompilable(unique_id.to_string()));
    }
    let mut compiler = Compiler {
        project,
        ctx,
        overrides,
        compiled: HashMap::new(),
        order: Vec::new(),
        visiting: vec![unique_id.to_string()],
        batch: batch.map(|b| (unique_id.to_string(), b)),
    };
    let (sql, ephemerals) = compiler.render(node)?;
    for ephemeral in ephemerals {
        compiler.add_cte(&ephemeral)?;
    }
    let ctes: Vec<(String, String)> = compiler
        .order
        .iter()
        .map(|id| {
            (
                ephemeral_cte_name(&project.nodes[id].name),
                compiler.compiled[id].clone(),
            )
        })
        .collect();
    Ok(inject_ctes(&sql, &ctes))
}

/// Renders `text` (a `pre_hook` or `post_hook`) in node `unique_id`'s context: `this` is its
/// relation, `ref`s and `source`s resolve as in its SQL.
pub fn render_hook(
    project: &Project,
    unique_id: &str,
    text: &str,
    ctx: &CompileContext<'_>,
) -> Result<String, CompileError> {
    let node = project
        .nodes
        .get(unique_id)
        .ok_or_else(|| CompileError::UnknownNode(unique_id.to_string()))?;
    let overrides = Overrides::default();
    let compiler = Compiler {
        project,
        ctx,
        overrides: &overrides,
        compiled: HashMap::new(),
        order: Vec::new(),
        visiting: Vec::new(),
        batch: None,
    };
    let frame = compiler.frame(node);
    render_str(
        &project.env,
        &template_name(&node.path),
        &mutable_literals(text),
        frame,
    )
    .map_err(|f| compile_error(node, f))
}

/// Renders `text` (an `on-run-start` or `on-run-end` hook, named `what`) in the project's
/// context: `target`, `var`, macros and compile-time queries, no `this`; and `run` (an
/// `on-run-end`'s `results`, `schemas`, ...).
pub fn render_project_hook(
    project: &Project,
    what: &str,
    text: &str,
    ctx: &CompileContext<'_>,
    run: &serde_json::Map<String, Json>,
) -> Result<String, CompileError> {
    let template_ctx = merge_maps([
        Value::from_serialize(run),
        template_context(
            &project.name,
            &ctx.target,
            true,
            Value::from(()),
            Value::from(()),
        ),
    ]);
    let frame = Rc::new(
        Frame::new(
            Mode::Compile(Resolved::default()),
            template_ctx,
            false,
            serde_json::Map::new(),
        )
        .with_warehouse(ctx.warehouse.clone()),
    );
    render_str(&project.env, what, &mutable_literals(text), frame).map_err(|f| {
        RenderError::Template {
            path: PathBuf::from(crate::project::files::PROJECT_FILE),
            line: f.line,
            node: what.to_string(),
            phase: Phase::Compile,
            message: f.message,
        }
        .into()
    })
}

struct Compiler<'p, 'c> {
    project: &'p Project,
    ctx: &'c CompileContext<'c>,
    overrides: &'p Overrides,
    /// Compiled ephemeral models (without their own CTEs, which are hoisted).
    compiled: HashMap<String, String>,
    /// Ephemeral models in dependency order.
    order: Vec<String>,
    visiting: Vec<String>,
    /// The node being built batch by batch, and its `model.batch`.
    batch: Option<(String, Value)>,
}

impl Compiler<'_, '_> {
    fn add_cte(&mut self, unique_id: &str) -> Result<(), CompileError> {
        if self.compiled.contains_key(unique_id) {
            return Ok(());
        }
        if let Some(at) = self.visiting.iter().position(|v| v == unique_id) {
            let mut cycle = self.visiting[at..].to_vec();
            cycle.push(unique_id.to_string());
            return Err(CompileError::EphemeralCycle(cycle));
        }
        let node = self
            .project
            .nodes
            .get(unique_id)
            .ok_or_else(|| CompileError::UnknownNode(unique_id.to_string()))?;
        // A unit test's given rows stand for the model: its SQL is not rendered.
        if let Some(given) = self.overrides.ephemerals.get(unique_id) {
            self.compiled.insert(unique_id.to_string(), given.clone());
            self.order.push(unique_id.to_string());
            return Ok(());
        }
        self.visiting.push(unique_id.to_string());
        let (sql, ephemerals) = self.render(node)?;
        for ephemeral in ephemerals {
            self.add_cte(&ephemeral)?;
        }
        self.visiting.pop();
        self.compiled.insert(unique_id.to_string(), sql);
        self.order.push(unique_id.to_string());
        Ok(())
    }

    fn relation(&self, node: &Node) -> Value {
        if node.config.materialized == Materialized::Ephemeral {
            let cte = ephemeral_cte_name(&node.name);
            JinjaRelation {
                rendered: cte.clone(),
                database: None,
                schema: None,
                identifier: cte,
            }
            .value()
        } else {
            JinjaRelation {
                rendered: (self.ctx.relation)(node),
                database: None,
                schema: Some(node.config.schema.clone()),
                identifier: node.relation_name().to_string(),
            }
            .value()
        }
    }

    /// The frame a node renders in: its refs and sources resolved, `this` its relation.
    fn frame(&self, node: &Node) -> Rc<Frame> {
        let project = self.project;
        let mut resolved = Resolved::default();
        for dep in &node.depends_on {
            if let Some(target) = project.nodes.get(dep) {
                resolved.refs.push(RefTarget {
                    unique_id: target.unique_id.clone(),
                    package: target.package.clone(),
                    name: target.name.clone(),
                    relation: self.relation(target),
                    ephemeral: target.config.materialized == Materialized::Ephemeral,
                });
            }
        }
        for key in &node.sources {
            if let Some(table) = project.sources.get(key) {
                let (_, source, name) = key.clone();
                resolved
                    .sources
                    .insert((source, name), source_relation(table, self.ctx));
            }
        }
        let is_incremental =
            self.ctx.is_incremental && node.config.materialized == Materialized::Incremental;
        let template_ctx = template_context(
            &project.name,
            &self.ctx.target,
            true,
            self.relation(node),
            self.model(node),
        );
        Rc::new(
            Frame::new(
                Mode::Compile(resolved),
                template_ctx,
                is_incremental,
                node.config.to_json(),
            )
            .in_package(&node.package)
            .with_warehouse(self.ctx.warehouse.clone())
            .with_vars(self.overrides.vars.clone())
            .with_overrides(
                self.overrides.env_vars.clone(),
                self.overrides.macros.clone(),
            ),
        )
    }

    /// `model` as the node's templates see it: with dbt's `model.batch`, none outside a batch.
    fn model(&self, node: &Node) -> Value {
        let batch = match &self.batch {
            Some((id, batch)) if *id == node.unique_id => batch.clone(),
            _ => Value::from(()),
        };
        model_with_batch(node.model_json(), batch)
    }

    /// Renders one node; returns its SQL and the ephemeral models it referenced.
    fn render(&self, node: &Node) -> Result<(String, Vec<String>), CompileError> {
        let frame = self.frame(node);
        let sql = match &node.test {
            Some(info) => match &info.kind {
                TestKind::Generic {
                    name,
                    package,
                    column,
                    args,
                } => self.generic_test(
                    node,
                    info.attached_node.as_deref(),
                    (package, name),
                    column.as_deref(),
                    args,
                    frame.clone(),
                )?,
                TestKind::Singular => self.template(node, frame.clone())?,
                TestKind::Unit(_) => {
                    return Err(CompileError::UnitTest(node.unique_id.clone()));
                }
            },
            None => self.template(node, frame.clone())?,
        };
        let ephemerals = frame.ephemerals.take();
        Ok((sql, ephemerals))
    }

    fn template(&self, node: &Node, frame: Rc<Frame>) -> Result<String, CompileError> {
        let env = &self.project.env;
        let name = template_name(&node.path);
        // A snapshot is one block of its file (or a YAML entry), and an inline query (`strata
        // show --inline`) has no file: each is its own text.
        let rendered = if node.resource == Resource::Snapshot || env.get_template(&name).is_err() {
            render_str(env, &name, &mutable_literals(&node.raw_code), frame)
        } else {
            render_template(env, &name, frame)
        };
        rendered.map_err(|f| compile_error(node, f))
    }

    fn generic_test(
        &self,
        node: &Node,
        attached: Option<&str>,
        (package, test): (&str, &str),
        column: Option<&str>,
        args: &std::collections::BTreeMap<String, Json>,
        frame: Rc<Frame>,
    ) -> Result<String, CompileError> {
        let project = self.project;
        let env = &project.env;
        let macro_name = format!("test_{test}");
        let Some(target) = project.shared.macros.get(package, &macro_name) else {
            return Err(RenderError::Template {
                path: node.path.clone(),
                line: None,
                node: node.unique_id.clone(),
                phase: Phase::Compile,
                message: format!("generic test '{test}' is not defined"),
            }
            .into());
        };
        // dbt's `get_where_subquery(ref(...))`.
        let model_expr = match attached.and_then(|id| project.source_by_id(id)) {
            Some(source) => format!(
                "source({}, {})",
                quote(&source.source_name),
                quote(&source.name)
            ),
            None => {
                let tested = attached
                    .and_then(|id| project.nodes.get(id))
                    .ok_or_else(|| RenderError::Template {
                        path: node.path.clone(),
                        line: None,
                        node: node.unique_id.clone(),
                        phase: Phase::Compile,
                        message: "the test is not attached to a model, seed or source".into(),
                    })?;
                format!("ref({}, {})", quote(&tested.package), quote(&tested.name))
            }
        };
        let where_clause = node.config.where_clause.clone();
        let template_ctx = frame.ctx.clone();
        let sql = run_in_frame(frame, || {
            let relation = env
                .compile_expression_owned(model_expr)?
                .eval(&template_ctx)?;
            let model = match &where_clause {
                Some(clause) => {
                    let clause = if is_template(clause) {
                        env.render_str(clause, &template_ctx)?
                    } else {
                        clause.clone()
                    };
                    Value::from(format!(
                        "(select * from {relation} where {clause}) dbt_subquery"
                    ))
                }
                None => relation,
            };
            let mut kwargs: Vec<(String, Value)> = vec![("model".into(), model)];
            if let Some(column) = column {
                kwargs.push(("column_name".into(), Value::from(column)));
            }
            for (key, arg) in args {
                kwargs.push((key.clone(), eval_test_arg(env, &template_ctx, arg)?));
            }
            let kwargs: Kwargs = kwargs.into_iter().collect();
            call_macro(env, target, &[Value::from(kwargs)])
        })
        .map_err(|f| compile_error(node, f))?;
        Ok(sql.to_string().trim().to_string())
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn source_relation(table: &SourceTable, ctx: &CompileContext<'_>) -> Value {
    JinjaRelation {
        rendered: (ctx.source_relation)(table),
        database: table.database.clone(),
        schema: Some(table.schema.clone()),
        identifier: table.identifier.clone(),
    }
    .value()
}

fn compile_error(node: &Node, failure: RenderFailure) -> CompileError {
    let path = failure
        .template
        .as_deref()
        .map_or_else(|| node.path.clone(), PathBuf::from);
    let node_id = node.unique_id.clone();
    match failure.failure {
        Some(FrameFailure::MissingVar(var)) => RenderError::MissingVar {
            path,
            node: node_id,
            var,
        }
        .into(),
        Some(FrameFailure::MissingEnvVar(var)) => RenderError::MissingEnvVar {
            path,
            node: node_id,
            var,
        }
        .into(),
        Some(FrameFailure::UndeclaredRef(name)) => CompileError::UndeclaredRef {
            path,
            node: node_id,
            name,
        },
        Some(FrameFailure::UndeclaredSource(source_name, table)) => {
            CompileError::UndeclaredSource {
                path,
                node: node_id,
                source_name,
                table,
            }
        }
        Some(FrameFailure::Deferred(reason)) => CompileError::Deferred {
            path,
            node: node_id,
            reason,
        },
        Some(FrameFailure::Raised(message) | FrameFailure::Unsupported(message)) => {
            CompileError::Raised {
                path,
                line: failure.line,
                node: node_id,
                message,
            }
        }
        Some(FrameFailure::UnknownDoc(_)) | None => RenderError::Template {
            path,
            line: failure.line,
            node: node_id,
            phase: Phase::Compile,
            message: failure.message,
        }
        .into(),
    }
}

/// Puts `ctes` (name, compiled SQL) at the top of `sql`, merging into its `WITH` if it has
/// one, as dbt does for ephemeral models.
pub(crate) fn inject_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let list = ctes
        .iter()
        .map(|(name, body)| {
            let body = body.trim();
            let body = body.strip_suffix(';').unwrap_or(body).trim_end();
            format!("{name} AS (\n{body}\n)")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let start = skip_space_and_comments(sql, 0);
    match keyword_end(sql, start, "with") {
        Some(after_with) => {
            let next = skip_space_and_comments(sql, after_with);
            let insert = keyword_end(sql, next, "recursive").unwrap_or(after_with);
            format!("{} {list},{}", &sql[..insert], &sql[insert..])
        }
        None => format!("{}WITH {list}\n{}", &sql[..start], &sql[start..]),
    }
}

fn skip_space_and_comments(sql: &str, mut at: usize) -> usize {
    loop {
        let rest = &sql[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            at += trimmed.find('\n').unwrap_or(trimmed.len());
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            at += comment.find("*/").map_or(trimmed.len(), |i| i + 4);
        } else {
            return at;
        }
    }
}

fn keyword_end(sql: &str, at: usize, keyword: &str) -> Option<usize> {
    let rest = sql.get(at..)?;
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    match rest[keyword.len()..].chars().next() {
        Some(c) if c.is_alphanumeric() || c == '_' => None,
        _ => Some(at + keyword.len()),
    }
}

/// The ephemeral models node `unique_id` inlines as CTEs when compiled, dependencies first.
pub fn ephemeral_dependencies(project: &Project, unique_id: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    fn visit(project: &Project, id: &str, seen: &mut HashSet<String>, order: &mut Vec<String>) {
        let Some(node) = project.nodes.get(id) else {
            return;
        };
        for dep in &node.depends_on {
            if let Some(target) = project.nodes.get(dep)
                && target.config.materialized == Materialized::Ephemeral
                && seen.insert(dep.clone())
            {
                visit(project, dep, seen, order);
                order.push(dep.clone());
            }
        }
    }
    visit(project, unique_id, &mut seen, &mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctes() -> Vec<(String, String)> {
        vec![
            ("__dbt__cte__a".into(), "select 1 as x\n".into()),
            (
                "__dbt__cte__b".into(),
                "select x from __dbt__cte__a;".into(),
            ),
        ]
    }

    #[test]
    fn ctes_go_first() {
        assert_eq!(
            inject_ctes("\nselect * from __dbt__cte__b", &ctes()),
            "\nWITH __dbt__cte__a AS (\nselect 1 as x\n), __dbt__cte__b AS (\nselect x from __dbt__cte__a\n)\nselect * from __dbt__cte__b"
        );
        assert_eq!(inject_ctes("select 1", &[]), "select 1");
    }

    #[test]
    fn ctes_merge_into_an_existing_with() {
        assert_eq!(
            inject_ctes(
                "-- leading comment\nWith orders as (select 1)\nselect * from orders",
                &ctes()[..1]
            ),
            "-- leading comment\nWith __dbt__cte__a AS (\nselect 1 as x\n), orders as (select 1)\nselect * from orders"
        );
        assert_eq!(
            inject_ctes(
                "/* c */ with recursive r as (select 1) select * from r",
                &ctes()[..1]
            ),
            "/* c */ with recursive __dbt__cte__a AS (\nselect 1 as x\n), r as (select 1) select * from r"
        );
        // `without` is not `with`.
        assert!(inject_ctes("withheld", &ctes()[..1]).starts_with("WITH __dbt__cte__a"));
    }
}
