//! `strata scheduler`, `strata executor` and `strata cluster status`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use datafusion::execution::SessionState;

use crate::cluster::executor::{self, ExecutorOptions};
use crate::cluster::scheduler::{self, SchedulerOptions};
use crate::cluster::status;
use crate::config::{ClusterConfig, Config, SCHEDULER_PORT, STATUS_PORT};
use crate::lake::Lake;
use crate::session;

#[derive(Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// gRPC port for executors and clients (0: any free port, printed at start)
    #[arg(long, default_value_t = SCHEDULER_PORT)]
    pub port: u16,
    /// Host name executors reach the scheduler by (default: the bind address)
    #[arg(long)]
    pub external_host: Option<String>,
    /// Port of the status endpoint `strata cluster status` reads (0: any free port)
    #[arg(long, default_value_t = STATUS_PORT)]
    pub status_port: u16,
    /// Seconds without a heartbeat before an executor is taken for dead and its tasks rerun
    /// elsewhere (keep it above the executors' --heartbeat-interval)
    #[arg(long, default_value_t = 180)]
    pub executor_timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Host name the scheduler and other executors reach this one by (default: the bind address)
    #[arg(long)]
    pub external_host: Option<String>,
    /// Arrow Flight port: shuffle data and results are read from it
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// gRPC port the scheduler sends tasks to
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,
    /// Directory for shuffle files and spills (default: a new temporary directory)
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Tasks run at once (default: the number of cores)
    #[arg(long)]
    pub concurrent_tasks: Option<usize>,
    /// Seconds between heartbeats to the scheduler
    #[arg(long, default_value_t = 60)]
    pub heartbeat_interval: u64,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// The executors, their task slots, and the latest jobs with the tasks each executor ran
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// How many of the latest jobs to list
    #[arg(long, default_value_t = 10)]
    pub jobs: usize,
    /// The scheduler's status endpoint (default: [cluster] status, else the scheduler's host
    /// on port 50080)
    #[arg(long, value_name = "URL")]
    pub status: Option<url::Url>,
}

/// The functions every process of a cluster knows: those of a session run in this process.
async fn functions(config: &Config, lake: &Lake) -> Result<SessionState> {
    let local = Config {
        cluster: ClusterConfig::default(),
        ..config.clone()
    };
    let ctx = session::context(&local, lake)
        .await
        .with_context(|| format!("opening the lake at {}", config.lake))?;
    Ok(ctx.state())
}

pub async fn run_scheduler(config: &Config, args: &SchedulerArgs) -> Result<()> {
    let lake = Lake::open(config.lake.clone())?;
    let functions = functions(config, &lake).await?;
    let options = SchedulerOptions {
        bind: args.bind.clone(),
        port: args.port,
        external_host: args.external_host.clone(),
        status_port: args.status_port,
        executor_timeout: args.executor_timeout,
    };
    scheduler::run(&options, &lake, &functions, |at| {
        println!(
            "Scheduler listening on df://{}, status on http://{}, lake {}",
            at.grpc, at.status, config.lake
        );
        let _ = std::io::stdout().flush();
    })
    .await
    .context("running the scheduler")
}

pub async fn run_executor(config: &Config, args: &ExecutorArgs) -> Result<()> {
    let scheduler = config.cluster.scheduler.clone().ok_or_else(|| {
        anyhow!("no scheduler to join: give --cluster df://host:port or [cluster] scheduler in strata.toml")
    })?;
    let lake = Lake::open(config.lake.clone())?;
    let functions = functions(config, &lake).await?;
    let options = ExecutorOptions {
        scheduler: scheduler.clone(),
        bind: args.bind.clone(),
        external_host: args.external_host.clone(),
        flight_port: args.port,
        grpc_port: args.grpc_port,
        work_dir: args.work_dir.clone(),
        concurrent_tasks: args
            .concurrent_tasks
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        heartbeat_interval: args.heartbeat_interval,
    };
    println!(
        "Executor on {}:{} joining {scheduler}, lake {}",
        args.bind, args.port, config.lake
    );
    let _ = std::io::stdout().flush();
    executor::run(&options, &lake, &functions)
        .await
        .with_context(|| format!("running the executor for {scheduler}"))
}

pub async fn run_cluster(config: &Config, command: &ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Status(args) => {
            let url = args.status.clone().or_else(|| config.cluster.status_url());
            let url = url.ok_or_else(|| {
                anyhow!("no cluster configured: give --cluster df://host:port or [cluster] scheduler in strata.toml")
            })?;
            let status = status::fetch(&url).await?;
            print!("{}", status::render(&status, args.jobs));
            Ok(())
        }
    }
}
