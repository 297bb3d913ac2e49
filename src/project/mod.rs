//! The dbt project parser: reads a dbt project (dbt-core 1.10/1.11 layout and semantics)
//! into a [`Project`] of nodes — models, seeds and data tests — plus sources, keyed by
//! dbt-style unique ids (`model.<project>.<name>`, ...).
//!
//! As in dbt, parsing renders every model and singular test once in "parse mode" (`execute`
//! false, `is_incremental()` false) to capture its `ref`s, `source`s and `config(...)`.
//! Templates are rendered by the [`crate::jinja`] runtime; compiling a node for execution is
//! `compile`'s job.

pub mod deps;
pub(crate) mod files;
pub mod freshness;
mod load;
pub(crate) mod node_config;
pub mod packages;
pub(crate) mod schema;
pub mod unsupported;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, Value};
use serde_json::{Value as Json, json};

use files::template_name;

use crate::jinja::{RenderError, Shared, Target};

/// Reads the dbt project in `dir` for the default target (`dev`, schema `main`).
/// `cli_vars` is dbt's `--vars`: a YAML or JSON mapping that overrides project vars.
pub fn load(dir: &Path, cli_vars: Option<&str>) -> Result<Project, ProjectError> {
    load_with_target(dir, cli_vars, &Target::default())
}

/// [`load`] for another target (whose schema is where unconfigured nodes go).
pub fn load_with_target(
    dir: &Path,
    cli_vars: Option<&str>,
    target: &Target,
) -> Result<Project, ProjectError> {
    load::load(dir, cli_vars, target)
}

/// dbt's `target-path` of the project in `dir` (where its artifacts are), relative to `dir`,
/// read from `dbt_project.yml` alone.
pub fn target_path(dir: &Path) -> Result<PathBuf, ProjectError> {
    load::target_path(dir)
}

/// A source table's key: its package, source name and table name.
pub type SourceKey = (String, String, String);

/// A parsed dbt project.
#[derive(Clone)]
pub struct Project {
    /// The directory holding `dbt_project.yml`.
    pub root: PathBuf,
    /// `name:` in `dbt_project.yml`.
    pub name: String,
    /// The installed packages whose nodes and macros were read, by name, with their folder
    /// (relative to `root`).
    pub packages: BTreeMap<String, PathBuf>,
    /// dbt's `target-path` (default `target`), relative to `root`: compiled SQL goes under it.
    pub target_path: PathBuf,
    /// The vars templates see: global project vars, then those scoped to this project,
    /// then `--vars`.
    pub vars: BTreeMap<String, Json>,
    /// Enabled models, seeds and tests by unique id.
    pub nodes: BTreeMap<String, Node>,
    /// Enabled source tables by package, source name and table name (dbt namespaces
    /// sources by package: two packages may each declare a source `shop`).
    pub sources: BTreeMap<SourceKey, SourceTable>,
    /// `{% docs %}` blocks by name.
    pub docs: BTreeMap<String, String>,
    /// Project macros (generic tests as `test_<name>`) by name, with their file.
    pub macros: BTreeMap<String, PathBuf>,
    /// The target the project was parsed for.
    pub target: Target,
    /// Things dbt would warn about (properties for a missing model, tests skipped because
    /// what they test is disabled).
    pub warnings: Vec<String>,
    /// Keys the project sets that Strata does not apply, each once, in file order.
    pub unsupported: Vec<unsupported::Unsupported>,
    /// The root project's `on-run-start` hooks (SQL with Jinja, unrendered).
    pub on_run_start: Vec<String>,
    /// The root project's `on-run-end` hooks.
    pub on_run_end: Vec<String>,
    pub(crate) env: Arc<Environment<'static>>,
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Project {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Project")
            .field("root", &self.root)
            .field("name", &self.name)
            .field("packages", &self.packages)
            .field("target_path", &self.target_path)
            .field("vars", &self.vars)
            .field("nodes", &self.nodes)
            .field("sources", &self.sources)
            .field("docs", &self.docs)
            .field("macros", &self.macros)
            .field("target", &self.target)
            .field("warnings", &self.warnings)
            .field("unsupported", &self.unsupported)
            .field("on_run_start", &self.on_run_start)
            .field("on_run_end", &self.on_run_end)
            .finish_non_exhaustive()
    }
}

impl Project {
    /// The model, seed or snapshot `ref(name)` resolves to.
    pub fn by_name(&self, name: &str) -> Option<&Node> {
        ["model", "seed", "snapshot"]
            .iter()
            .find_map(|kind| self.nodes.get(&format!("{kind}.{}.{name}", self.name)))
    }

    /// The nodes of one kind, by unique id.
    pub fn nodes_of(&self, resource: Resource) -> impl Iterator<Item = &Node> {
        self.nodes.values().filter(move |n| n.resource == resource)
    }

    /// A source table by its unique id (`source.<project>.<source>.<table>`).
    pub fn source_by_id(&self, unique_id: &str) -> Option<&SourceTable> {
        self.sources.values().find(|s| s.unique_id == unique_id)
    }
}

/// What kind of node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Model,
    Seed,
    Test,
    /// A dbt snapshot: slowly changing dimension (type 2) history of a query.
    Snapshot,
}

impl Resource {
    /// dbt's `resource_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Model => "model",
            Resource::Seed => "seed",
            Resource::Test => "test",
            Resource::Snapshot => "snapshot",
        }
    }
}

/// How a node is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Materialized {
    View,
    Table,
    Incremental,
    /// Not built: inlined as a CTE into the nodes that reference it.
    Ephemeral,
    Seed,
    Test,
    Snapshot,
}

impl Materialized {
    pub fn as_str(self) -> &'static str {
        match self {
            Materialized::View => "view",
            Materialized::Table => "table",
            Materialized::Incremental => "incremental",
            Materialized::Ephemeral => "ephemeral",
            Materialized::Seed => "seed",
            Materialized::Test => "test",
            Materialized::Snapshot => "snapshot",
        }
    }
}

/// A data test's severity: whether failures fail the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Severity {
    Warn,
    #[default]
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// A node's effective config (folder < properties file < in-file `config()`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub materialized: Materialized,
    /// The schema the node's relation lives in (after `generate_schema_name`).
    pub schema: String,
    pub alias: Option<String>,
    pub tags: Vec<String>,
    pub unique_key: Vec<String>,
    pub enabled: bool,
    pub full_refresh: Option<bool>,
    pub severity: Severity,
    pub meta: BTreeMap<String, Json>,
    /// A generic test's `where:` filter on the tested relation.
    pub where_clause: Option<String>,
    /// Every other config key (`incremental_strategy`, `on_schema_change`, `pre_hook`, ...),
    /// as written.
    pub extra: BTreeMap<String, Json>,
}

/// A column's documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDoc {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    pub meta: BTreeMap<String, Json>,
    pub tags: Vec<String>,
    /// dbt's column `constraints:` as written (`{type: not_null}`, `{type: check, expression: ..}`).
    pub constraints: Vec<Json>,
}

/// A model, seed or data test.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub unique_id: String,
    pub name: String,
    pub resource: Resource,
    /// The package defining it: the project's name, or an installed package's.
    pub package: String,
    /// The file defining the node, relative to the project root (for a generic test, the
    /// properties file).
    pub path: PathBuf,
    /// dbt's fully qualified name: `[project, folders..., name]`.
    pub fqn: Vec<String>,
    /// The SQL/Jinja as written (a generic test's is dbt's macro call).
    pub raw_code: String,
    pub config: NodeConfig,
    /// Unique ids of the models/seeds it `ref`s (for a test, the tested node first).
    pub depends_on: Vec<String>,
    /// The source tables it reads.
    pub sources: Vec<SourceKey>,
    pub description: String,
    pub columns: Vec<ColumnDoc>,
    /// dbt's model-level `constraints:` as written.
    pub constraints: Vec<Json>,
    /// The properties file that described it, if any.
    pub patch_path: Option<PathBuf>,
    pub test: Option<TestInfo>,
}

impl Node {
    /// The relation's name: the alias, or the node's name.
    pub fn relation_name(&self) -> &str {
        self.config.alias.as_deref().unwrap_or(&self.name)
    }

    /// Whether the model's `contract: {enforced: true}`: its columns and their types are the
    /// ones its properties declare, checked before anything is written.
    pub fn contract_enforced(&self) -> bool {
        self.resource == Resource::Model
            && self
                .config
                .extra
                .get("contract")
                .and_then(|c| c.get("enforced"))
                .is_some_and(|e| e == &Json::Bool(true) || e.as_str() == Some("true"))
    }

    /// The unit test this node is, if it is one.
    pub fn unit_test(&self) -> Option<&UnitTest> {
        match &self.test.as_ref()?.kind {
            TestKind::Unit(unit) => Some(unit),
            _ => None,
        }
    }

    /// `model` (dbt's node object) as templates see it.
    pub(crate) fn model_value(&self) -> Value {
        Value::from_serialize(self.model_json())
    }

    /// dbt's `model` (the node as its templates and a run result's `node` see it), as JSON.
    pub(crate) fn model_json(&self) -> serde_json::Map<String, Json> {
        let columns: serde_json::Map<String, Json> = self
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    json!({"name": c.name, "description": c.description, "data_type": c.data_type}),
                )
            })
            .collect();
        let model = json!({
            "unique_id": self.unique_id,
            "name": self.name,
            "resource_type": self.resource.as_str(),
            "package_name": self.package,
            "original_file_path": template_name(&self.path),
            "path": template_name(&self.path),
            "fqn": self.fqn,
            "alias": self.relation_name(),
            "schema": self.config.schema,
            "tags": self.config.tags,
            "description": self.description,
            "config": self.config.to_json(),
            "columns": columns,
            "depends_on": {"nodes": self.depends_on},
        });
        match model {
            Json::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    }
}

/// What a test node tests and how.
#[derive(Debug, Clone, PartialEq)]
pub struct TestInfo {
    pub kind: TestKind,
    /// The unique id of the tested model, seed or source (`source.<project>.<src>.<table>`).
    pub attached_node: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TestKind {
    /// A test from a properties file: `name` is the generic test (`not_null`, a custom
    /// `{% test %}`), `args` its arguments other than `model` and `column_name`.
    Generic {
        name: String,
        /// The package whose test macro it calls (`dbt` for the built-in ones).
        package: String,
        column: Option<String>,
        args: BTreeMap<String, Json>,
    },
    /// A `.sql` file under the test paths.
    Singular,
    /// A `unit_tests:` entry: the model's SQL run on given rows, compared with expected rows.
    Unit(UnitTest),
}

/// A dbt unit test (dbt ≥ 1.8): inputs given as rows, the rows the model must return.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitTest {
    /// The unique id of the model tested.
    pub model: String,
    pub given: Vec<UnitGiven>,
    pub expect: Fixture,
    /// `overrides.vars`: vars as the model sees them in this test.
    pub vars: BTreeMap<String, Json>,
    /// `overrides.macros.is_incremental`: the branch the model takes.
    pub is_incremental: bool,
    /// `overrides.macros` but `is_incremental`: what a call of each returns.
    pub macros: BTreeMap<String, Json>,
    /// `overrides.env_vars`: what `env_var` answers.
    pub env_vars: BTreeMap<String, String>,
}

/// One `given:` input of a unit test.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitGiven {
    pub input: UnitInput,
    pub rows: Fixture,
}

/// What a given input stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitInput {
    /// `ref('name')` or `ref('package', 'name')`.
    Ref {
        package: Option<String>,
        name: String,
    },
    /// `source('source', 'table')`.
    Source { source: String, table: String },
    /// `this`: the model's own table, as an incremental run reads it.
    This,
}

impl fmt::Display for UnitInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitInput::Ref {
                package: Some(p),
                name,
            } => write!(f, "ref('{p}', '{name}')"),
            UnitInput::Ref {
                package: None,
                name,
            } => write!(f, "ref('{name}')"),
            UnitInput::Source { source, table } => write!(f, "source('{source}', '{table}')"),
            UnitInput::This => f.write_str("this"),
        }
    }
}

/// Rows of a unit test, in one of dbt's formats (fixture files already read).
#[derive(Debug, Clone, PartialEq)]
pub enum Fixture {
    /// `format: dict`: one mapping of column to value per row.
    Rows(Vec<serde_json::Map<String, Json>>),
    /// `format: csv`: a header line, then rows.
    Csv(String),
    /// `format: sql`: a query returning the rows.
    Sql(String),
}

/// A table of a declared source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTable {
    /// `source.<package>.<source>.<table>`.
    pub unique_id: String,
    /// The package declaring it.
    pub package: String,
    pub source_name: String,
    pub name: String,
    /// The table's name in storage (`identifier:`, default the name).
    pub identifier: String,
    /// `schema:` of the source (default the source's name).
    pub schema: String,
    pub database: Option<String>,
    pub description: String,
    pub source_description: String,
    pub loader: Option<String>,
    pub columns: Vec<ColumnDoc>,
    /// The source's `meta`, overlaid by the table's.
    pub meta: BTreeMap<String, Json>,
    pub tags: Vec<String>,
    /// `meta.external_location` (table or source level, `{name}`/`{identifier}`/`{schema}`
    /// substituted) or `external.location`: where the data is read from directly.
    pub external_location: Option<String>,
    /// `loaded_at_field` (the table's, else the source's; in `config:` too, as dbt 1.10): the
    /// SQL expression whose maximum is the table's latest load.
    pub loaded_at_field: Option<String>,
    /// `freshness`, the table's merged over the source's; `None` when unset or null.
    pub freshness: Option<freshness::Freshness>,
    /// `config: {event_time: ..}`: the column a microbatch model reading the table filters
    /// by its batch's window.
    pub event_time: Option<String>,
    /// The properties file declaring it.
    pub path: PathBuf,
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: invalid YAML: {message}", .path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("invalid --vars: {message}")]
    CliVars { message: String },
    #[error("{}:{line}:{column}: Jinja syntax error: {message}", .path.display())]
    JinjaSyntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{}: {node}: Documentation for '{name}' not found (no {{% docs {name} %}} block)", .path.display())]
    UnknownDoc {
        path: PathBuf,
        node: String,
        name: String,
    },
    #[error("{}: {node} depends on a node named '{name}' which was not found{}", .path.display(), did_you_mean(.suggestion))]
    UnknownRef {
        path: PathBuf,
        node: String,
        name: String,
        suggestion: Option<String>,
    },
    #[error("{}: {node} depends on a node named '{name}' which is disabled", .path.display())]
    DisabledRef {
        path: PathBuf,
        node: String,
        name: String,
    },
    #[error("{}: {node} depends on a source named '{source_name}.{table}' which was not found{}", .path.display(), did_you_mean(.suggestion))]
    UnknownSource {
        path: PathBuf,
        node: String,
        source_name: String,
        table: String,
        suggestion: Option<String>,
    },
    #[error("{}: {node} refers to package '{package}', which is neither the project ('{project}') nor an installed package (declare it in packages.yml and run strata deps)", .path.display())]
    UnknownPackage {
        path: PathBuf,
        node: String,
        package: String,
        project: String,
    },
    #[error("{}: {node} uses the generic test '{test}', which is not defined (define it with {{% test {test}(model, column_name) %}}){}", .path.display(), did_you_mean(.suggestion))]
    UnknownTest {
        path: PathBuf,
        node: String,
        test: String,
        suggestion: Option<String>,
    },
    #[error("found two {kind}s named '{name}': {} and {}", .first.display(), .second.display())]
    Duplicate {
        kind: &'static str,
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{}: {node}: {message}", .path.display())]
    Config {
        path: PathBuf,
        node: String,
        message: String,
    },
    #[error("{}: {declared} package(s) are declared but {installed} are installed in {}: run strata deps", .path.display(), .install_path.display())]
    NotInstalled {
        path: PathBuf,
        declared: usize,
        installed: usize,
        install_path: PathBuf,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}
