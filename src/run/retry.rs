//! `retry` (dbt's): the nodes an earlier run did not finish well (errors, failed tests, what
//! was skipped, partial successes) run again with that run's command and arguments, nothing
//! else. A microbatch model some of whose batches were committed builds only its failed
//! windows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::RunCommand;
use super::artifacts::run_results::PreviousRun;
use super::incremental::Incremental;
use super::incremental::microbatch::Window;
use crate::project::Project;

/// The statuses a retry runs again (dbt's `RETRYABLE_STATUSES`).
const RETRYABLE: [&str; 5] = [
    "error",
    "fail",
    "skipped",
    "runtime error",
    "partial success",
];

#[derive(Debug, thiserror::Error)]
#[error(
    "{}: the last command was `{which}`; retry runs again a run, test, seed, snapshot or build",
    .path.display()
)]
pub struct RetryError {
    pub path: PathBuf,
    pub which: String,
}

/// What a retry runs.
#[derive(Debug, Clone)]
pub struct Retry {
    /// The nodes to run, those the project still has.
    pub ids: BTreeSet<String>,
    /// Per microbatch model, the failed windows to build.
    pub windows: BTreeMap<String, Vec<Window>>,
    /// Per such model, the windows the earlier run committed.
    pub kept: BTreeMap<String, Vec<Window>>,
}

/// The command `which` names.
pub fn command(previous: &PreviousRun) -> Result<RunCommand, RetryError> {
    let which = previous.args.which.as_str();
    [
        RunCommand::Run,
        RunCommand::Test,
        RunCommand::Seed,
        RunCommand::Snapshot,
        RunCommand::Build,
    ]
    .into_iter()
    .find(|c| c.as_str() == which)
    .ok_or_else(|| RetryError {
        path: previous.path.clone(),
        which: which.to_string(),
    })
}

/// What to run again of `previous`, in `project` as it is now.
pub fn plan(previous: &PreviousRun, project: &Project) -> Retry {
    let mut retry = Retry {
        ids: BTreeSet::new(),
        windows: BTreeMap::new(),
        kept: BTreeMap::new(),
    };
    for result in &previous.results {
        let Some(node) = project.nodes.get(&result.unique_id) else {
            continue;
        };
        if !RETRYABLE.contains(&result.status.as_str()) {
            continue;
        }
        retry.ids.insert(node.unique_id.clone());
        // Without a committed batch the model is built as a whole again (a first build, say).
        let Some((successful, failed)) = &result.batches else {
            continue;
        };
        let size = Incremental::of(node)
            .ok()
            .and_then(|c| c.microbatch)
            .map(|m| m.batch_size);
        let Some(size) = size.filter(|_| !successful.is_empty() && !failed.is_empty()) else {
            continue;
        };
        let windows = |times: &[(_, _)]| {
            times
                .iter()
                .map(|&(start, end)| Window { start, end, size })
                .collect::<Vec<_>>()
        };
        retry
            .windows
            .insert(node.unique_id.clone(), windows(failed));
        retry
            .kept
            .insert(node.unique_id.clone(), windows(successful));
    }
    retry
}
