//! `catalog.json` (dbt's catalog schema v1), written by `docs generate`: for each built model,
//! seed and snapshot and each source, its columns (name, type, position) as the lake's
//! relation has them, and its row count where the Delta log gives it (views and raw files
//! have none). A node not built in the lake is left out, as dbt leaves out what its warehouse
//! lacks.

use datafusion::common::TableReference;
use datafusion::datasource::TableType;
use datafusion::prelude::SessionContext;
use serde_json::{Map as JsonMap, Value as Json, json};

use super::{ArtifactError, metadata, write};
use crate::lake::{Lake, delta, layout};
use crate::project::{Materialized, Project, Resource};
use crate::run::introspect::sql_type;
use crate::run::materialize::Relation;
use crate::run::nodes::{relation_of, source_sql};
use crate::session::CATALOG;

pub const FILE: &str = "catalog.json";

/// The catalog of the nodes `ids` (models, seeds and snapshots among them) and of every source.
pub async fn catalog(ctx: &SessionContext, lake: &Lake, project: &Project, ids: &[String]) -> Json {
    let mut nodes = JsonMap::new();
    for node in ids.iter().filter_map(|id| project.nodes.get(id)) {
        let built = matches!(
            node.resource,
            Resource::Model | Resource::Seed | Resource::Snapshot
        ) && node.config.materialized != Materialized::Ephemeral;
        if !built {
            continue;
        }
        let relation = relation_of(node);
        let table = TableReference::partial(relation.schema.as_str(), relation.name.as_str());
        let Ok(provider) = ctx.table_provider(table).await else {
            continue;
        };
        let kind = match provider.table_type() {
            TableType::View => "VIEW",
            _ => "BASE TABLE",
        };
        let rows = match provider.table_type() {
            TableType::View => None,
            _ => delta_rows(lake, &relation).await,
        };
        let entry = entry(
            &node.unique_id,
            json!({"type": kind, "schema": relation.schema, "name": relation.name, "database": CATALOG, "comment": null, "owner": null}),
            provider.schema().fields(),
            rows,
        );
        nodes.insert(node.unique_id.clone(), entry);
    }
    let mut sources = JsonMap::new();
    for source in project.sources.values() {
        let Ok(frame) = ctx
            .sql(&format!("select * from {}", source_sql(source)))
            .await
        else {
            continue;
        };
        let entry = entry(
            &source.unique_id,
            json!({"type": "BASE TABLE", "schema": source.schema, "name": source.identifier, "database": source.database, "comment": null, "owner": null}),
            frame.schema().as_arrow().fields(),
            None,
        );
        sources.insert(source.unique_id.clone(), entry);
    }
    json!({
        "metadata": metadata("catalog/v1", &project.target.invocation),
        "nodes": nodes,
        "sources": sources,
        "errors": null,
    })
}

/// A Delta table's row count, from its log's per-file statistics: none when a file lacks them
/// or has deleted rows (a deletion vector), as counting would then mean reading the data.
async fn delta_rows(lake: &Lake, relation: &Relation) -> Option<usize> {
    let table = delta::open(lake, &layout::model_table(&relation.schema, &relation.name))
        .await
        .ok()??;
    let snapshot = table.snapshot().ok()?;
    snapshot
        .log_data()
        .iter()
        .map(|file| {
            file.deletion_vector_descriptor()
                .is_none()
                .then(|| file.num_records())
                .flatten()
        })
        .sum()
}

/// One relation's entry: its metadata, columns in order, and stats.
fn entry(
    unique_id: &str,
    metadata: Json,
    fields: &arrow::datatypes::Fields,
    rows: Option<usize>,
) -> Json {
    let columns: JsonMap<String, Json> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let column = json!({"type": sql_type(f.data_type()), "index": i + 1, "name": f.name(), "comment": null});
            (f.name().clone(), column)
        })
        .collect();
    let mut stats = JsonMap::new();
    stats.insert(
        "has_stats".into(),
        json!({"id": "has_stats", "label": "Has Stats?", "value": rows.is_some(), "include": false, "description": "Indicates whether there are statistics for this table"}),
    );
    if let Some(rows) = rows {
        stats.insert(
            "num_rows".into(),
            json!({"id": "num_rows", "label": "# Rows", "value": rows, "include": true, "description": "Number of rows in the table, from its Delta log"}),
        );
    }
    json!({"metadata": metadata, "columns": columns, "stats": stats, "unique_id": unique_id})
}

/// Writes the catalog of `ids`.
pub async fn write_catalog(
    ctx: &SessionContext,
    lake: &Lake,
    project: &Project,
    ids: &[String],
) -> Result<std::path::PathBuf, ArtifactError> {
    write(project, FILE, &catalog(ctx, lake, project, ids).await)
}
