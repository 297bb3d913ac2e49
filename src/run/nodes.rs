//! The project as the runner sees it: its DAG and how each node's relation is spelled in SQL.

use crate::graph::{Graph, GraphError, GraphNode, NodeKind};
use crate::project::{Node, Project, Resource, SourceTable};
use crate::run::materialize::Relation;
use crate::sql::ident::ident;
use crate::warehouse::catalog::BRONZE;

/// The DAG of `project`: its models, seeds and tests, and the sources they read.
pub fn graph_of(project: &Project) -> Result<Graph, GraphError> {
    Graph::new(graph_nodes(project))
}

/// The nodes of [`graph_of`], for a caller to add to before building the graph.
pub fn graph_nodes(project: &Project) -> Vec<GraphNode> {
    let mut nodes: Vec<GraphNode> = project
        .sources
        .values()
        .map(|s| {
            GraphNode::new(&s.unique_id, &s.name, NodeKind::Source)
                .with_package(&s.package)
                .with_path(&s.path)
                .with_tags(s.tags.clone())
                .with_source_name(&s.source_name)
        })
        .collect();
    for node in project.nodes.values() {
        let kind = match node.resource {
            Resource::Model => NodeKind::Model,
            Resource::Seed => NodeKind::Seed,
            Resource::Test => NodeKind::Test,
            Resource::Snapshot => NodeKind::Snapshot,
        };
        let sources = node
            .sources
            .iter()
            .filter_map(|key| project.sources.get(key).map(|s| s.unique_id.clone()));
        let graph_node = GraphNode::new(&node.unique_id, &node.name, kind)
            .with_package(&node.package)
            .with_path(&node.path)
            .with_tags(node.config.tags.clone())
            .with_materialized(node.config.materialized.as_str())
            .with_depends_on(node.depends_on.iter().cloned().chain(sources));
        nodes.push(match node.unit_test() {
            Some(_) => graph_node.with_unit_test(),
            None => graph_node,
        });
    }
    nodes
}

/// A seed's `column_types` config: column name to SQL type.
pub fn column_types(node: &Node) -> std::collections::BTreeMap<String, String> {
    match node.config.extra.get("column_types") {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => Default::default(),
    }
}

/// Where a model or seed is materialized.
pub fn relation_of(node: &Node) -> Relation {
    Relation {
        schema: node.config.schema.clone(),
        name: node.relation_name().to_string(),
    }
}

/// A relation as SQL text.
pub fn relation_sql(relation: &Relation) -> String {
    format!("{}.{}", ident(&relation.schema), ident(&relation.name))
}

/// A source table as SQL: the bronze table it was landed as (`bronze.<source>_<table>`), a
/// table in another schema, or the raw path of `meta.external_location`.
pub fn source_sql(source: &SourceTable) -> String {
    if let Some(location) = &source.external_location {
        // A call (`read_csv('…', header = true)`, as dbt-duckdb users write it) is read by its
        // function; a path, quoted or not, by its extension.
        let location = location.trim();
        if location.contains('(') {
            return crate::sql::rewrite::relation_call(location)
                .unwrap_or_else(|| location.to_string());
        }
        let path = location.trim_matches('\'');
        return if crate::bronze::functions::format_of(path).is_none() {
            location.to_string()
        } else {
            format!("'{}'", path.replace('\'', "''"))
        };
    }
    if source.schema == BRONZE {
        let table = crate::bronze::catalog::table_name(&source.source_name, &source.identifier);
        format!("{BRONZE}.{}", ident(&table))
    } else {
        format!("{}.{}", ident(&source.schema), ident(&source.identifier))
    }
}
