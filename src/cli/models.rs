//! The dbt-style commands (`compile`, `ls`, `run`, `test`, `seed`, `build`, `docs generate`)
//! and their output, which reads like dbt's so its users know where to look.
//! Each writes dbt's artifacts to the target path as dbt does.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::{RunArgs, SelectArgs, StateArgs, StateSelectArgs, open_session};
use crate::config::Config;
use crate::jinja::{Invocation, Target};
use crate::lake::Lake;
use crate::meta::RunRecord;
use crate::project::{self, Project, Resource};
use crate::run::artifacts::catalog::write_catalog;
use crate::run::artifacts::manifest::write_manifest;
use crate::run::artifacts::run_results::{self, write_run_results};
use crate::run::artifacts::{defer, state::StateManifest};
use crate::run::check::{self, CheckError};
use crate::run::execute::selected;
use crate::run::incremental::microbatch::EventTimes;
use crate::run::retry::Retry;
use crate::run::watch::{IngestWatch, rebuild_selection};
use crate::run::{self, NodeResult, RunOptions, Status};
use crate::session;

/// The project as `which` (dbt's name for the command) sees it.
pub(super) fn load_project(
    config: &Config,
    args: &SelectArgs,
    which: &str,
    full_refresh: bool,
    threads: usize,
) -> Result<Project> {
    let vars = args.vars.as_deref();
    let target = Target {
        threads,
        invocation: Invocation {
            which: which.to_string(),
            command_line: std::env::args().collect::<Vec<_>>().join(" "),
            full_refresh,
            select: args.select.clone(),
            exclude: args.exclude.clone(),
            project_dir: config.project_dir.clone(),
            ..Invocation::default()
        },
        ..Target::default()
    };
    let project =
        project::load_with_target(&config.project_dir, vars, &target).with_context(|| {
            format!(
                "loading the dbt project in {}",
                config.project_dir.display()
            )
        })?;
    for warning in &project.warnings {
        eprintln!("warning: {warning}");
    }
    // dbt writes the manifest as soon as the project is parsed.
    write_manifest(&project).context("writing the manifest")?;
    let unsupported = unsupported_lines(&project);
    if args.strict || config.project.strict {
        if !unsupported.is_empty() {
            bail!(
                "the project sets {} key(s) Strata does not apply (strict mode):\n  {}",
                project.unsupported.len(),
                unsupported.join("\n  ")
            );
        }
    } else {
        for line in unsupported {
            eprintln!("warning: {line}");
        }
    }
    Ok(project)
}

/// The keys Strata does not apply, one line per file, key and effect, naming the nodes.
fn unsupported_lines(project: &Project) -> Vec<String> {
    let mut grouped: std::collections::BTreeMap<(String, &str, &str), Vec<&str>> =
        Default::default();
    for u in &project.unsupported {
        grouped
            .entry((
                u.path.display().to_string(),
                u.key.as_str(),
                u.effect.as_str(),
            ))
            .or_default()
            .push(u.node.as_str());
    }
    const SHOWN: usize = 5;
    grouped
        .into_iter()
        .map(|((path, key, effect), nodes)| {
            let mut named = nodes[..nodes.len().min(SHOWN)].join(", ");
            if nodes.len() > SHOWN {
                named.push_str(&format!(" and {} more", nodes.len() - SHOWN));
            }
            format!("{path}: {named}: `{key}` is not supported yet; {effect}")
        })
        .collect()
}

fn threads(args: &RunArgs) -> usize {
    args.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn options(args: &SelectArgs, state: &StateArgs, command: run::RunCommand) -> Result<RunOptions> {
    let state = match &state.state {
        Some(dir) => Some(Arc::new(
            StateManifest::read(dir).context("reading the --state manifest")?,
        )),
        None => None,
    };
    Ok(RunOptions {
        command,
        select: args.select.clone(),
        exclude: args.exclude.clone(),
        full_refresh: false,
        threads: 1,
        event_times: EventTimes::default(),
        store_failures: false,
        state,
        only: None,
        retry_batches: Arc::default(),
    })
}

pub(super) fn warn_unmatched(unmatched: &[String]) {
    for selector in unmatched {
        eprintln!("warning: the selection criterion '{selector}' does not match any node");
    }
}

/// `strata deps`: installs the declared packages, replacing what was installed.
pub async fn deps(config: &Config) -> Result<()> {
    let installed = project::deps::install(&config.project_dir)
        .await
        .with_context(|| {
            format!(
                "installing the packages of {}",
                config.project_dir.display()
            )
        })?;
    for package in &installed {
        println!("Installed {} ({})", package.name, package.from);
    }
    println!("{} package(s) installed", installed.len());
    Ok(())
}

/// `strata ls`: the selected nodes, one per line.
pub fn list(config: &Config, args: &StateSelectArgs) -> Result<()> {
    let StateSelectArgs { selection, state } = args;
    let project = load_project(config, selection, "list", false, 1)?;
    let opts = options(selection, state, run::RunCommand::Build)?;
    let (ids, unmatched) = selected(&project, &opts)?;
    warn_unmatched(&unmatched);
    for id in ids {
        let node = &project.nodes[&id];
        println!(
            "{:<6} {:<40} {}",
            node.resource.as_str(),
            node.name,
            node.path.display()
        );
    }
    Ok(())
}

/// `strata compile`: render and plan (which writes the compiled SQL under `target/compiled/`).
pub async fn compile(config: &Config, args: &StateSelectArgs) -> Result<()> {
    compile_selection(config, args, "compile").await.map(drop)
}

/// Renders and plans the selection (`--defer` applied), writing the compiled SQL and the
/// manifest; the project as parsed (its own relations) and the selected ids.
async fn compile_selection(
    config: &Config,
    args: &StateSelectArgs,
    which: &str,
) -> Result<(Project, Vec<String>)> {
    let StateSelectArgs { selection, state } = args;
    let mut project = load_project(config, selection, which, false, 1)?;
    let opts = options(selection, state, run::RunCommand::Build)?;
    let (ids, unmatched) = selected(&project, &opts)?;
    warn_unmatched(&unmatched);
    let parsed = state.defer.then(|| project.clone());
    defer_unbuilt(config, state.defer, &opts, &mut project, &ids).await?;
    let lake = Lake::open(config.lake.clone())?;
    let ctx = open_session(config).await?;
    let started = std::time::Instant::now();
    let report = check::check(&ctx, &lake, &project, &ids).await;
    write_manifest(parsed.as_ref().unwrap_or(&project)).context("writing the manifest")?;
    report_check_errors(&report.errors);
    report_deferred(&report.deferred, "when they are built");
    println!(
        "Compiled and planned {} node(s) in {:.2}s, {} error(s); SQL in {}",
        report.checked,
        started.elapsed().as_secs_f64(),
        report.errors.len(),
        project.target_path.join("compiled").display()
    );
    if !report.errors.is_empty() {
        bail!("{} node(s) do not compile", report.errors.len())
    }
    Ok((parsed.unwrap_or(project), ids))
}

/// With `--defer`, points the refs to nodes outside `ids` that the lake has not built at the
/// relations the `--state` manifest names, saying which.
async fn defer_unbuilt(
    config: &Config,
    defer: bool,
    opts: &RunOptions,
    project: &mut Project,
    ids: &[String],
) -> Result<()> {
    let (true, Some(state)) = (defer, &opts.state) else {
        return Ok(());
    };
    let ctx = open_session(config).await?;
    let selected = ids.iter().cloned().collect();
    for (id, relation) in defer::defer(&ctx, project, state, &selected).await {
        println!(
            "Deferred {id} to {relation} (from {})",
            state.path.display()
        );
    }
    Ok(())
}

/// Nodes whose rendering queries what the run builds: checked later, and why.
fn report_deferred(deferred: &[check::Deferred], when: &str) {
    if deferred.is_empty() {
        return;
    }
    println!(
        "Checked {when} ({} node(s)), as their SQL queries relations the run builds:",
        deferred.len()
    );
    for d in deferred {
        println!("  {}: {}", d.id, d.reason);
    }
}

fn report_check_errors(errors: &[CheckError]) {
    for e in errors {
        eprintln!(
            "ERROR {} ({}):\n  {}",
            e.id,
            e.path,
            e.message.replace('\n', "\n  ")
        );
    }
}

/// The project as `strata run|test|seed|build` with `args` sees it.
pub(super) fn run_project(
    config: &Config,
    args: &RunArgs,
    command: run::RunCommand,
) -> Result<Project> {
    let mut project = load_project(
        config,
        &args.selection,
        command.as_str(),
        args.full_refresh,
        threads(args),
    )?;
    project.target.invocation.store_failures = args.store_failures;
    Ok(project)
}

/// `strata run|test|seed|build`.
pub async fn run(config: &Config, args: &RunArgs, command: run::RunCommand) -> Result<()> {
    if args.store_failures && !matches!(command, run::RunCommand::Test | run::RunCommand::Build) {
        bail!("--store-failures is for test and build");
    }
    if args.watch {
        return watch(config, args, command).await;
    }
    let project = run_project(config, args, command)?;
    if run_selection(config, args, command, project, &args.selection.select, None).await? {
        bail!("the {} had failures", command.as_str());
    }
    Ok(())
}

/// `run --watch` / `build --watch`: builds the selection, then, each time `strata land` commits
/// new files, what reads them (and what is downstream), until Ctrl-C or SIGTERM. A failing
/// build is reported and the watch goes on.
async fn watch(config: &Config, args: &RunArgs, command: run::RunCommand) -> Result<()> {
    if !matches!(command, run::RunCommand::Run | run::RunCommand::Build) {
        bail!("--watch is for run and build");
    }
    let lake = Lake::open(config.lake.clone())?;
    let mut stop = super::stop_on_signals("--watch")?;
    // Started before the first build, so files landing during it are built next.
    let mut ingest = IngestWatch::start(&lake)
        .await
        .with_context(|| format!("reading the ingest log of {}", config.lake))?;
    // A project that does not load stops the watch before it starts; later it is reported
    // and loaded again at the next landing.
    let mut project = run_project(config, args, command)?;
    let mut selection = args.selection.select.clone();
    loop {
        let mut abandon = stop.clone();
        tokio::select! {
            outcome = run_selection(config, args, command, project, &selection, None) => {
                if let Err(e) = outcome {
                    eprintln!("ERROR: {e:#}");
                }
            }
            () = abandon.abandon_requested() => {
                println!("Stopped; the models being built keep their previous version");
                return Ok(());
            }
        }
        println!(
            "\nWatching {} for newly landed data (Ctrl-C to stop)",
            config.lake
        );
        let mut pending = std::collections::BTreeSet::new();
        (project, selection) = loop {
            tokio::select! {
                () = tokio::time::sleep(args.interval) => {}
                () = stop.finish_requested() => {
                    println!("Stopped");
                    return Ok(());
                }
            }
            match ingest.landed(&lake).await {
                Ok(landed) => pending.extend(landed),
                Err(e) => eprintln!("ERROR reading the ingest log: {e}"),
            }
            if pending.is_empty() {
                continue;
            }
            let project = match run_project(config, args, command) {
                Ok(project) => project,
                Err(e) => {
                    eprintln!("ERROR: {e:#}");
                    continue;
                }
            };
            let names: Vec<String> = pending.iter().map(|(s, t)| format!("{s}.{t}")).collect();
            let selection = rebuild_selection(&project, &pending, &args.selection.select);
            pending.clear();
            if selection.is_empty() {
                println!("Landed in {}: no selected model reads it", names.join(", "));
                continue;
            }
            println!("Landed in {}: rebuilding what reads it", names.join(", "));
            break (project, selection);
        };
    }
}

/// Runs `select` (within the arguments' exclusions), or what `retry` names; whether any node
/// failed. Writes run_results.json and the manifest at the end.
pub(super) async fn run_selection(
    config: &Config,
    args: &RunArgs,
    command: run::RunCommand,
    mut project: Project,
    select: &[String],
    retry: Option<&Retry>,
) -> Result<bool> {
    let started = std::time::Instant::now();
    let threads = threads(args);
    let mut opts = RunOptions {
        full_refresh: args.full_refresh,
        threads,
        select: select.to_vec(),
        event_times: EventTimes {
            start: args.event_time_start,
            end: args.event_time_end,
        },
        store_failures: args.store_failures,
        ..options(&args.selection, &args.state, command)?
    };
    if let Some(retry) = retry {
        opts.only = Some(Arc::new(retry.ids.clone()));
        opts.retry_batches = Arc::new(retry.windows.clone());
    }
    let (ids, unmatched) = selected(&project, &opts)?;
    warn_unmatched(&unmatched);
    // Resolved once: deferring below changes relations a `state:` selector compares.
    opts.only = Some(Arc::new(ids.iter().cloned().collect()));
    let record = args_record(config, args, command);
    let kept = retry.map(|r| r.kept.clone()).unwrap_or_default();
    let lake = Lake::open(config.lake.clone())?;
    // The manifest keeps the project's own relations, deferred or not.
    let parsed = args.state.defer.then(|| project.clone());
    defer_unbuilt(config, args.state.defer, &opts, &mut project, &ids).await?;
    let project = Arc::new(project);
    if command != run::RunCommand::Seed {
        // Everything that will run must plan first: a bad column or ref stops the run before
        // any table changes.
        let check_ctx = open_session(config).await?;
        let report = check::check(&check_ctx, &lake, &project, &ids).await;
        if !report.errors.is_empty() {
            report_check_errors(&report.errors);
            let results = unrun(&project, &ids, &report.errors);
            let elapsed = started.elapsed().as_secs_f64();
            write_run_results(&project, &results, &record, elapsed, &kept)
                .context("writing run_results.json")?;
            bail!(
                "{} node(s) do not compile; nothing was run",
                report.errors.len()
            );
        }
        report_deferred(&report.deferred, "right after their inputs are built");
    }
    let ctx = open_session(config).await?;
    session::tune_for_builds(&ctx);
    let counts = |r: Resource| {
        ids.iter()
            .filter(|id| project.nodes[*id].resource == r)
            .count()
    };
    let run_id = run::RunId::now();
    let on_cluster = config
        .cluster
        .scheduler
        .as_ref()
        .map(|url| format!(", queries on the cluster at {url}"))
        .unwrap_or_default();
    let snapshots = match counts(Resource::Snapshot) {
        0 => String::new(),
        n => format!("{n} snapshot(s), "),
    };
    println!(
        "Running {} model(s), {} seed(s), {snapshots}{} test(s) on {} with {threads} thread(s) (run {}){on_cluster}",
        counts(Resource::Model),
        counts(Resource::Seed),
        counts(Resource::Test),
        config.lake,
        run_id.id
    );
    let started_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(ids.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} nodes {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let total = ids.len();
    let mut done = 0;
    let summary = run::execute::run(&ctx, &lake, Arc::clone(&project), &opts, run_id, |result| {
        done += 1;
        bar.inc(1);
        bar.suspend(|| println!("{}", result_line(done, total, result)));
    })
    .await?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    write_run_results(&project, &summary.results, &record, elapsed, &kept)
        .context("writing run_results.json")?;
    write_manifest(parsed.as_ref().unwrap_or(&project)).context("writing the manifest")?;
    report_recovered(&summary.recovered);
    for result in &summary.results {
        if matches!(
            result.status,
            Status::Error | Status::Fail | Status::Warn | Status::PartialSuccess
        ) {
            let kind = match result.status {
                Status::Warn => "Warning",
                Status::PartialSuccess => "Partial success",
                _ => "Failure",
            };
            println!(
                "\n{kind} in {} {}:\n  {}",
                result.resource.as_str(),
                result.name,
                result.message.replace('\n', "\n  ")
            );
        }
    }
    println!(
        "\nFinished in {:.2}s (run {}). PASS={} WARN={} ERROR={} SKIP={} TOTAL={}",
        summary.seconds,
        summary.run_id,
        summary.count(Status::Success) + summary.count(Status::Pass),
        summary.count(Status::Warn),
        summary.count(Status::Error)
            + summary.count(Status::Fail)
            + summary.count(Status::PartialSuccess),
        summary.count(Status::Skipped),
        summary.results.len()
    );
    report_cluster_work(config, started_ms).await;
    Ok(summary.failed())
}

/// The results of a run stopped by nodes that do not compile: those errors, the rest skipped.
fn unrun(project: &Project, ids: &[String], errors: &[CheckError]) -> Vec<NodeResult> {
    ids.iter()
        .filter_map(|id| project.nodes.get(id))
        .map(|node| {
            let error = errors.iter().find(|e| e.id == node.unique_id);
            NodeResult {
                id: node.unique_id.clone(),
                name: node.name.clone(),
                resource: node.resource,
                materialized: node.config.materialized,
                relation: (node.resource != Resource::Test).then(|| run::nodes::relation_of(node)),
                status: error.map_or(Status::Skipped, |_| Status::Error),
                rows: None,
                version: None,
                seconds: 0.0,
                message: error.map_or_else(
                    || "skipped because other nodes do not compile".to_string(),
                    |e| e.message.clone(),
                ),
                started_at: chrono::Utc::now(),
                thread: 0,
                batches: None,
            }
        })
        .collect()
}

/// The command and arguments as run_results.json records them (and `retry` reads them).
fn args_record(config: &Config, args: &RunArgs, command: run::RunCommand) -> run_results::Args {
    let selection = &args.selection;
    let vars = selection
        .vars
        .as_deref()
        .and_then(|text| serde_norway::from_str::<serde_json::Value>(text).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    };
    run_results::Args {
        which: command.as_str().to_string(),
        select: selection.select.clone(),
        exclude: selection.exclude.clone(),
        vars,
        full_refresh: args.full_refresh,
        threads: args.threads,
        event_time_start: time(args.event_time_start),
        event_time_end: time(args.event_time_end),
        state: args.state.state.as_ref().map(|p| p.display().to_string()),
        defer: args.state.defer,
        strict: selection.strict,
        store_failures: args.store_failures,
        invocation_command: std::env::args().collect::<Vec<_>>().join(" "),
        project_dir: config.project_dir.display().to_string(),
    }
}

/// `strata docs generate`: the selection compiled (as dbt's does) into the manifest, and the
/// catalog of what the lake has built.
pub async fn docs_generate(config: &Config, args: &StateSelectArgs) -> Result<()> {
    let (project, ids) = compile_selection(config, args, "generate").await?;
    let lake = Lake::open(config.lake.clone())?;
    let ctx = open_session(config).await?;
    let path = write_catalog(&ctx, &lake, &project, &ids)
        .await
        .context("writing the catalog")?;
    println!("Catalog written to {}", path.display());
    Ok(())
}

/// With a cluster, which nodes ran this run's queries, from the scheduler's status endpoint.
async fn report_cluster_work(config: &Config, started_ms: u64) {
    let Some(url) = config.cluster.status_url() else {
        return;
    };
    match crate::cluster::status::fetch(&url).await {
        Ok(status) => println!(
            "{}",
            crate::cluster::status::work_since(&status, started_ms)
        ),
        Err(e) => println!("Which nodes ran the queries is unknown: {e}"),
    }
}

/// Versions a killed run committed, now in the run log under that run.
fn report_recovered(recovered: &[RunRecord]) {
    for r in recovered {
        println!(
            "Recorded {} version {} in _strata.runs: committed by run {} ({}), which ended \
             before recording it",
            r.relation,
            r.delta_version.unwrap_or_default(),
            r.run_id,
            r.command
        );
    }
}

/// One dbt-like line per finished node.
fn result_line(index: usize, total: usize, r: &NodeResult) -> String {
    let label = match r.status {
        Status::Success => "OK",
        Status::Error => "ERROR",
        Status::Skipped => "SKIP",
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Warn => "WARN",
        Status::PartialSuccess => "PARTIAL",
    };
    let what = match &r.relation {
        Some(relation) => format!("{} {relation}", r.materialized.as_str()),
        None => format!("test {}", r.name),
    };
    let detail = match (r.status, r.rows, r.version) {
        (Status::Skipped, ..) => String::new(),
        (Status::Success | Status::PartialSuccess, Some(rows), Some(v)) => {
            format!("[{rows} rows, version {v}, {:.2}s]", r.seconds)
        }
        (Status::Warn | Status::Fail, Some(rows), _) => {
            format!("[{rows} failing, {:.2}s]", r.seconds)
        }
        _ => format!("[{:.2}s]", r.seconds),
    };
    let line = format!("{index:>4} of {total} {label:<5} {what:<50} {detail}");
    // What a success did beyond its rows (a schema change, the batches of a microbatch model).
    match (r.status, r.message.is_empty()) {
        (Status::Success, false) => format!(
            "{line}\n{:>14}{}",
            "",
            r.message.replace('\n', "\n              ")
        ),
        _ => line,
    }
}
