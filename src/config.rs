//! Project configuration: `strata.toml` at the project root, with environment overrides.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::lake::LakeRoot;
use crate::lake::s3::S3Settings;

/// The file that marks a Strata project's root.
pub const CONFIG_FILE: &str = "strata.toml";
/// Overrides `[lake] root` from the environment (for CI and for pointing one project at HDFS).
pub const LAKE_ENV: &str = "STRATA_LAKE";
/// Overrides `[cluster] scheduler` from the environment (the CLI's `--cluster` reads it too).
pub const CLUSTER_ENV: &str = "STRATA_CLUSTER";
/// Port of a scheduler's gRPC service when its URL names none (Ballista's default).
pub const SCHEDULER_PORT: u16 = 50050;
/// Port of a scheduler's status endpoint when `[cluster] status` names none.
pub const STATUS_PORT: u16 = 50080;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid lake root {root:?} (from {origin}): {reason}")]
    LakeRoot {
        root: String,
        origin: String,
        reason: String,
    },
    #[error("invalid cluster {key} {value:?} (from {origin}): {reason}")]
    Cluster {
        key: &'static str,
        value: String,
        origin: String,
        reason: String,
    },
}

/// The resolved configuration every command starts from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding `strata.toml`; relative paths in the project resolve against it.
    pub project_dir: PathBuf,
    pub lake: LakeRoot,
    pub land: LandConfig,
    pub server: ServerConfig,
    pub cluster: ClusterConfig,
    pub sql: SqlConfig,
    pub project: ProjectConfig,
}

/// `[sql]`: the local engine (`strata sql`, `repl`, `explore`, `run`, `build`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    /// Folders raw reads are confined to, besides the lake, the source folders and the
    /// project directory. Absent: any local file the user can read, as in DuckDB.
    pub read_roots: Option<Vec<PathBuf>>,
}

/// `[project]`: how the dbt project is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    /// A config key Strata does not apply is an error rather than a warning (`--strict`).
    pub strict: bool,
}

/// `[cluster]`: where queries run. Without a scheduler, in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Ballista scheduler queries run on (`df://host:port`).
    pub scheduler: Option<url::Url>,
    /// The scheduler's status endpoint (`http://host:port`).
    pub status: Option<url::Url>,
}

impl ClusterConfig {
    /// Runs queries on the scheduler at `url` (`df://host[:port]`); `origin` names where the
    /// URL came from in errors.
    pub fn with_scheduler(mut self, url: &str, origin: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Cluster {
            key: "scheduler",
            value: url.to_string(),
            origin: origin.to_string(),
            reason,
        };
        let mut parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if parsed.scheme() != "df" {
            return Err(invalid("a scheduler URL is df://host:port".into()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL names no host".into()));
        }
        if parsed.port().is_none() {
            parsed
                .set_port(Some(SCHEDULER_PORT))
                .map_err(|()| invalid("the URL cannot take a port".into()))?;
        }
        self.scheduler = Some(parsed);
        Ok(self)
    }

    /// The status endpoint: `[cluster] status`, else the scheduler's host on [`STATUS_PORT`].
    pub fn status_url(&self) -> Option<url::Url> {
        if let Some(status) = &self.status {
            return Some(status.clone());
        }
        let host = self.scheduler.as_ref()?.host_str()?.to_string();
        url::Url::parse(&format!("http://{host}:{STATUS_PORT}")).ok()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ClusterSection {
    scheduler: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LandConfig {
    /// The sources declaration, relative to the project directory.
    pub sources: PathBuf,
    /// How many files are copied into the lake at once.
    pub concurrency: usize,
}

impl Default for LandConfig {
    fn default() -> Self {
        Self {
            sources: PathBuf::from("catalog/sources.yml"),
            concurrency: 8,
        }
    }
}

/// `[server]`: how `strata serve` listens and what it allows.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the PostgreSQL listener. Any non-loopback address requires password auth.
    pub listen: String,
    /// Logged-in connections beyond this many are refused with SQLSTATE 53300 (connections
    /// still logging in do not count; see `auth_timeout_ms`).
    pub max_connections: usize,
    /// A connection that has not logged in this long after connecting (milliseconds) is
    /// closed.
    pub auth_timeout_ms: u64,
    /// Default `statement_timeout` in milliseconds (0: none); sessions may `SET` their own.
    pub statement_timeout_ms: u64,
    /// A session idle this long (milliseconds, 0: never) is closed.
    pub idle_session_timeout_ms: u64,
    /// Memory one query may use for sorts, joins and aggregations, in MiB; beyond it the
    /// query fails (spilling where DataFusion can) and the server stays up.
    pub query_memory_mb: usize,
    /// Memory all queries together may use, in MiB; absent: half of the machine's memory.
    pub memory_mb: Option<usize>,
    /// Address of the Prometheus `/metrics` HTTP endpoint; none when absent.
    pub metrics_listen: Option<String>,
    /// `trust` (allowed on loopback listeners only) or `scram-sha-256`. Absent: trust on
    /// loopback, scram-sha-256 otherwise.
    pub auth: Option<String>,
    /// Users and their SCRAM-SHA-256 verifiers, as PostgreSQL stores them
    /// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`; `strata passwd` makes
    /// one). `STRATA_USERS` (`name=verifier;name=verifier`) adds to these.
    pub users: std::collections::BTreeMap<String, String>,
    /// PEM certificate chain and private key: TLS is offered when both are set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse clients that do not switch to TLS.
    pub tls_required: bool,
    /// Local folders raw reads may reach besides the lake and the source folders (the
    /// server's users are remote: nothing else is readable).
    pub read_roots: Vec<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5433".to_string(),
            max_connections: 100,
            auth_timeout_ms: 5000,
            statement_timeout_ms: 0,
            idle_session_timeout_ms: 0,
            query_memory_mb: 2048,
            memory_mb: None,
            metrics_listen: None,
            auth: None,
            users: Default::default(),
            tls_cert: None,
            tls_key: None,
            tls_required: false,
            read_roots: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    lake: LakeSection,
    land: LandConfig,
    server: ServerConfig,
    cluster: ClusterSection,
    sql: SqlConfig,
    project: ProjectConfig,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LakeSection {
    root: String,
    /// `[lake.s3]`: how to reach the service of an `s3://` root.
    s3: S3Settings,
}

impl Default for LakeSection {
    fn default() -> Self {
        Self {
            root: "./lake".to_string(),
            s3: S3Settings::default(),
        }
    }
}

impl Config {
    /// Loads `strata.toml` from `project_dir` (defaults when absent), then applies `STRATA_LAKE`
    /// and finally `lake_override` (the CLI's `--lake`), the most specific winning.
    pub fn load(project_dir: &Path, lake_override: Option<&str>) -> Result<Self, ConfigError> {
        let path = project_dir.join(CONFIG_FILE);
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<ConfigFile>(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                source: Box::new(e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let env_lake = std::env::var(LAKE_ENV).ok().filter(|v| !v.is_empty());
        let (root, origin) = match (lake_override, env_lake) {
            (Some(cli), _) => (cli.to_string(), "--lake".to_string()),
            (None, Some(env)) => (env, LAKE_ENV.to_string()),
            (None, None) => (file.lake.root, path.display().to_string()),
        };
        let mut lake =
            LakeRoot::parse(&root, project_dir).map_err(|reason| ConfigError::LakeRoot {
                root,
                origin,
                reason,
            })?;
        // The settings apply to whichever s3:// root is in force (STRATA_LAKE or --lake too).
        if let LakeRoot::S3(s3) = &mut lake {
            s3.settings = file.lake.s3;
        }
        let origin = path.display().to_string();
        let mut cluster = ClusterConfig::default();
        let env_cluster = std::env::var(CLUSTER_ENV).ok().filter(|v| !v.is_empty());
        match (env_cluster, &file.cluster.scheduler) {
            (Some(env), _) => cluster = cluster.with_scheduler(&env, CLUSTER_ENV)?,
            (None, Some(url)) => cluster = cluster.with_scheduler(url, &origin)?,
            (None, None) => {}
        }
        if let Some(status) = &file.cluster.status {
            let parsed = url::Url::parse(status).map_err(|e| ConfigError::Cluster {
                key: "status",
                value: status.clone(),
                origin: origin.clone(),
                reason: e.to_string(),
            })?;
            cluster.status = Some(parsed);
        }
        Ok(Self {
            project_dir: project_dir.to_path_buf(),
            lake,
            land: file.land,
            server: file.server,
            cluster,
            sql: file.sql,
            project: file.project,
        })
    }

    /// Resolves a project-relative path (absolute paths are kept).
    pub fn project_path(&self, path: &Path) -> PathBuf {
        self.project_dir.join(path)
    }
}
