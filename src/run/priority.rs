//! Which ready node to start first. Whenever cores would otherwise sit idle, a build's length
//! is set by the chain of nodes that finishes last: starting the node with the most work below
//! it first keeps that chain moving while shorter ones fill the other threads.
//! The work a node stands for is estimated by the raw bytes it reads through its ancestors
//! (the bronze files landed for the sources upstream of it), known before anything runs.

use std::collections::{BTreeSet, HashMap};

use crate::bronze::catalog::table_name;
use crate::graph::Graph;
use crate::meta::IngestRecord;
use crate::project::Project;
use crate::warehouse::catalog::BRONZE;

/// Each node's estimated cost: the bytes landed for the bronze tables read by it or by any
/// node upstream of it. Nodes reading nothing landed (seeds, raw paths) weigh nothing.
pub fn upstream_bytes(
    project: &Project,
    graph: &Graph,
    landed: &[IngestRecord],
) -> HashMap<String, u64> {
    let mut bytes_of: HashMap<String, u64> = HashMap::new();
    for record in landed {
        *bytes_of
            .entry(table_name(&record.source, &record.table_name))
            .or_default() += record.bytes;
    }
    let mut tables_above: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for id in graph.topological() {
        let Some(node) = project.nodes.get(id) else {
            continue;
        };
        let mut tables: BTreeSet<String> = node
            .sources
            .iter()
            .filter_map(|key| project.sources.get(key))
            .filter(|s| s.schema == BRONZE && s.external_location.is_none())
            .map(|s| table_name(&s.source_name, &s.identifier))
            .collect();
        for parent in &node.depends_on {
            if let Some(above) = tables_above.get(parent.as_str()) {
                tables.extend(above.iter().cloned());
            }
        }
        tables_above.insert(id, tables);
    }
    tables_above
        .into_iter()
        .map(|(id, tables)| {
            let bytes = tables.iter().filter_map(|t| bytes_of.get(t)).sum();
            (id.to_string(), bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use chrono::Utc;

    use super::*;
    use crate::run::nodes::graph_of;

    fn landed(table: &str, bytes: u64) -> IngestRecord {
        IngestRecord {
            batch_id: "b1".into(),
            source: "shop".into(),
            table_name: table.into(),
            format: "csv".into(),
            source_path: format!("drop/{table}.csv"),
            bronze_path: format!("bronze/shop/{table}/{table}.csv"),
            bytes,
            sha256: String::new(),
            landed_at: Utc::now(),
            source_state: None,
        }
    }

    #[test]
    fn a_node_weighs_the_bytes_landed_for_every_bronze_table_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("dbt_project.yml", "name: p\nprofile: p\nversion: '1'\n");
        write(
            "models/sources.yml",
            "version: 2\nsources:\n  - name: shop\n    schema: bronze\n    tables:\n      \
             - name: orders\n      - name: events\n      - name: raw\n        meta:\n          \
             external_location: 'drop/raw.csv'\n",
        );
        write(
            "models/orders.sql",
            "select * from {{ source('shop', 'orders') }}",
        );
        write(
            "models/events.sql",
            "select * from {{ source('shop', 'events') }}",
        );
        write(
            "models/raw.sql",
            "select * from {{ source('shop', 'raw') }}",
        );
        write(
            "models/joined.sql",
            "select * from {{ ref('orders') }}, {{ ref('events') }}, {{ ref('raw') }}",
        );
        write(
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: events\n    columns:\n      - name: id\n        \
             data_tests: [unique]\n",
        );
        let project = crate::project::load(dir.path(), None).unwrap();
        let graph = graph_of(&project).unwrap();
        let records = [
            landed("orders", 100),
            landed("events", 1000),
            landed("events", 500),
            landed("raw", 7),
        ];
        let bytes = upstream_bytes(&project, &graph, &records);
        assert_eq!(bytes["model.p.orders"], 100);
        assert_eq!(bytes["model.p.events"], 1500);
        // A raw path is not a landed table, whatever the ingest log holds under its name.
        assert_eq!(bytes["model.p.raw"], 0);
        assert_eq!(bytes["model.p.joined"], 1600);
        assert_eq!(bytes["test.p.unique_events_id"], 1500);
    }
}
