//! Running a project: nodes materialized in dependency order, tests evaluated, every run
//! recorded.

pub mod artifacts;
pub mod check;
pub mod cluster;
pub mod config_check;
pub mod contract;
pub mod execute;
pub mod fixture;
pub mod freshness;
pub mod hooks;
pub mod incremental;
pub mod introspect;
pub mod materialize;
pub mod nodes;
pub mod priority;
pub mod reconcile;
pub mod retry;
pub mod run_context;
pub mod show;
pub mod snapshot;
pub mod tblproperties;
pub mod test_config;
pub mod unit_test;
pub mod upkeep;
pub mod watch;

pub use execute::{NodeResult, RunCommand, RunId, RunOptions, Status};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error(transparent)]
    Select(#[from] crate::graph::SelectError),
    #[error("run log {0}")]
    Log(#[from] crate::meta::MetaError),
    #[error("reading the Delta log of {relation} to complete the run log: {message}")]
    Reconcile { relation: String, message: String },
    #[error("{0}")]
    Hook(#[from] hooks::HookError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(
        "the selector `{0}` compares with a saved manifest: give the folder holding one with --state"
    )]
    NoState(String),
    #[error(transparent)]
    Artifact(#[from] artifacts::ArtifactError),
}
