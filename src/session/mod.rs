//! The one place a user's DataFusion session is built. Every command that plans or runs SQL
//! gets its context here, so Strata's planning rules, table functions and the catalog are
//! registered the same way everywhere (and a distributed session can replace it later). It
//! builds on the lake's own context ([`crate::lake::context`]: object stores, Delta support).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::catalog::{CatalogProvider, DynamicFileCatalog};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast;
use url::Url;

use crate::bronze::catalog::{Bronze, BronzeSchema};
use crate::bronze::functions::{self, RawPathTables};
use crate::bronze::paths::AllowedRoots;
use crate::cluster::client::ClusterPlanner;
use crate::config::Config;
use crate::lake::delta_files::ParquetReads;
use crate::lake::snapshots::Snapshots;
use crate::lake::{Lake, context};
use crate::land::{SourceKind, SourcesFile};
use crate::plan::{first_rows, json_reads, leaf_limits};
use crate::warehouse::LakeCatalog;

/// Name of the catalog Strata's schemas live in.
pub const CATALOG: &str = "strata";
/// Schema for session-local objects (temporary views).
pub const DEFAULT_SCHEMA: &str = crate::warehouse::catalog::PUBLIC;

/// A session over `lake` (see [`context::state_builder`]) with Strata's planning: spans on
/// parse errors, `information_schema`, PostgreSQL's type names and JSON functions, and the
/// rules in [`crate::plan`]. Users' sessions add the catalog to it. With a `cluster` (a
/// scheduler's `df://` URL), queries that read lake files run there ([`ClusterPlanner`]), and
/// Delta tables are read as the Parquet files they resolve to, which can travel.
fn bare_context(
    lake: &Lake,
    runtime: Arc<RuntimeEnv>,
    cluster: Option<&Url>,
    reads: Reads,
) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema(CATALOG, DEFAULT_SCHEMA);
    // Planning errors then carry the line and column they refer to.
    config.options_mut().sql_parser.collect_spans = true;
    if reads == Reads::Lookups && cluster.is_none() {
        config = config.with_extension(Arc::new(ParquetReads { remote: false }));
        // A point lookup decodes the filtered column first and only the matching rows of
        // the others.
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
    }
    if cluster.is_some() {
        config = config.with_extension(Arc::new(ParquetReads { remote: true }));
        // The scheduler may swap a join's inputs when it plans stages, which a join whose
        // dynamic filter was already built here refuses (and the job then never ends).
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.enable_dynamic_filter_pushdown = false;
        optimizer.enable_join_dynamic_filter_pushdown = false;
    }
    let builder = context::state_builder(config, runtime)
        .with_type_planner(Arc::new(PostgresTypes))
        .with_analyzer_rule(Arc::new(json_reads::SharedJsonReads))
        .with_optimizer_rule(Arc::new(first_rows::FirstRows))
        .with_physical_optimizer_rules(physical_rules(cluster.is_none()));
    let mut state = builder.build();
    // JSON functions and PostgreSQL's `->` / `->>` operators: bronze keeps nested JSON as
    // text, and models and analysts read into it.
    datafusion_functions_json::register_all(&mut state)
        .expect("registering the JSON functions in a new session cannot fail");
    if let Some(scheduler) = cluster {
        // Executors know the functions this session has now (the same code builds theirs).
        let functions = state.scalar_functions().keys().cloned().collect::<Vec<_>>();
        let planner = ClusterPlanner::new(context::local_planner(), scheduler.clone(), functions);
        state = SessionStateBuilder::new_from_existing(state)
            .with_query_planner(Arc::new(planner))
            .build();
    }
    context::over_lake(lake, state)
}

/// DataFusion's physical rules, with [`leaf_limits::LeafLimits`] just before the limit
/// pushdown it corrects and, in process, the per-partition top-K on where it is exact (its
/// operator has no protobuf form yet, so a cluster could not be sent it).
fn physical_rules(in_process: bool) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    if in_process {
        first_rows::guard_window_top_n(&mut rules);
    }
    let at = rules
        .iter()
        .position(|r| r.name() == leaf_limits::LIMIT_PUSHDOWN)
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(leaf_limits::LeafLimits));
    rules
}

/// Field metadata naming the PostgreSQL type of a text column Arrow has no type for
/// (`json`, `jsonb`, `uuid`): the server reports and encodes such columns as that type.
pub const PG_TYPE_KEY: &str = "strata.pg_type";

/// SQL types DataFusion does not know, as clients write them: `::json`, `::jsonb` and `::uuid`
/// are text marked with their PostgreSQL type.
#[derive(Debug)]
struct PostgresTypes;

impl TypePlanner for PostgresTypes {
    fn plan_type_field(
        &self,
        sql_type: &ast::DataType,
    ) -> datafusion::common::Result<Option<FieldRef>> {
        let name = match sql_type {
            ast::DataType::JSON => "json",
            ast::DataType::JSONB => "jsonb",
            ast::DataType::Uuid => "uuid",
            _ => return Ok(None),
        };
        let field = Field::new("", DataType::Utf8, true)
            .with_metadata([(PG_TYPE_KEY.to_string(), name.to_string())].into());
        Ok(Some(Arc::new(field)))
    }
}

/// Type planners tried in order (DataFusion takes one per session).
#[derive(Debug)]
struct TypePlanners(Vec<Arc<dyn TypePlanner>>);

impl TypePlanner for TypePlanners {
    fn plan_type_field(
        &self,
        sql_type: &ast::DataType,
    ) -> datafusion::common::Result<Option<FieldRef>> {
        for planner in &self.0 {
            if let Some(field) = planner.plan_type_field(sql_type)? {
                return Ok(Some(field));
            }
        }
        Ok(None)
    }
}

/// `state` with `planner` for the SQL types Strata's own planner leaves (the server's
/// `regclass`, `oid`, ...).
pub fn with_type_planner(state: SessionState, planner: Arc<dyn TypePlanner>) -> SessionState {
    SessionStateBuilder::new_from_existing(state)
        .with_type_planner(Arc::new(TypePlanners(vec![
            Arc::new(PostgresTypes),
            planner,
        ])))
        .build()
}

/// The full session a local user queries (`strata sql`, the REPL, the model commands): the
/// `bronze` schema over landed raw files, the raw-read table functions and bare quoted paths
/// over any local file the user can read (or, with `[sql] read_roots`, only the lake, the
/// source folders, the project directory and those roots).
pub async fn context(config: &Config, lake: &Lake) -> Result<SessionContext, DataFusionError> {
    Sessions::local(config, lake).await?.context(None).await
}

/// What a session's queries mostly are, which decides how it reads Delta tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Building and exploring: Delta tables through delta-rs.
    Scans,
    /// Many small queries (the server): each Delta table version as the Parquet files it
    /// resolves to, planned from a file list made once per version, with the rows a filter
    /// keeps decoded alone.
    Lookups,
}

/// Makes user sessions over one lake, sharing what is costly to load: the bronze layer's
/// ingest log and inferred schemas, Delta snapshots, Parquet footers and page indexes, and
/// the registered object stores. The server makes one session per connection.
#[derive(Debug, Clone)]
pub struct Sessions {
    lake: Lake,
    bronze: Arc<Bronze>,
    /// The runtime whose file-metadata cache and object stores every session shares.
    runtime: Arc<RuntimeEnv>,
    reads: Reads,
    /// Delta tables as last loaded, re-read only when a commit has happened since.
    snapshots: Arc<Snapshots>,
    /// The scheduler queries run on, if not in this process.
    cluster: Option<Url>,
}

impl Sessions {
    /// The server's sessions: raw reads confined to the lake, the declared source folders and
    /// `[server] read_roots`, as its users are remote.
    pub async fn new(config: &Config, lake: &Lake) -> Result<Self, DataFusionError> {
        let sessions = Self::with_roots(config, lake, |folders| {
            let mut folders = folders;
            folders.extend(config.server.read_roots.iter().cloned());
            AllowedRoots::new(&config.project_dir, config.lake.clone(), folders)
        })
        .await?;
        Ok(Self {
            reads: Reads::Lookups,
            ..sessions
        })
    }

    /// A local user's sessions: see [`context`].
    pub async fn local(config: &Config, lake: &Lake) -> Result<Self, DataFusionError> {
        Self::with_roots(config, lake, |folders| match &config.sql.read_roots {
            Some(roots) => {
                let mut folders = folders;
                folders.push(PathBuf::new());
                folders.extend(roots.iter().cloned());
                AllowedRoots::new(&config.project_dir, config.lake.clone(), folders)
            }
            None => AllowedRoots::anywhere(&config.project_dir, config.lake.clone()),
        })
        .await
    }

    /// Sessions whose raw reads `roots` allows, given the declared source folders.
    async fn with_roots(
        config: &Config,
        lake: &Lake,
        roots: impl FnOnce(Vec<PathBuf>) -> AllowedRoots,
    ) -> Result<Self, DataFusionError> {
        let sources_path = config.project_path(&config.land.sources);
        let declaration = if sources_path.exists() {
            Some(
                SourcesFile::load(&sources_path)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
            )
        } else {
            None
        };
        let folders: Vec<PathBuf> = declaration
            .iter()
            .flat_map(|d| &d.sources)
            .filter_map(|s| match &s.kind {
                SourceKind::Folder { location, .. } => Some(location.clone()),
                SourceKind::Postgres { .. }
                | SourceKind::Http { .. }
                | SourceKind::S3 { .. }
                | SourceKind::Nats { .. } => None,
            })
            .collect();
        let roots = roots(folders);
        let bronze = Arc::new(Bronze::new(lake.clone(), declaration.as_ref(), roots));
        Ok(Self {
            lake: lake.clone(),
            bronze,
            snapshots: Arc::default(),
            runtime: Arc::new(RuntimeEnv::default()),
            reads: Reads::Scans,
            cluster: config.cluster.scheduler.clone(),
        })
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// A new session; with `memory` (a pool that says no past its limits), its queries fail
    /// rather than use more for sorts, joins and aggregations (spilling to disk first where
    /// DataFusion can).
    pub async fn context(
        &self,
        memory: Option<Arc<dyn MemoryPool>>,
    ) -> Result<SessionContext, DataFusionError> {
        let runtime = match memory {
            Some(pool) => {
                let shared = &self.runtime;
                let footers = shared.cache_manager.get_file_metadata_cache();
                RuntimeEnvBuilder::new()
                    .with_memory_pool(pool)
                    .with_object_store_registry(Arc::clone(&shared.object_store_registry))
                    .with_cache_manager(
                        CacheManagerConfig::default()
                            .with_file_metadata_cache(Some(footers))
                            .with_metadata_cache_limit(
                                shared.cache_manager.get_metadata_cache_limit(),
                            ),
                    )
                    .build_arc()?
            }
            None => Arc::clone(&self.runtime),
        };
        self.bronze.refresh().await?;
        let lake = &self.lake;
        let ctx = bare_context(lake, runtime, self.cluster.as_ref(), self.reads);
        let catalog = Arc::new(LakeCatalog::new(
            lake.clone(),
            Arc::clone(&self.snapshots),
            Arc::new(BronzeSchema(Arc::clone(&self.bronze))),
        ));
        catalog.refresh().await?;
        ctx.register_catalog(CATALOG, Arc::clone(&catalog) as Arc<dyn CatalogProvider>);
        functions::register(&ctx, &self.bronze);

        // Unknown quoted names in FROM are tried as raw paths (like DuckDB and datafusion-cli).
        let state = ctx.state();
        let catalogs = Arc::new(DynamicFileCatalog::new(
            Arc::clone(state.catalog_list()),
            Arc::new(RawPathTables(Arc::clone(&self.bronze))),
        ));
        let state = SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(catalogs)
            .build();
        let ctx = SessionContext::new_with_state(state);
        catalog.session().set(ctx.state_weak_ref());
        Ok(ctx)
    }
}

/// Tunes `ctx` for building models. Raw reads and aggregates carry no statistics, so DataFusion
/// would hash-repartition both inputs of each join over them, copying every column of the
/// large side once more (a third of `stg_events`' join time). Collecting the build side
/// instead skips that copy; the silver models' build sides are small sets of repeated keys,
/// and where Delta tables give statistics the smaller input is still the one collected.
pub fn tune_for_builds(ctx: &SessionContext) {
    let state = ctx.state_ref();
    let mut state = state.write();
    state.config_mut().options_mut().optimizer.repartition_joins = false;
}
