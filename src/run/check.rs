//! `strata compile`: every selected node rendered and planned by DataFusion against its
//! upstream schemas (bronze's inferred ones, built tables, and the planned output of upstream
//! models that are not built yet), executing nothing, so a bad column, type, ref or model
//! config (`run::config_check`) is reported before any model runs. The compiled SQL is written
//! under `target/compiled/` as it is planned, so an error's line can be read there and traced
//! to the model's own line.
//!
//! A node whose rendering queries a relation the run builds (`run_query` over a model) cannot
//! be rendered before that relation is built: it is deferred, with its descendants, and
//! checked when it runs; the report says which and why.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::empty::EmptyTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use parking_lot::RwLock;

use super::config_check;
use super::contract;
use super::execute::{compile_node, contract_schema};
use super::introspect::{Planned, SessionWarehouse};
use super::materialize::seed_frame;
use super::nodes::{column_types, relation_of};
use super::snapshot;
use crate::compile::CompileError;
use crate::compile::origin::{Origin, origin};
use crate::compile::output::write_compiled;
use crate::lake::{Lake, delta, layout};
use crate::project::{Materialized, Node, Project, Resource};
use crate::session::CATALOG;
use crate::sql::position;

/// A node that did not, with the file it came from.
#[derive(Debug, Clone)]
pub struct CheckError {
    pub id: String,
    pub path: String,
    pub message: String,
}

/// A node checked only when it runs, and why.
#[derive(Debug, Clone)]
pub struct Deferred {
    pub id: String,
    pub reason: String,
}

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// How many nodes compiled and planned.
    pub checked: usize,
    pub errors: Vec<CheckError>,
    pub deferred: Vec<Deferred>,
}

/// Plans `ids` (in dependency order) in `ctx`, whose `strata` catalog this overlays with the
/// planned schemas. Keeps going after an error so every broken node is reported at once;
/// nodes downstream of a broken one are reported as such.
pub async fn check(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    ids: &[String],
) -> CheckReport {
    let planned: Planned = Arc::new(RwLock::new(HashMap::new()));
    if let Some(inner) = ctx.catalog(CATALOG) {
        ctx.register_catalog(
            CATALOG,
            Arc::new(Overlay {
                inner,
                planned: Arc::clone(&planned),
            }),
        );
    }
    let built: HashSet<(String, String)> = ids
        .iter()
        .map(|id| &project.nodes[id])
        .filter(|n| n.resource != Resource::Test)
        .map(|n| {
            let r = relation_of(n);
            (r.schema, r.name)
        })
        .collect();
    let warehouse: Arc<dyn crate::jinja::Warehouse> = Arc::new(SessionWarehouse::checking(
        ctx.clone(),
        built,
        Arc::clone(&planned),
    ));
    let mut checked = 0;
    let mut errors: Vec<CheckError> = Vec::new();
    let mut deferred: Vec<Deferred> = Vec::new();
    for id in ids {
        let node = &project.nodes[id];
        // A unit test plans its model against its own given rows when it runs.
        if node.unit_test().is_some() {
            continue;
        }
        if let Some(parent) = node
            .depends_on
            .iter()
            .find(|d| deferred.iter().any(|e| &e.id == *d))
        {
            deferred.push(Deferred {
                id: id.clone(),
                reason: format!("it depends on {parent}, which is checked when it is built"),
            });
            continue;
        }
        let broken_parent = node
            .depends_on
            .iter()
            .find(|d| errors.iter().any(|e| &e.id == *d));
        if let Some(parent) = broken_parent {
            errors.push(CheckError {
                id: id.clone(),
                path: node.path.display().to_string(),
                message: format!("depends on {parent}, which does not compile"),
            });
            continue;
        }
        let incremental = builds_incrementally(lake, node).await;
        let planned_node = match node.resource {
            Resource::Seed => plan_seed(ctx, project, node).await,
            Resource::Snapshot => plan_snapshot(ctx, project, node, &warehouse).await,
            _ => plan(ctx, project, node, incremental, &warehouse)
                .await
                .map(|(_, schema)| schema),
        };
        let planned_node = match planned_node {
            Ok(schema) if node.resource == Resource::Model => config_check::check(node, &schema)
                .map(|()| schema)
                .map_err(|e| Failed::Error(e.to_string())),
            other => other,
        };
        match planned_node {
            Ok(schema) => {
                if node.resource != Resource::Test {
                    let relation = relation_of(node);
                    planned
                        .write()
                        .insert((relation.schema, relation.name), Arc::clone(&schema));
                }
                checked += 1;
            }
            Err(Failed::Deferred(reason)) => deferred.push(Deferred {
                id: id.clone(),
                reason,
            }),
            Err(Failed::Error(message)) => errors.push(CheckError {
                id: id.clone(),
                path: node.path.display().to_string(),
                message,
            }),
        }
    }
    CheckReport {
        checked,
        errors,
        deferred,
    }
}

/// Whether `node` is an incremental model whose table exists: it compiles with
/// `is_incremental()` true.
pub(crate) async fn builds_incrementally(lake: &Lake, node: &Node) -> bool {
    node.config.materialized == Materialized::Incremental && {
        let relation = relation_of(node);
        let path = layout::model_table(&relation.schema, &relation.name);
        matches!(delta::open(lake, &path).await, Ok(Some(_)))
    }
}

/// Why a node did not plan.
enum Failed {
    Deferred(String),
    Error(String),
}

impl From<String> for Failed {
    fn from(message: String) -> Self {
        Failed::Error(message)
    }
}

/// Renders the node, writes its compiled SQL under `target/compiled/`, and plans it; the SQL
/// and the schema it plans to.
async fn plan(
    ctx: &SessionContext,
    project: &Project,
    node: &Node,
    incremental: bool,
    warehouse: &Arc<dyn crate::jinja::Warehouse>,
) -> Result<(String, SchemaRef), Failed> {
    let sql = match compile_node(project, node, incremental, Some(Arc::clone(warehouse))) {
        Ok(sql) => sql,
        Err(CompileError::Deferred { reason, .. }) => return Err(Failed::Deferred(reason)),
        Err(e) => return Err(Failed::Error(e.to_string())),
    };
    let compiled = write_compiled(project, node, &sql).map_err(|e| e.to_string())?;
    let plan = ctx
        .state()
        .create_logical_plan(&sql)
        .await
        .map_err(|e| located(node, &sql, &compiled, &e))?;
    if node.contract_enforced() {
        let schema = contract_schema(ctx, &sql)
            .await
            .map_err(|e| located(node, &sql, &compiled, &e))?;
        contract::check(node, &schema).map_err(|e| e.to_string())?;
        // Downstream models read the columns in the contract's order.
        let guarded = contract::guarded_sql(node, &sql, false);
        let plan = ctx
            .state()
            .create_logical_plan(&guarded)
            .await
            .map_err(|e| e.to_string())?;
        return Ok((sql, Arc::new(plan.schema().as_arrow().clone())));
    }
    let schema = Arc::new(plan.schema().as_arrow().clone());
    Ok((sql, schema))
}

/// A snapshot's config, its query, and the table it keeps (the query's columns and the
/// snapshot's own).
async fn plan_snapshot(
    ctx: &SessionContext,
    project: &Project,
    node: &Node,
    warehouse: &Arc<dyn crate::jinja::Warehouse>,
) -> Result<SchemaRef, Failed> {
    let spec = snapshot::Spec::of(node).map_err(|e| e.to_string())?;
    let (sql, _) = plan(ctx, project, node, false, warehouse).await?;
    let table = spec.first_build_sql(&sql, &snapshot::time_literal(chrono::Utc::now()));
    let plan = ctx
        .state()
        .create_logical_plan(&table)
        .await
        .map_err(|e| format!("{}: {}: {e}", node.path.display(), node.unique_id))?;
    Ok(Arc::new(plan.schema().as_arrow().clone()))
}

/// The error, prefixed with where it points: the line of the compiled SQL file, and the line
/// of the node's own file that text was written on, or the Jinja it was expanded from.
pub(crate) fn located(node: &Node, sql: &str, compiled: &Path, e: &DataFusionError) -> String {
    let Some(at) = position::of(e) else {
        return e.to_string();
    };
    let source = node.path.display();
    let written = match origin(&node.raw_code, sql, at.line, at.column) {
        Origin::Source { line, column } => format!("{source} line {line}, column {column}"),
        Origin::Expanded { line: Some(line) } => {
            format!("in SQL expanded from the Jinja on {source} line {line}")
        }
        Origin::Expanded { line: None } => {
            format!("in SQL expanded from a macro or an ephemeral model, not written in {source}")
        }
    };
    format!(
        "{} line {}, column {} ({written}): {e}",
        compiled.display(),
        at.line,
        at.column
    )
}

/// A seed's schema, as loading it will infer it.
async fn plan_seed(
    ctx: &SessionContext,
    project: &Project,
    node: &Node,
) -> Result<SchemaRef, Failed> {
    let path = project.root.join(&node.path);
    let frame = seed_frame(ctx, &path, &column_types(node))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(frame.schema().as_arrow().clone()))
}

#[derive(Debug)]
struct Overlay {
    inner: Arc<dyn CatalogProvider>,
    planned: Planned,
}

impl CatalogProvider for Overlay {
    fn schema_names(&self) -> Vec<String> {
        self.inner.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let inner = self.inner.schema(name)?;
        Some(Arc::new(OverlaySchema {
            name: name.to_string(),
            inner,
            planned: Arc::clone(&self.planned),
        }))
    }
}

#[derive(Debug)]
struct OverlaySchema {
    name: String,
    inner: Arc<dyn SchemaProvider>,
    planned: Planned,
}

#[async_trait]
impl SchemaProvider for OverlaySchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let planned = self
            .planned
            .read()
            .get(&(self.name.clone(), name.to_string()))
            .cloned();
        match planned {
            Some(schema) => Ok(Some(Arc::new(EmptyTable::new(schema)))),
            None => self.inner.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.planned
            .read()
            .contains_key(&(self.name.clone(), name.to_string()))
            || self.inner.table_exist(name)
    }
}
