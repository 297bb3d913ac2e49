//! `run_results.json` (dbt's run-results schema v6): one result per node a run, test, seed,
//! snapshot or build executed or skipped, with the command and arguments it was started with,
//! so that `retry` can run what did not succeed again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map as JsonMap, Value as Json, json};

use super::{ArtifactError, manifest, metadata, timestamp, write};
use crate::project::{Project, Resource};
use crate::run::incremental::microbatch::{BatchResults, Window};
use crate::run::nodes::relation_sql;
use crate::run::{NodeResult, Status};

pub const FILE: &str = "run_results.json";

/// The command and arguments of a run, as `args` records them (dbt's names) and `retry`
/// starts them again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Args {
    /// The command: `run`, `test`, `seed`, `snapshot` or `build`.
    pub which: String,
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    pub vars: JsonMap<String, Json>,
    pub full_refresh: bool,
    pub threads: Option<usize>,
    pub event_time_start: Option<String>,
    pub event_time_end: Option<String>,
    pub state: Option<String>,
    pub defer: bool,
    pub strict: bool,
    pub store_failures: bool,
    pub invocation_command: String,
    pub project_dir: String,
}

/// A run's results as `run_results.json` holds them. `kept`: per microbatch model a retry
/// built, the batches an earlier run committed (dbt lists them as successful again).
pub fn run_results(
    project: &Project,
    results: &[NodeResult],
    args: &Args,
    elapsed: f64,
    kept: &BTreeMap<String, Vec<Window>>,
) -> Json {
    let results: Vec<Json> = results
        .iter()
        .map(|r| result(project, r, kept.get(&r.id)))
        .collect();
    let mut args_json = serde_json::to_value(args).unwrap_or(Json::Null);
    if let Json::Object(map) = &mut args_json {
        map.insert("indirect_selection".into(), json!("eager"));
        map.insert("favor_state".into(), json!(false));
        map.insert("write_json".into(), json!(true));
    }
    json!({
        "metadata": metadata("run-results/v6", &project.target.invocation),
        "results": results,
        "elapsed_time": elapsed,
        "args": args_json,
    })
}

/// Writes the results of a run.
pub fn write_run_results(
    project: &Project,
    results: &[NodeResult],
    args: &Args,
    elapsed: f64,
    kept: &BTreeMap<String, Vec<Window>>,
) -> Result<PathBuf, ArtifactError> {
    write(
        project,
        FILE,
        &run_results(project, results, args, elapsed, kept),
    )
}

/// A batch window as dbt writes it: `[start, end]`, RFC 3339 with `+00:00`.
fn windows(windows: &[Window]) -> Vec<Json> {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
    windows
        .iter()
        .map(|w| json!([at(w.start), at(w.end)]))
        .collect()
}

fn result(project: &Project, r: &NodeResult, kept: Option<&Vec<Window>>) -> Json {
    let node = project.nodes.get(&r.id);
    let compiled = node.and_then(|n| manifest::compiled_code(project, n));
    let completed = r.started_at + Duration::milliseconds((r.seconds * 1000.0) as i64);
    let timing = match r.status {
        Status::Skipped => json!([]),
        _ => json!([
            {"name": "compile", "started_at": timestamp(r.started_at), "completed_at": timestamp(r.started_at)},
            {"name": "execute", "started_at": timestamp(r.started_at), "completed_at": timestamp(completed)},
        ]),
    };
    let is_test = r.resource == Resource::Test;
    let adapter_response = match (r.status, r.rows) {
        (Status::Success | Status::PartialSuccess, Some(rows)) if !is_test => {
            json!({"_message": format!("OK {rows}"), "code": "OK", "rows_affected": rows})
        }
        _ => json!({}),
    };
    let message = match r.status {
        Status::Pass => Json::Null,
        Status::Success if r.message.is_empty() => json!("OK"),
        _ => json!(r.message),
    };
    let batch_results = r
        .batches
        .as_ref()
        .map(|BatchResults { successful, failed }| {
            let mut successful = successful.clone();
            successful.extend(kept.into_iter().flatten().copied());
            successful.sort_by_key(|w| w.start);
            json!({"successful": windows(&successful), "failed": windows(failed)})
        });
    json!({
        "status": r.status.as_str(),
        "timing": timing,
        "thread_id": format!("Thread-{}", r.thread),
        "execution_time": r.seconds,
        "adapter_response": adapter_response,
        "message": message,
        "failures": if is_test { json!(r.rows) } else { Json::Null },
        "unique_id": r.id,
        "compiled": compiled.is_some(),
        "compiled_code": compiled.map(|(_, sql)| sql),
        "relation_name": r.relation.as_ref().map(relation_sql),
        "batch_results": batch_results,
    })
}

/// One node's outcome in an earlier run.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviousResult {
    pub unique_id: String,
    /// dbt's status: `success`, `error`, `skipped`, `partial success`, `pass`, `fail`, ...
    pub status: String,
    /// A microbatch model's batches: `(start, end)` committed, and failed.
    pub batches: Option<(Vec<TimeWindow>, Vec<TimeWindow>)>,
}

/// A batch's `[start, end)`.
pub type TimeWindow = (DateTime<Utc>, DateTime<Utc>);

/// The `run_results.json` of an earlier run (Strata's or dbt's).
#[derive(Debug, Clone)]
pub struct PreviousRun {
    pub path: PathBuf,
    pub args: Args,
    pub results: Vec<PreviousResult>,
}

impl PreviousRun {
    pub fn read(path: &Path) -> Result<PreviousRun, ArtifactError> {
        let json = super::read(path, "run_results.json")?;
        let invalid = |message: String| ArtifactError::Invalid {
            path: path.to_path_buf(),
            kind: "run_results.json",
            message,
        };
        // dbt writes `null` for an argument not given: read as its default.
        let mut args = json.get("args").cloned().unwrap_or(json!({}));
        if let Json::Object(map) = &mut args {
            map.retain(|_, v| !v.is_null());
        }
        let args: Args = serde_json::from_value(args)
            .map_err(|e| invalid(format!("its `args` do not read: {e}")))?;
        let Some(Json::Array(items)) = json.get("results") else {
            return Err(invalid("it has no `results` list".into()));
        };
        let results = items
            .iter()
            .map(|item| {
                let text = |key: &str| item.get(key).and_then(Json::as_str).map(str::to_string);
                let unique_id =
                    text("unique_id").ok_or_else(|| invalid("a result has no unique_id".into()))?;
                let batches = match item.get("batch_results") {
                    Some(b) if b.is_object() => Some((
                        time_windows(&b["successful"]).map_err(&invalid)?,
                        time_windows(&b["failed"]).map_err(&invalid)?,
                    )),
                    _ => None,
                };
                Ok(PreviousResult {
                    unique_id,
                    status: text("status").unwrap_or_default(),
                    batches,
                })
            })
            .collect::<Result<_, ArtifactError>>()?;
        Ok(PreviousRun {
            path: path.to_path_buf(),
            args,
            results,
        })
    }
}

/// `[[start, end], ...]` as written by Strata or dbt.
fn time_windows(value: &Json) -> Result<Vec<TimeWindow>, String> {
    let time = |v: &Json| {
        let text = v.as_str().unwrap_or_default();
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("batch time '{text}': {e}"))
    };
    let Some(items) = value.as_array() else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([start, end]) => Ok((time(start)?, time(end)?)),
            _ => Err(format!("batch {pair} is not [start, end]")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_windows_read_as_dbt_writes_them() {
        let got = time_windows(&json!([[
            "2026-12-06T00:00:00+00:00",
            "2026-12-07T00:00:00+00:00"
        ]]))
        .unwrap();
        assert_eq!(got[0].0.to_rfc3339(), "2026-12-06T00:00:00+00:00");
        assert!(time_windows(&json!([["x"]])).is_err());
    }
}
