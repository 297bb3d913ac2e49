//! `strata compile`: every selected node rendered and planned by DataFusion against its
//! upstream schemas (bronze's inferred ones, built tables, and the planned output of upstream
//! models that are not built yet), executing nothing, so a bad column, type or ref is reported
//! before any model runs.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::empty::EmptyTable;
use datafusion::prelude::{CsvReadOptions, SessionContext};
use parking_lot::RwLock;

use super::execute::compile_node;
use super::nodes::relation_of;
use crate::lake::{Lake, delta, layout};
use crate::project::{Materialized, Project, Resource};
use crate::session::CATALOG;

/// A node that compiled and planned (seeds: their inferred schema, no SQL).
#[derive(Debug, Clone)]
pub struct Checked {
    pub id: String,
    pub sql: String,
    pub schema: SchemaRef,
}

/// A node that did not, with the file it came from.
#[derive(Debug, Clone)]
pub struct CheckError {
    pub id: String,
    pub path: String,
    pub message: String,
}

/// Plans `ids` (in dependency order) in `ctx`, whose `strata` catalog this overlays with the
/// planned schemas. Keeps going after an error so every broken node is reported at once;
/// nodes downstream of a broken one are reported as such.
pub async fn check(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    ids: &[String],
) -> (Vec<Checked>, Vec<CheckError>) {
    let planned = Arc::new(RwLock::new(HashMap::new()));
    if let Some(inner) = ctx.catalog(CATALOG) {
        ctx.register_catalog(
            CATALOG,
            Arc::new(Overlay {
                inner,
                planned: Arc::clone(&planned),
            }),
        );
    }
    let mut checked = Vec::new();
    let mut errors: Vec<CheckError> = Vec::new();
    for id in ids {
        let node = &project.nodes[id];
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
        let incremental = node.config.materialized == Materialized::Incremental && {
            let relation = relation_of(node);
            let path = layout::model_table(&relation.schema, &relation.name);
            matches!(delta::open(lake, &path).await, Ok(Some(_)))
        };
        let planned_node = match node.resource {
            Resource::Seed => plan_seed(ctx, project, node).await,
            _ => plan(ctx, project, node, incremental).await,
        };
        match planned_node {
            Ok((sql, schema)) => {
                if node.resource != Resource::Test {
                    let relation = relation_of(node);
                    planned
                        .write()
                        .insert((relation.schema, relation.name), Arc::clone(&schema));
                }
                checked.push(Checked {
                    id: id.clone(),
                    sql,
                    schema,
                });
            }
            Err(message) => errors.push(CheckError {
                id: id.clone(),
                path: node.path.display().to_string(),
                message,
            }),
        }
    }
    (checked, errors)
}

async fn plan(
    ctx: &SessionContext,
    project: &Project,
    node: &crate::project::Node,
    incremental: bool,
) -> Result<(String, SchemaRef), String> {
    let sql = compile_node(project, node, incremental)?;
    let plan = ctx.state().create_logical_plan(&sql).await.map_err(|e| {
        match e.diagnostic().and_then(|d| d.span) {
            Some(span) if span.start.line > 0 => format!(
                "line {}, column {} of the compiled SQL: {e}",
                span.start.line, span.start.column
            ),
            _ => e.to_string(),
        }
    })?;
    Ok((sql, Arc::new(plan.schema().as_arrow().clone())))
}

/// A seed's schema, as loading it will infer it.
async fn plan_seed(
    ctx: &SessionContext,
    project: &Project,
    node: &crate::project::Node,
) -> Result<(String, SchemaRef), String> {
    let path = project.root.join(&node.path);
    let frame = ctx
        .read_csv(
            path.to_string_lossy().as_ref(),
            CsvReadOptions::new().has_header(true),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok((String::new(), Arc::new(frame.schema().as_arrow().clone())))
}

/// Planned-but-unbuilt models in front of the lake's catalog.
type Planned = Arc<RwLock<HashMap<(String, String), SchemaRef>>>;

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
