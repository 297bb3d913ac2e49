//! `strata executor`: Ballista's executor with Strata's codec, functions and the lake's object
//! store. A store registered in a client's session does not reach executors, so each executor
//! opens the lake from its own `strata.toml` (credentials stay in each process's environment;
//! nothing secret travels in plans or session settings).

use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::RuntimeProducer;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use url::Url;

use super::ClusterError;
use super::codec::StrataCodec;
use crate::lake::Lake;

/// How an executor listens and how much it takes on.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler it registers with (`df://host:port`).
    pub scheduler: Url,
    /// Address its services bind to.
    pub bind: String,
    /// The host name the scheduler and other executors reach it by (default: the bind address).
    pub external_host: Option<String>,
    /// Arrow Flight port: shuffle data and results are read from it.
    pub flight_port: u16,
    /// gRPC port the scheduler sends tasks to.
    pub grpc_port: u16,
    /// Where shuffle files and spills go (default: a new temporary directory).
    pub work_dir: Option<PathBuf>,
    /// Tasks it runs at once.
    pub concurrent_tasks: usize,
    /// Seconds between its heartbeats to the scheduler.
    pub heartbeat_interval: u64,
}

/// Runs an executor until the process is stopped (Ctrl-C, SIGTERM) or the scheduler stops it.
pub async fn run(
    options: &ExecutorOptions,
    lake: &Lake,
    functions: &SessionState,
) -> Result<(), ClusterError> {
    let work_dir = match &options.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| ClusterError::WorkDir {
                path: dir.clone(),
                source,
            })?;
            Some(dir.display().to_string())
        }
        None => None,
    };
    let runtime: RuntimeProducer = {
        let (store_url, store) = (lake.store_url(), Arc::clone(lake.base_store()));
        let temp = work_dir.clone();
        Arc::new(move |_: &SessionConfig| {
            let mut builder = RuntimeEnvBuilder::new();
            if let Some(dir) = &temp {
                builder = builder.with_temp_file_path(dir);
            }
            let runtime = builder.build()?;
            runtime.register_object_store(&store_url, Arc::clone(&store));
            Ok(Arc::new(runtime))
        })
    };
    let config = ExecutorProcessConfig {
        bind_host: options.bind.clone(),
        external_host: options.external_host.clone(),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host: options
            .scheduler
            .host_str()
            .unwrap_or("localhost")
            .to_string(),
        scheduler_port: options
            .scheduler
            .port()
            .unwrap_or(crate::config::SCHEDULER_PORT),
        vcores: options.concurrent_tasks,
        executor_heartbeat_interval_seconds: options.heartbeat_interval,
        work_dir,
        override_runtime_producer: Some(runtime),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(functions))),
        override_physical_codec: Some(Arc::new(StrataCodec::default())),
        ..Default::default()
    };
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}
