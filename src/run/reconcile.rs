//! A run records its nodes in `_strata/runs` when it ends, so a run killed after some tables
//! committed leaves versions no run names, and `strata.as_of_run` cannot find them. Every
//! commit a run makes therefore carries a [`RunStamp`] in its Delta commit info, and each run
//! first records, under the run that made them and with status `interrupted`, the stamped
//! commits of the project's tables that the run log does not name.
//!
//! A run still going in another process when this one starts is indistinguishable from a
//! killed one: its finished nodes are then recorded twice, as `interrupted` and at its end,
//! with the same version.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deltalake::kernel::CommitInfo;
use serde::{Deserialize, Serialize};

use super::RunError;
use super::materialize::rows_written;
use super::nodes::relation_of;
use crate::lake::write::CommitMetadata;
use crate::lake::{Lake, delta, layout};
use crate::meta::RunRecord;
use crate::project::{Materialized, Project, Resource};

/// The commit-info key the stamp goes under.
const KEY: &str = "strataRun";

/// The status of a node recorded after its run was stopped.
pub const INTERRUPTED: &str = "interrupted";

/// Which run, command and node made a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStamp {
    pub run_id: String,
    pub command: String,
    pub node: String,
    pub started_at: DateTime<Utc>,
}

impl RunStamp {
    /// The commit-info entries that write this stamp.
    pub fn commit_metadata(&self) -> CommitMetadata {
        let stamp = serde_json::to_value(self).expect("a run stamp serializes");
        CommitMetadata::from([(KEY.to_string(), stamp)])
    }

    fn of(info: &CommitInfo) -> Option<RunStamp> {
        serde_json::from_value(info.info.get(KEY)?.clone()).ok()
    }
}

/// Run-log records for the commits of `project`'s tables that the log (`records`) does not
/// name, found walking each table's log back from its latest version to the first commit the
/// log names (or one no run stamped). `by` is the run doing this, named in the message.
pub async fn unrecorded(
    lake: &Lake,
    project: &Project,
    records: &[RunRecord],
    by: &str,
) -> Result<Vec<RunRecord>, RunError> {
    let recorded: HashSet<(&str, &str, u64)> = records
        .iter()
        .filter_map(|r| Some((r.relation.as_str(), r.run_id.as_str(), r.delta_version?)))
        .collect();
    // Each relation's newest record: when it names the latest version, nothing is missing.
    let mut newest: HashMap<&str, &RunRecord> = HashMap::new();
    for r in records {
        let entry = newest.entry(r.relation.as_str()).or_insert(r);
        if r.started_at > entry.started_at {
            *entry = r;
        }
    }
    let mut missing = Vec::new();
    let tables = project.nodes.values().filter(|n| match n.resource {
        Resource::Seed | Resource::Snapshot => true,
        Resource::Model => !matches!(
            n.config.materialized,
            Materialized::View | Materialized::Ephemeral
        ),
        Resource::Test => false,
    });
    for node in tables {
        let relation = relation_of(node);
        let name = relation.to_string();
        let path = layout::model_table(&relation.schema, &relation.name);
        let fail = |e: &dyn std::fmt::Display| RunError::Reconcile {
            relation: name.clone(),
            message: e.to_string(),
        };
        let Some(latest) = delta::latest_version(lake, &path)
            .await
            .map_err(|e| fail(&e))?
        else {
            continue;
        };
        if newest.get(name.as_str()).and_then(|r| r.delta_version) == Some(latest) {
            continue;
        }
        for version in (0..=latest).rev() {
            let Some(info) = delta::commit_info(lake, &path, version)
                .await
                .map_err(|e| fail(&e))?
            else {
                break;
            };
            let Some(stamp) = RunStamp::of(&info) else {
                break;
            };
            if recorded.contains(&(name.as_str(), stamp.run_id.as_str(), version)) {
                break;
            }
            missing.push(RunRecord {
                run_id: stamp.run_id,
                command: stamp.command,
                node: stamp.node,
                relation: name.clone(),
                status: INTERRUPTED.to_string(),
                rows: rows_written(&info),
                seconds: 0.0,
                delta_version: Some(version),
                message: format!(
                    "committed version {version}, but the run ended before recording it \
                     (recorded by run {by})"
                ),
                started_at: stamp.started_at,
            });
        }
    }
    Ok(missing)
}
