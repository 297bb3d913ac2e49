//! dbt's artifacts in the project's `target-path`, in dbt's published JSON schemas so that
//! dbt-ecosystem tools read them: `manifest.json` (the project as parsed), `run_results.json`
//! (what a run, test, seed, snapshot or build did) and `catalog.json` (`docs generate`: the
//! columns and row counts of the lake's relations). `retry` and `--state` read them back.

pub mod catalog;
pub mod defer;
pub mod manifest;
pub mod run_results;
pub mod state;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::jinja::Invocation;
use crate::project::Project;

/// The dbt release whose artifact schemas and semantics Strata's artifacts follow.
pub const DBT_VERSION: &str = "1.11.0";

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a dbt {kind}: {source}", .path.display())]
    Json {
        path: PathBuf,
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a dbt {kind}: {message}", .path.display())]
    Invalid {
        path: PathBuf,
        kind: &'static str,
        message: String,
    },
}

/// Where the artifact `file` of `project` goes: `<root>/<target-path>/<file>`.
pub fn path_of(project: &Project, file: &str) -> PathBuf {
    project.root.join(&project.target_path).join(file)
}

/// Writes `value` as the artifact `file`; returns its path.
pub fn write(project: &Project, file: &str, value: &Json) -> Result<PathBuf, ArtifactError> {
    let path = path_of(project, file);
    let fail = |source| ArtifactError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(fail)?;
    let text = serde_json::to_string(value).unwrap_or_default();
    std::fs::write(&path, text).map_err(fail)?;
    Ok(path)
}

/// Reads an artifact written by Strata or dbt; `kind` names it in errors.
pub fn read(path: &Path, kind: &'static str) -> Result<Json, ArtifactError> {
    let text = std::fs::read_to_string(path).map_err(|source| ArtifactError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ArtifactError::Json {
        path: path.to_path_buf(),
        kind,
        source,
    })
}

/// The `metadata` every artifact opens with; `schema` is its dbt schema (`manifest/v12`).
fn metadata(schema: &str, invocation: &Invocation) -> Json {
    json!({
        "dbt_schema_version": format!("https://schemas.getdbt.com/dbt/{schema}.json"),
        "dbt_version": DBT_VERSION,
        "generated_at": timestamp(Utc::now()),
        "invocation_id": invocation.id,
        "invocation_started_at": timestamp(invocation.started_at),
        "env": {},
    })
}

/// A time as dbt writes it: `2026-12-07T03:08:47.180880Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
