//! The template context: what every node's render sees besides the dbt functions —
//! `target`, `this` and other relations, `execute`, `model` (with `model.batch` in a
//! microbatch), `project_name`, `dbt_version`, and the invocation's `flags`, `invocation_id` and `run_started_at`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::{Value as Json, json};

/// The dbt version Strata mirrors, as `dbt_version` in templates.
pub(crate) const DBT_VERSION: &str = "1.10.0";

/// dbt's `target`: the environment being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `target.name` (`dev`).
    pub name: String,
    /// `target.type` (`strata`).
    pub type_: String,
    /// `target.schema`: where nodes without a custom schema go (`main`).
    pub schema: String,
    pub threads: usize,
    /// The command this project is loaded for.
    pub invocation: Invocation,
}

impl Default for Target {
    fn default() -> Target {
        Target {
            name: "dev".into(),
            type_: "strata".into(),
            schema: "main".into(),
            threads: 1,
            invocation: Invocation::default(),
        }
    }
}

/// The command being run, as packages read it: dbt's `flags`, `invocation_id` and
/// `run_started_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `flags.WHICH`: dbt's name for the command (`run`, `build`, `test`, `seed`,
    /// `compile`, `list`, `snapshot`).
    pub which: String,
    /// The command line, as `flags.INVOCATION_COMMAND`.
    pub command_line: String,
    pub full_refresh: bool,
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    pub project_dir: PathBuf,
    /// `flags.STORE_FAILURES`: `--store-failures`.
    pub store_failures: bool,
    /// `invocation_id`: a UUID, as dbt's.
    pub id: String,
    pub started_at: DateTime<Utc>,
}

impl Default for Invocation {
    fn default() -> Invocation {
        Invocation {
            which: "run".into(),
            command_line: String::new(),
            full_refresh: false,
            select: Vec::new(),
            exclude: Vec::new(),
            project_dir: PathBuf::from("."),
            store_failures: false,
            id: uuid::Uuid::new_v4().to_string(),
            started_at: Utc::now(),
        }
    }
}

/// dbt's `flags` as templates see them. Strata has no `--warn-error`, `--fail-fast` or
/// `--empty`, so those read false as in a dbt run without them.
fn flags_value(invocation: &Invocation) -> Json {
    json!({
        "WHICH": invocation.which,
        "INVOCATION_COMMAND": invocation.command_line,
        "FULL_REFRESH": invocation.full_refresh,
        "SELECT": invocation.select,
        "EXCLUDE": invocation.exclude,
        "PROJECT_DIR": invocation.project_dir.display().to_string(),
        "STORE_FAILURES": invocation.store_failures,
        "WARN_ERROR": false,
        "FAIL_FAST": false,
        "EMPTY": false,
        "DEBUG": false,
        "QUIET": false,
        "USE_COLORS": false,
        "PARTIAL_PARSE": false,
        "STATIC_PARSER": true,
        "INTROSPECT": true,
        "SEND_ANONYMOUS_USAGE_STATS": false,
        "LOG_FORMAT": "default",
        "PRINTER_WIDTH": 80,
    })
}

/// `target` as templates see it.
fn target_value(target: &Target) -> Json {
    json!({
        "name": target.name,
        "type": target.type_,
        "schema": target.schema,
        "threads": target.threads,
        "database": null,
        "profile_name": "strata",
    })
}

/// The context every template of a node is rendered with.
pub(crate) fn template_context(
    project_name: &str,
    target: &Target,
    execute: bool,
    this: Value,
    model: Value,
) -> Value {
    minijinja::context! {
        this => this,
        target => Value::from_serialize(target_value(target)),
        execute => execute,
        model => model,
        project_name => project_name,
        dbt_version => DBT_VERSION,
        flags => Value::from_serialize(flags_value(&target.invocation)),
        invocation_id => target.invocation.id.clone(),
        run_started_at => super::modules::utc_datetime(target.invocation.started_at),
    }
}

/// dbt's `model.batch` in one batch of a microbatch model: its `id` (`20260301`) and the
/// window, as aware UTC datetimes.
pub(crate) fn batch_value(id: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    minijinja::context! {
        id => id,
        event_time_start => super::modules::utc_datetime(start),
        event_time_end => super::modules::utc_datetime(end),
    }
}

/// dbt's `model` (`node`, as JSON) with `model.batch` set to `batch`.
pub(crate) fn model_with_batch(node: serde_json::Map<String, Json>, batch: Value) -> Value {
    let mut model: std::collections::BTreeMap<String, Value> = node
        .into_iter()
        .map(|(key, value)| (key, Value::from_serialize(value)))
        .collect();
    model.insert("batch".into(), batch);
    Value::from(model)
}

/// A relation as templates see it: renders as the caller's spelling, with dbt's attributes.
#[derive(Debug, Clone)]
pub(crate) struct JinjaRelation {
    pub rendered: String,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub identifier: String,
}

impl JinjaRelation {
    pub(crate) fn value(self) -> Value {
        Value::from_object(self)
    }
}

/// The attributes a relation answers, as dbt's `BaseRelation` (a mapping: packages test
/// `relation is mapping` and read its `metadata.type`).
const RELATION_KEYS: [&str; 5] = ["database", "schema", "identifier", "metadata", "is_cte"];

/// The prefix of an ephemeral model's CTE (dbt's `add_ephemeral_prefix`).
pub(crate) const EPHEMERAL_PREFIX: &str = "__dbt__cte__";

impl Object for JinjaRelation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let opt = |v: &Option<String>| v.clone().map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "identifier" | "name" | "table" => Value::from(self.identifier.clone()),
            "schema" => opt(&self.schema),
            "database" => opt(&self.database),
            "metadata" => Value::from_iter([("type", "StrataRelation")]),
            "is_cte" => Value::from(self.identifier.starts_with(EPHEMERAL_PREFIX)),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&RELATION_KEYS)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" | "quote" => Ok(Value::from(self.rendered.clone())),
            "include" | "incorporate" => Ok(Value::from_object((**self).clone())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
}
