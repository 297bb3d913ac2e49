//! dbt's `sources.json` (schema v3): one result per checked table, as `dbt source freshness`
//! writes it under the target path, for tools that read dbt's artifacts.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value as Json, json};

use super::{Checked, Status};
use crate::jinja::context::DBT_VERSION;

const SCHEMA: &str = "https://schemas.getdbt.com/dbt/sources/v3.json";

/// Why `sources.json` could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {}: {source}", .path.display())]
pub struct ArtifactError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// dbt's timestamps: microseconds, `Z` in the metadata.
fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The artifact of invocation `invocation_id` (started at `started_at`), which checked
/// `checked` in `elapsed` seconds.
pub fn sources_json(
    checked: &[Checked],
    invocation_id: &str,
    started_at: DateTime<Utc>,
    elapsed: f64,
) -> Json {
    let results: Vec<Json> = checked.iter().map(result).collect();
    json!({
        "metadata": {
            "dbt_schema_version": SCHEMA,
            "dbt_version": DBT_VERSION,
            "generated_at": at(Utc::now()),
            "invocation_id": invocation_id,
            "invocation_started_at": at(started_at),
            "env": {},
        },
        "results": results,
        "elapsed_time": elapsed,
    })
}

fn result(c: &Checked) -> Json {
    let loaded = match &c.loaded {
        Ok(loaded) => loaded,
        Err(message) => {
            return json!({
                "unique_id": c.source.unique_id,
                "error": message,
                "status": Status::RuntimeError.as_str(),
            });
        }
    };
    // dbt writes the load times as Python's isoformat of an aware datetime (`+00:00`).
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, false);
    let timing = |name: &str| json!({"name": name, "started_at": at(c.started_at), "completed_at": at(c.completed_at)});
    json!({
        "unique_id": c.source.unique_id,
        "max_loaded_at": iso(loaded.max_loaded_at),
        "snapshotted_at": iso(loaded.snapshotted_at),
        "max_loaded_at_time_ago_in_s": loaded.age_seconds(),
        "status": c.status.as_str(),
        "criteria": c.criteria,
        "adapter_response": {},
        "timing": [timing("compile"), timing("execute")],
        "thread_id": "Thread-1",
        "execution_time": c.seconds,
    })
}

/// Writes `artifact` to `path`, creating its folder.
pub fn write(path: &Path, artifact: &Json) -> Result<(), ArtifactError> {
    let fail = |source| ArtifactError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let text = serde_json::to_string_pretty(artifact).expect("JSON values serialize");
    std::fs::write(path, text).map_err(fail)
}
