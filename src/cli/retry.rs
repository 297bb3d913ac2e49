//! `strata retry` (dbt's): what the last run, test, seed, snapshot or build recorded in
//! run_results.json as not finished well, run again with that command's arguments.

use anyhow::{Context, Result, bail};

use super::models::{run_project, run_selection};
use super::{RetryArgs, RunArgs, SelectArgs, StateArgs};
use crate::config::Config;
use crate::project;
use crate::run::artifacts::run_results::{self, PreviousRun};
use crate::run::retry;

/// `strata retry`: what the last command recorded in run_results.json as not finished well,
/// run again with that command's arguments.
pub async fn retry(config: &Config, args: &RetryArgs) -> Result<()> {
    let target = project::target_path(&config.project_dir).with_context(|| {
        format!(
            "reading the target path of {}",
            config.project_dir.display()
        )
    })?;
    let path = config.project_dir.join(target).join(run_results::FILE);
    if !path.exists() {
        bail!(
            "nothing to retry from: {} is missing (run, test, seed, snapshot or build write it)",
            path.display()
        );
    }
    let previous = PreviousRun::read(&path)?;
    let command = retry::command(&previous)?;
    let last = &previous.args;
    let event_time = |t: &Option<String>| {
        t.as_deref()
            .map(|text| super::event_time(text).map_err(anyhow::Error::msg))
            .transpose()
            .with_context(|| format!("reading the arguments in {}", path.display()))
    };
    let vars = match &args.vars {
        Some(vars) => Some(vars.clone()),
        None if last.vars.is_empty() => None,
        None => Some(serde_json::Value::Object(last.vars.clone()).to_string()),
    };
    let run_args = RunArgs {
        selection: SelectArgs {
            select: last.select.clone(),
            exclude: last.exclude.clone(),
            vars,
            strict: last.strict,
        },
        state: StateArgs {
            state: last.state.as_ref().map(Into::into),
            defer: last.defer,
        },
        full_refresh: last.full_refresh,
        threads: args.threads.or(last.threads),
        watch: false,
        interval: std::time::Duration::from_secs(10),
        event_time_start: event_time(&last.event_time_start)?,
        event_time_end: event_time(&last.event_time_end)?,
        store_failures: last.store_failures,
    };
    let project = run_project(config, &run_args, command)?;
    let plan = retry::plan(&previous, &project);
    if plan.ids.is_empty() {
        println!(
            "Nothing to retry: every node of the last {} succeeded ({})",
            command.as_str(),
            path.display()
        );
        return Ok(());
    }
    println!(
        "Retrying {} node(s) of the last {} ({})",
        plan.ids.len(),
        command.as_str(),
        path.display()
    );
    for (id, windows) in &plan.windows {
        let shown: Vec<String> = windows.iter().map(ToString::to_string).collect();
        println!("  {id}: only its failed batches {}", shown.join(", "));
    }
    if run_selection(config, &run_args, command, project, &[], Some(&plan)).await? {
        bail!("the retried {} had failures", command.as_str());
    }
    Ok(())
}
