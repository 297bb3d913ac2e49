//! What the project's `on-run-end` hooks see besides the project's context, as dbt gives it:
//! `results` (each node's `status`, `node`, `message`, `adapter_response`, `execution_time`,
//! `failures`), and `schemas` / `database_schemas`, the schemas the run's nodes are in (Strata
//! has no databases: each pair's database is none, as `target.database` is).

use std::collections::BTreeSet;

use serde_json::{Map as JsonMap, Value as Json, json};

use super::execute::{NodeResult, Status};
use crate::project::{Project, Resource};

/// The `on-run-end` context of a run that ended with `results`.
pub fn on_run_end(project: &Project, results: &[NodeResult]) -> JsonMap<String, Json> {
    let listed: Vec<Json> = results
        .iter()
        .map(|r| {
            let node = project
                .nodes
                .get(&r.id)
                .map_or_else(|| json!({"unique_id": r.id, "name": r.name}), |n| Json::Object(n.model_json()));
            let is_test = r.resource == Resource::Test;
            let message = match (r.message.as_str(), r.status) {
                ("", Status::Success) => "OK".to_string(),
                ("", status) => status.as_str().to_uppercase(),
                (message, _) => message.to_string(),
            };
            json!({
                "status": r.status.as_str(),
                "node": node,
                "message": message,
                "adapter_response": match (is_test, r.rows) {
                    (false, Some(rows)) => json!({"_message": message, "rows_affected": rows}),
                    _ => json!({}),
                },
                "execution_time": r.seconds,
                "failures": if is_test { r.rows.map_or(Json::Null, Json::from) } else { Json::Null },
            })
        })
        .collect();
    let schemas: BTreeSet<&str> = results
        .iter()
        .filter_map(|r| r.relation.as_ref())
        .map(|relation| relation.schema.as_str())
        .collect();
    let pairs: Vec<Json> = schemas.iter().map(|s| json!([null, s])).collect();
    JsonMap::from_iter([
        ("results".to_string(), Json::from(listed)),
        ("schemas".to_string(), json!(schemas)),
        ("database_schemas".to_string(), Json::from(pairs)),
    ])
}
