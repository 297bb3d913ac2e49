//! The command line: argument parsing and human-readable output. Library errors get their
//! context here, at the edge.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::bronze::functions::format_of;
use crate::config::Config;
use crate::generate::{self, GenerateArgs};
use crate::lake::Lake;
use crate::land::{self, LandOptions, LandReport};
use crate::sql;
use crate::sql::render::{Format, Style, render};
use crate::sql::results::ResultSet;
use crate::{explore, run, session};

mod cluster;
mod freshness;
mod models;
mod repl;
mod retry;
mod serve;
mod show;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "A SQL-first lakehouse: generate, land, explore, transform and serve"
)]
pub struct Cli {
    /// The project directory (holding strata.toml)
    #[arg(long, global = true, env = "STRATA_PROJECT_DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// Lake root for this command: a local directory, hdfs://host:port/path or s3://bucket/path (overrides
    /// strata.toml and STRATA_LAKE)
    #[arg(long, global = true)]
    pub lake: Option<String>,
    /// Run queries on the Ballista cluster whose scheduler is at this URL (df://host:port;
    /// overrides [cluster] scheduler in strata.toml and STRATA_CLUSTER)
    #[arg(long, global = true, value_name = "URL")]
    pub cluster: Option<String>,
    /// Without a command, the REPL opens when stdin is a terminal
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate dirty synthetic raw files for an online shop (the "source systems")
    Generate(GenerateCommand),
    /// Copy raw files from the declared sources into the bronze layer, unchanged
    Land(LandArgs),
    /// Run SQL against the lake (bronze tables, raw paths) and print the results
    Sql(SqlArgs),
    /// Profile a table's or raw path's columns: types, nulls, distinct values, min/max, samples
    Explore(ExploreArgs),
    /// Render and plan the selected models and tests without running them (static check)
    Compile(StateSelectArgs),
    /// Build the selected models into Delta tables and views, in dependency order
    Run(RunArgs),
    /// Run the selected data tests
    Test(RunArgs),
    /// Load the selected seeds (CSV files) into Delta tables
    Seed(RunArgs),
    /// Take the selected snapshots: record how their rows changed since the last snapshot
    /// (dbt's slowly changing dimensions, type 2), one Delta commit each
    Snapshot(RunArgs),
    /// Seed, snapshot, run and test the selection in DAG order, testing each model before its
    /// children
    Build(RunArgs),
    /// List the nodes a selection picks
    Ls(StateSelectArgs),
    /// Preview the rows of a model, or of an inline query, without building anything
    Show(show::ShowArgs),
    /// Commands on the project's sources (dbt's `source freshness`)
    #[command(subcommand)]
    Source(freshness::SourceCommand),
    /// Run again what the last run, test, seed, snapshot or build did not finish well (its
    /// errors, failed tests and skipped nodes; a microbatch model's failed batches), with that
    /// command's arguments, from target/run_results.json
    Retry(RetryArgs),
    /// dbt's docs commands
    #[command(subcommand)]
    Docs(DocsCommand),
    /// Install the packages packages.yml declares (local, git, hub) into dbt_packages/
    Deps,
    /// Serve the warehouse over the PostgreSQL wire protocol (psql, JDBC, BI tools)
    Serve(serve::ServeArgs),
    /// Print the SCRAM-SHA-256 verifier of a password read from stdin, for [server] users
    Passwd,
    /// Interactive SQL shell over the lake (or a server with --connect); reads stdin when piped
    Repl(repl::ReplArgs),
    /// Run a cluster scheduler (Apache DataFusion Ballista) for this project's lake
    Scheduler(cluster::SchedulerArgs),
    /// Run a cluster executor for this project's lake, joining the scheduler of --cluster
    Executor(cluster::ExecutorArgs),
    /// Look at the cluster of --cluster or [cluster] scheduler
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

#[derive(Debug, clap::Args)]
pub struct GenerateCommand {
    #[command(flatten)]
    pub args: GenerateArgs,
    /// Also publish the clickstream events, one message each, to a NATS JetStream subject:
    /// nats://host:port/<stream>/<subject> (the stream is created when missing)
    #[arg(long, value_name = "URL")]
    pub publish_events: Option<land::stream::nats::PublishTarget>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// Nodes to include, dbt syntax: name, name+, +name, tag:x, path:models/silver, ...
    #[arg(short = 's', long = "select", num_args = 1..)]
    pub select: Vec<String>,
    /// Nodes to leave out (same syntax)
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<String>,
    /// Project variables as a YAML or JSON mapping, e.g. '{start_date: "2026-01-01"}'
    #[arg(long)]
    pub vars: Option<String>,
    /// Fail when the project sets a key Strata does not apply (otherwise a warning; also
    /// `[project] strict = true`)
    #[arg(long)]
    pub strict: bool,
}

/// `--state` and `--defer`, for the commands that select and build or compile nodes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StateArgs {
    /// A folder holding a manifest.json saved earlier (Strata's or dbt's): what `state:`
    /// selectors compare with, and --defer resolves refs through
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Refs to nodes this command does not build and the lake lacks read the relation the
    /// --state manifest names for them
    #[arg(long, requires = "state")]
    pub defer: bool,
}

/// A selection that may compare with a saved manifest (`ls`, `compile`, `docs generate`).
#[derive(Debug, Clone, clap::Args)]
pub struct StateSelectArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// Project variables for the retry, instead of the last run's
    #[arg(long)]
    pub vars: Option<String>,
    /// Nodes built at once, instead of the last run's
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Write target/catalog.json (the columns and row counts of the built relations and the
    /// sources) and target/manifest.json
    Generate(StateSelectArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// Rebuild incremental models from scratch
    #[arg(long)]
    pub full_refresh: bool,
    /// Nodes built at once (default: the number of cores)
    #[arg(long)]
    pub threads: Option<usize>,
    /// run and build: keep running, rebuilding what reads newly landed bronze data, until
    /// Ctrl-C or SIGTERM
    #[arg(long)]
    pub watch: bool,
    /// How often --watch looks for newly landed data (5s, 1m)
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, requires = "watch")]
    pub interval: std::time::Duration,
    /// Microbatch models build the batches from this time (a backfill: 2026-01-01, or
    /// 2026-01-01 10:00:00; UTC)
    #[arg(long, value_parser = event_time)]
    pub event_time_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Microbatch models build the batches up to this time (exclusive)
    #[arg(long, value_parser = event_time)]
    pub event_time_end: Option<chrono::DateTime<chrono::Utc>>,
    /// test and build: every data test keeps its failing rows in the audit schema, as if
    /// configured `store_failures: true` (a test's own config still decides)
    #[arg(long)]
    pub store_failures: bool,
}

/// A `--event-time-*` value.
pub(crate) fn event_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::run::incremental::config::parse_time(text).ok_or_else(|| {
        format!("'{text}' is not a date (2026-01-01) or a timestamp (2026-01-01 10:00:00)")
    })
}

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// SQL to run (several statements separated by `;`)
    #[arg(
        short = 'c',
        long = "command",
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    pub command: Option<String>,
    /// A file of SQL statements to run
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// How results are printed
    #[arg(long, value_enum, default_value_t = Format::Aligned)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ExploreArgs {
    /// A table (`bronze.shop_orders`) or a raw path or glob (`drop/orders/*.csv`)
    pub target: String,
    /// How the profile is printed
    #[arg(long, value_enum, default_value_t = Format::Aligned)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct LandArgs {
    /// Land only these sources or tables (`source` or `source.table`); repeatable
    #[arg(short = 's', long = "select")]
    pub select: Vec<String>,
    /// Files copied at once (default from strata.toml, else 8)
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Keep running: land each source on its `schedule` (sources.yml), the others every
    /// --interval, until Ctrl-C or SIGTERM (a second one abandons the batch at hand)
    #[arg(long)]
    pub watch: bool,
    /// How often --watch lands sources without a schedule (30s, 5m, 1h)
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, requires = "watch")]
    pub interval: std::time::Duration,
}

pub async fn run(cli: Cli) -> Result<()> {
    let config = || {
        let config = load_config(&cli.project_dir, cli.lake.as_deref())?;
        match &cli.cluster {
            Some(url) => Ok(Config {
                cluster: config.cluster.clone().with_scheduler(url, "--cluster")?,
                ..config
            }),
            None => Ok(config),
        }
    };
    let Some(command) = &cli.command else {
        return repl::open_default(&config).await;
    };
    match command {
        Command::Generate(command) => run_generate(command).await,
        Command::Land(args) => run_land(&config()?, args).await,
        Command::Sql(args) => run_sql(&config()?, args).await,
        Command::Explore(args) => run_explore(&config()?, args).await,
        Command::Compile(args) => models::compile(&config()?, args).await,
        Command::Ls(args) => models::list(&config()?, args),
        Command::Show(args) => show::show(&config()?, args).await,
        Command::Source(command) => freshness::source(&config()?, command).await,
        Command::Retry(args) => retry::retry(&config()?, args).await,
        Command::Docs(DocsCommand::Generate(args)) => models::docs_generate(&config()?, args).await,
        Command::Deps => models::deps(&config()?).await,
        Command::Run(args) => models::run(&config()?, args, run::RunCommand::Run).await,
        Command::Test(args) => models::run(&config()?, args, run::RunCommand::Test).await,
        Command::Seed(args) => models::run(&config()?, args, run::RunCommand::Seed).await,
        Command::Snapshot(args) => models::run(&config()?, args, run::RunCommand::Snapshot).await,
        Command::Build(args) => models::run(&config()?, args, run::RunCommand::Build).await,
        Command::Serve(args) => serve::serve(&config()?, args).await,
        Command::Passwd => serve::passwd(),
        Command::Repl(args) => repl::repl(&config, args).await,
        Command::Scheduler(args) => cluster::run_scheduler(&config()?, args).await,
        Command::Executor(args) => cluster::run_executor(&config()?, args).await,
        Command::Cluster(command) => cluster::run_cluster(&config()?, command).await,
    }
}

/// The session over the configured lake that `explore` and the model commands query.
pub(crate) async fn open_session(config: &Config) -> Result<datafusion::prelude::SessionContext> {
    Ok(open_lake_session(config).await?.0)
}

/// The session over the configured lake and the lake itself (time travel reads it).
async fn open_lake_session(config: &Config) -> Result<(datafusion::prelude::SessionContext, Lake)> {
    let lake = Lake::open(config.lake.clone())?;
    let ctx = session::context(config, &lake)
        .await
        .with_context(|| format!("opening the lake at {}", config.lake))?;
    Ok((ctx, lake))
}

async fn run_sql(config: &Config, args: &SqlArgs) -> Result<()> {
    let (text, origin) = match (&args.command, &args.file) {
        (Some(sql), _) => (sql.clone(), "-c".to_string()),
        (None, Some(file)) => (
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
            file.display().to_string(),
        ),
        (None, None) => bail!("give SQL with -c or a file with -f"),
    };
    let (ctx, lake) = open_lake_session(config).await?;
    let statements = sql::split_statements(&text).with_context(|| origin.clone())?;
    let mut out = std::io::stdout().lock();
    // `SET strata.as_of_run` pins the script's later statements, as in a server session.
    let mut pins = None;
    for (i, statement) in statements.into_iter().enumerate() {
        let outcome = sql::run_statement(&ctx, &lake, &mut pins, statement)
            .await
            .with_context(|| format!("{origin}: statement {}", i + 1))?;
        // Statements without a result (CREATE VIEW, SET) print nothing, as in psql -q.
        if !outcome.schema.fields().is_empty() {
            print_result(&mut out, &outcome.schema, &outcome.batches, args.format)?;
        }
    }
    Ok(())
}

async fn run_explore(config: &Config, args: &ExploreArgs) -> Result<()> {
    let ctx = open_session(config).await?;
    let relation = if args.target.contains('/') || format_of(&args.target).is_some() {
        format!("'{}'", args.target.replace('\'', "''"))
    } else {
        args.target.clone()
    };
    let profile = explore::profile(&ctx, &relation)
        .await
        .with_context(|| format!("exploring {}", args.target))?;
    print_result(
        &mut std::io::stdout().lock(),
        &profile.schema(),
        &[profile],
        args.format,
    )?;
    Ok(())
}

/// Prints a statement's rows with the REPL's renderer.
fn print_result(
    out: &mut dyn std::io::Write,
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::record_batch::RecordBatch],
    format: Format,
) -> Result<()> {
    let set = ResultSet::from_batches(schema.fields(), batches)?;
    render(out, &set, &Style::for_stdout(format))?;
    Ok(())
}

fn load_config(project_dir: &std::path::Path, lake: Option<&str>) -> Result<Config> {
    let dir = std::path::absolute(project_dir)
        .with_context(|| format!("project directory {}", project_dir.display()))?;
    Ok(Config::load(&dir, lake)?)
}

async fn run_generate(command: &GenerateCommand) -> Result<()> {
    let args = &command.args;
    let manifest = generate::generate(args)
        .with_context(|| format!("generating into {}", args.out.display()))?;
    let records: u64 = manifest.files.iter().map(|f| f.records).sum();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "Generated {} files, {records} records, {} in {} (manifest.json lists each file's rows and dirt)",
        manifest.files.len(),
        human_bytes(bytes),
        args.out.display()
    );
    if let Some(target) = &command.publish_events {
        let published = generate::publish_events(&manifest, &args.out, target).await?;
        println!(
            "Published {} events to {target} ({} more were already there: same message ids)",
            published.stored, published.repeats
        );
    }
    Ok(())
}

async fn run_land(config: &Config, args: &LandArgs) -> Result<()> {
    let lake = Lake::open(config.lake.clone())?;
    let opts = LandOptions {
        selectors: args.select.clone(),
        concurrency: args.concurrency.unwrap_or(config.land.concurrency),
        show_progress: std::io::stderr().is_terminal(),
    };
    if args.watch {
        return watch_land(config, &lake, &opts, args.interval).await;
    }
    println!("Landing into {}", config.lake);
    let report = land::land(config, &lake, &opts)
        .await
        .with_context(|| format!("landing into {}", config.lake))?;
    print_land_report(&report);
    if !report.failures.is_empty() {
        bail!(
            "{} file(s) or source(s) failed to land",
            report.failures.len()
        );
    }
    Ok(())
}

/// `land --watch`: lands until stopped; a failed landing is reported and the next one tried.
async fn watch_land(
    config: &Config,
    lake: &Lake,
    opts: &LandOptions,
    interval: std::time::Duration,
) -> Result<()> {
    let watch = land::watch::Watch::new(config, lake, opts, interval)
        .with_context(|| format!("watching the sources of {}", config.lake))?;
    let stop = stop_on_signals("land --watch")?;
    println!(
        "Watching the sources for new data, landing into {} (Ctrl-C to stop)",
        config.lake
    );
    let stopped = watch
        .run(stop, |due, outcome| {
            let now = chrono::Utc::now().format("%H:%M:%S");
            match outcome {
                // Quiet when a batch found nothing new, as a watch mostly does.
                Ok(report)
                    if report.failures.is_empty()
                        && report.orphans_removed == 0
                        && report.tables.iter().all(|t| t.landed == 0) => {}
                Ok(report) => {
                    println!("{now} landing {}", due.join(", "));
                    print_land_report(&report);
                }
                Err(e) => eprintln!("{now} ERROR landing {}: {e}", due.join(", ")),
            }
        })
        .await;
    match stopped {
        land::watch::Stopped::Finished => println!("Stopped"),
        land::watch::Stopped::Abandoned => {
            println!("Stopped; the batch at hand was abandoned and lands again next time")
        }
        land::watch::Stopped::NothingScheduled => {
            println!("Stopped: no selected source is scheduled to land again")
        }
    }
    Ok(())
}

/// Ctrl-C and SIGTERM as stop requests for a watching command, each one acknowledged.
pub(crate) fn stop_on_signals(command: &'static str) -> Result<crate::stop::Stop> {
    crate::stop::on_signals(move |n| {
        if n == 1 {
            eprintln!("{command}: stopping after the batch at hand (again to abandon it)");
        } else {
            eprintln!("{command}: abandoning the batch at hand");
        }
    })
    .context("installing the Ctrl-C and SIGTERM handlers")
}

fn print_land_report(report: &LandReport) {
    if report.orphans_removed > 0 {
        println!(
            "Removed {} file(s) an interrupted earlier run left unlogged; they land again now",
            report.orphans_removed
        );
    }
    let width = report
        .tables
        .iter()
        .map(|t| t.source.len() + t.table.len() + 1)
        .max()
        .unwrap_or(0);
    for t in &report.tables {
        let name = format!("{}.{}", t.source, t.table);
        println!(
            "  {name:<width$}  {:>5} offered  {:>5} landed  {:>5} already landed  {:>10}",
            t.offered,
            t.landed,
            t.skipped,
            human_bytes(t.bytes)
        );
    }
    for f in &report.failures {
        eprintln!("ERROR {}.{}: {}", f.source, f.table, f.error);
    }
    let landed: usize = report.tables.iter().map(|t| t.landed).sum();
    let skipped: usize = report.tables.iter().map(|t| t.skipped).sum();
    println!(
        "Done (batch {}): {landed} landed, {skipped} already landed, {} failed",
        report.batch_id,
        report.failures.len()
    );
}

fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}
