//! `--defer --state <dir>`: a ref to a model, seed or snapshot that this command does not build
//! and that is not built in this lake reads the relation the saved manifest names for it
//! (its schema and alias; Strata has one database), when that relation is in the lake.

use std::collections::BTreeSet;

use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;

use super::state::StateManifest;
use crate::project::{Materialized, Project, Resource};
use crate::run::materialize::Relation;
use crate::run::nodes::relation_of;

/// Whether the relation is a table or view in the lake `ctx` reads.
async fn exists(ctx: &SessionContext, relation: &Relation) -> bool {
    let table = TableReference::partial(relation.schema.as_str(), relation.name.as_str());
    ctx.table_provider(table).await.is_ok()
}

/// Points the unselected, unbuilt nodes of `project` at the saved manifest's relations; returns
/// each deferred node's unique id and the relation its refs now read.
pub async fn defer(
    ctx: &SessionContext,
    project: &mut Project,
    state: &StateManifest,
    selected: &BTreeSet<String>,
) -> Vec<(String, Relation)> {
    let mut deferred = Vec::new();
    for node in project.nodes.values_mut() {
        let builds = matches!(
            node.resource,
            Resource::Model | Resource::Seed | Resource::Snapshot
        );
        let ephemeral = node.config.materialized == Materialized::Ephemeral;
        if !builds || ephemeral || selected.contains(&node.unique_id) {
            continue;
        }
        let Some(saved) = state.relation(&node.unique_id) else {
            continue;
        };
        if saved == relation_of(node) || exists(ctx, &relation_of(node)).await {
            continue;
        }
        if exists(ctx, &saved).await {
            node.config.schema = saved.schema.clone();
            node.config.alias = Some(saved.name.clone());
            deferred.push((node.unique_id.clone(), saved));
        }
    }
    deferred
}
