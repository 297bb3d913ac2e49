//! `strata show` (dbt's `show`): a model's rows, or an inline query's, computed from what is
//! built in the lake and previewed without writing anything there. The model is compiled as
//! `compile` does (its SQL under `target/compiled/`, ephemeral models inlined as CTEs), then
//! run with a limit. A relation it reads that no run has built yet is an error naming the
//! model to build, as dbt fails on a missing relation.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::TableReference;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use serde_json::Map as JsonMap;

use super::check::{builds_incrementally, located};
use super::execute::compile_node;
use super::introspect::SessionWarehouse;
use super::nodes::{graph_of, relation_of};
use crate::compile::CompileError;
use crate::compile::output::{OutputError, write_compiled};
use crate::lake::Lake;
use crate::project::node_config::build_node_config;
use crate::project::{Materialized, Node, Project, Resource};

/// dbt's name for the node of `--inline`.
pub const INLINE: &str = "inline_query";

/// Why a preview failed, naming the node.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error(transparent)]
    Select(#[from] super::RunError),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(
        "{}: {node} reads {relation}, which is not built: run {parent} first (`strata run -s {name}`)",
        .path.display()
    )]
    NotBuilt {
        path: PathBuf,
        node: String,
        relation: String,
        parent: String,
        name: String,
    },
    #[error("{node}: {message}")]
    Query { node: String, message: String },
}

/// A node's first rows.
#[derive(Debug)]
pub struct Preview {
    /// The node's name (`inline_query` for `--inline`).
    pub node: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// The models (ephemeral ones too) `select` and `exclude` pick, in dependency order, and the
/// selectors that matched nothing.
pub fn selected_models(
    project: &Project,
    select: &[String],
    exclude: &[String],
) -> Result<(Vec<String>, Vec<String>), ShowError> {
    let graph = graph_of(project).map_err(super::RunError::from)?;
    let selection = graph
        .select(select, exclude)
        .map_err(super::RunError::from)?;
    let ids = graph
        .topological()
        .into_iter()
        .filter(|id| selection.ids.contains(*id))
        .filter(|id| {
            project
                .nodes
                .get(*id)
                .is_some_and(|n| n.resource == Resource::Model)
        })
        .map(str::to_string)
        .collect();
    Ok((ids, selection.unmatched))
}

/// Adds `sql` to the project as dbt's `inline_query` node, which may `ref` any model, seed or
/// snapshot and read any source; returns its unique id.
pub fn add_inline(project: &mut Project, sql: &str) -> String {
    let (mut config, _) =
        build_node_config(Resource::Model, &JsonMap::new()).expect("an empty config is valid");
    config.schema = project.target.schema.clone();
    let unique_id = inline_id(project);
    let node = Node {
        unique_id: unique_id.clone(),
        name: INLINE.to_string(),
        resource: Resource::Model,
        package: project.name.clone(),
        path: PathBuf::from(INLINE),
        fqn: vec![project.name.clone(), INLINE.to_string()],
        raw_code: sql.to_string(),
        config,
        depends_on: project
            .nodes
            .values()
            .filter(|n| n.resource != Resource::Test)
            .map(|n| n.unique_id.clone())
            .collect(),
        sources: project.sources.keys().cloned().collect(),
        description: String::new(),
        columns: Vec::new(),
        constraints: Vec::new(),
        patch_path: None,
        test: None,
    };
    project.nodes.insert(unique_id.clone(), node);
    unique_id
}

/// The unique id of dbt's inline node (dbt's resource type `sql_operation`).
fn inline_id(project: &Project) -> String {
    format!("sql_operation.{}.{INLINE}", project.name)
}

/// Node `unique_id`'s first `limit` rows (all without one), computed in `ctx`.
pub async fn preview(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    unique_id: &str,
    limit: Option<usize>,
) -> Result<Preview, ShowError> {
    let node = project
        .nodes
        .get(unique_id)
        .ok_or_else(|| CompileError::UnknownNode(unique_id.to_string()))?;
    let incremental = builds_incrementally(lake, node).await;
    let warehouse = Arc::new(SessionWarehouse::new(ctx.clone()));
    let sql = compile_node(project, node, incremental, Some(warehouse))?;
    // An inline query has no file of its own to write the compiled SQL beside.
    let compiled = match node.unique_id == inline_id(project) {
        true => None,
        false => Some(write_compiled(project, node, &sql)?),
    };
    unbuilt_parent(ctx, project, node, &sql).await?;
    let failed = |e: DataFusionError| ShowError::Query {
        node: node.unique_id.clone(),
        message: match &compiled {
            Some(compiled) => located(node, &sql, compiled, &e),
            None => e.to_string(),
        },
    };
    let plan = ctx
        .state()
        .create_logical_plan(&sql)
        .await
        .map_err(failed)?;
    let frame = ctx.execute_logical_plan(plan).await.map_err(failed)?;
    let frame = frame.limit(0, limit).map_err(failed)?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(failed)?;
    Ok(Preview {
        node: node.name.clone(),
        schema,
        batches,
    })
}

/// The first relation `sql` reads that is a model, seed or snapshot no run has built yet.
async fn unbuilt_parent(
    ctx: &SessionContext,
    project: &Project,
    node: &Node,
    sql: &str,
) -> Result<(), ShowError> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    // SQL that does not parse is reported, located, when it is planned.
    let Ok(statement) = state.sql_to_statement(sql, &dialect) else {
        return Ok(());
    };
    let Ok(references) = state.resolve_table_references(&statement) else {
        return Ok(());
    };
    for reference in references {
        if ctx.table_provider(reference.clone()).await.is_ok() {
            continue;
        }
        let parent = project.nodes.values().find(|n| {
            n.resource != Resource::Test
                && n.config.materialized != Materialized::Ephemeral
                && n.unique_id != node.unique_id
                && names(&reference, n)
        });
        if let Some(parent) = parent {
            return Err(ShowError::NotBuilt {
                path: node.path.clone(),
                node: node.unique_id.clone(),
                relation: reference.to_string(),
                parent: parent.unique_id.clone(),
                name: parent.name.clone(),
            });
        }
    }
    Ok(())
}

/// Whether `reference` is `node`'s relation.
fn names(reference: &TableReference, node: &Node) -> bool {
    let relation = relation_of(node);
    reference.table().eq_ignore_ascii_case(&relation.name)
        && reference
            .schema()
            .is_none_or(|s| s.eq_ignore_ascii_case(&relation.schema))
}
