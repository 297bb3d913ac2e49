//! `strata scheduler`: Ballista's scheduler with Strata's codec and functions, and the status
//! endpoint of [`super::status`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use ballista_core::utils::default_session_builder;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;

use super::codec::StrataCodec;
use super::{ClusterError, status};
use crate::lake::Lake;

/// How a scheduler listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Address the gRPC service binds to.
    pub bind: String,
    /// gRPC port executors and clients connect to (0: any free port).
    pub port: u16,
    /// The host name executors reach this scheduler by (default: the bind address).
    pub external_host: Option<String>,
    /// Port of the status endpoint (0: any free port).
    pub status_port: u16,
    /// Seconds without a heartbeat after which an executor is taken for dead and its tasks
    /// run elsewhere (longer than the executors' heartbeat interval).
    pub executor_timeout: u64,
}

/// Where a started scheduler listens.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub grpc: SocketAddr,
    pub status: SocketAddr,
}

/// Runs a scheduler until the process is stopped. Plans it decodes resolve functions in a
/// session with `functions`' UDFs and the lake's store; `on_listening` hears where it listens.
pub async fn run(
    options: &SchedulerOptions,
    lake: &Lake,
    functions: &SessionState,
    on_listening: impl FnOnce(Listening),
) -> Result<(), ClusterError> {
    let bind = |port| {
        let address = format!("{}:{port}", options.bind);
        async move {
            TcpListener::bind(&address)
                .await
                .map_err(|source| ClusterError::Bind { address, source })
        }
    };
    let grpc = bind(options.port).await?;
    let status_listener = bind(options.status_port).await?;
    let listening = Listening {
        grpc: grpc.local_addr().map_err(ClusterError::Io)?,
        status: status_listener.local_addr().map_err(ClusterError::Io)?,
    };

    let session_builder = {
        let (store_url, store) = (lake.store_url(), Arc::clone(lake.base_store()));
        let udfs: Vec<_> = functions.scalar_functions().values().cloned().collect();
        let udafs: Vec<_> = functions.aggregate_functions().values().cloned().collect();
        Arc::new(move |config: SessionConfig| {
            let mut state = default_session_builder(config)?;
            for udf in &udfs {
                state.register_udf(Arc::clone(udf))?;
            }
            for udaf in &udafs {
                state.register_udaf(Arc::clone(udaf))?;
            }
            state
                .runtime_env()
                .register_object_store(&store_url, Arc::clone(&store));
            Ok(state)
        })
    };
    let config = SchedulerConfig {
        bind_host: options.bind.clone(),
        bind_port: listening.grpc.port(),
        external_host: options
            .external_host
            .clone()
            .unwrap_or_else(|| listening.grpc.ip().to_string()),
        override_physical_codec: Some(Arc::new(StrataCodec::default())),
        override_session_builder: Some(session_builder),
        executor_timeout_seconds: options.executor_timeout,
        expire_dead_executor_interval_seconds: (options.executor_timeout / 4).clamp(1, 15),
        no_executors_grace_period_seconds: options.executor_timeout,
        ..Default::default()
    };
    config.validate()?;
    let cluster = BallistaCluster::new_from_config(&config).await?;
    let scheduler =
        create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster.clone(), Arc::new(config))
            .await?;
    let status_app = axum::Router::new()
        .route("/status", get(serve_status))
        .with_state(cluster);
    on_listening(listening);
    tokio::select! {
        served = start_grpc_service_with_listener(grpc, scheduler) => served?,
        served = axum::serve(status_listener, status_app) => served.map_err(ClusterError::Io)?,
    }
    Ok(())
}

async fn serve_status(
    State(cluster): State<BallistaCluster>,
) -> Result<Json<status::ClusterStatus>, (StatusCode, String)> {
    status::collect(&cluster)
        .await
        .map(Json)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
