//! The dbt context functions (`ref`, `source`, `var`, `env_var`, `is_incremental`, `doc`,
//! `log`, `print`, `exceptions`, `graph`, `tojson`/`fromjson`/`toyaml`/`fromyaml`) and dbt's
//! filters (`as_bool`, `as_number`, `as_text`, `as_native`). What `ref` and `source` answer
//! depends on the frame's mode: recorded at parse time, resolved when compiling.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State};
use serde_json::Value as Json;

use super::Shared;
use super::config_call::ConfigObj;
use super::context::JinjaRelation;
use super::frame::{FrameFailure, Mode, current};
use super::is_template;
use super::macros::return_fn;

/// Adds the dbt context functions, `config`, `var`, `exceptions`, `builtins` and dbt's
/// filters to `env`.
pub(super) fn add_globals(env: &mut Environment<'static>, shared: &Arc<Shared>) {
    let functions: [(&'static str, NativeFn); 12] = [
        ("ref", ref_fn),
        ("source", source_fn),
        ("env_var", env_var_fn),
        ("is_incremental", is_incremental_fn),
        ("doc", doc_fn),
        ("return", return_fn),
        ("log", log_fn),
        ("print", print_fn),
        ("tojson", tojson_fn),
        ("fromjson", fromjson_fn),
        ("toyaml", toyaml_fn),
        ("fromyaml", fromyaml_fn),
    ];
    let mut builtins = BTreeMap::new();
    for (name, f) in functions {
        let value = Value::from_object(Func {
            name,
            shared: shared.clone(),
            f,
        });
        if matches!(name, "ref" | "source") {
            builtins.insert(name, value.clone());
        }
        env.add_global(name, value);
    }
    let config = Value::from_object(ConfigObj);
    builtins.insert("config", config.clone());
    env.add_global("config", config);
    env.add_global(
        "var",
        Value::from_object(VarObj {
            shared: shared.clone(),
        }),
    );
    env.add_global("exceptions", Value::from_object(ExceptionsObj));
    env.add_global(
        "graph",
        Value::from_object(GraphObj {
            shared: shared.clone(),
        }),
    );
    // dbt's hooks outside the model's transaction: Strata runs none, so they are plain hooks.
    env.add_function("before_begin", outside_transaction);
    env.add_function("after_commit", outside_transaction);
    env.add_global("builtins", Value::from_iter(builtins));
    env.add_filter("as_bool", as_bool);
    env.add_filter("as_number", as_number);
    env.add_filter("as_text", as_text);
    env.add_filter("as_native", as_native);
}

/// `before_begin(sql)` / `after_commit(sql)`: the hook as dbt's dict form.
fn outside_transaction(sql: String) -> Value {
    Value::from_serialize(serde_json::json!({"sql": sql, "transaction": false}))
}

type NativeFn = fn(&Shared, &State<'_, '_>, &[Value]) -> Result<Value, Error>;

/// A dbt context function as a callable global.
struct Func {
    name: &'static str,
    shared: Arc<Shared>,
    f: NativeFn,
}

impl fmt::Debug for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<function {}>", self.name)
    }
}

impl Object for Func {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        (self.f)(&self.shared, state, args)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<function {}>", self.name)
    }
}

/// `var`: callable, with `has_var`.
#[derive(Debug)]
struct VarObj {
    shared: Arc<Shared>,
}

impl Object for VarObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let frame = current()?;
        let (name, default) = key_and_default(
            args,
            "var",
            "the variable name",
            "var() needs a name".into(),
        )?;
        let vars = self
            .shared
            .vars_of(frame.node_package(&self.shared.project_name));
        match frame.vars.get(&name).or_else(|| vars.get(&name)) {
            Some(Json::String(s)) if is_template(s) => {
                Ok(Value::from(state.env().render_str(s, frame.ctx.clone())?))
            }
            Some(value) => Ok(Value::from_serialize(value)),
            None => match default {
                Some(default) => Ok(default),
                None => Err(frame.fail(
                    FrameFailure::MissingVar(name.clone()),
                    format!("Required var '{name}' not found in config"),
                )),
            },
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "has_var" => {
                let (name,): (String,) = from_args(args)?;
                let frame = current()?;
                let vars = self
                    .shared
                    .vars_of(frame.node_package(&self.shared.project_name));
                Ok(Value::from(
                    frame.vars.contains_key(&name) || vars.contains_key(&name),
                ))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<function var>")
    }
}

/// `exceptions.raise_compiler_error(msg)` and friends.
#[derive(Debug)]
struct ExceptionsObj;

impl Object for ExceptionsObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let message = args.first().map(|v| v.to_string()).unwrap_or_default();
        match method {
            "raise_compiler_error" | "raise_not_implemented" | "raise_fail_fast_error" => {
                let frame = current()?;
                Err(frame.fail(FrameFailure::Raised(message.clone()), message))
            }
            "warn" => {
                eprintln!("warning: {message}");
                Ok(Value::from(""))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

pub(super) fn split_args(args: &[Value]) -> (&[Value], Option<Kwargs>) {
    match args.last() {
        Some(last) if last.is_kwargs() => {
            let kwargs = from_args::<(Kwargs,)>(std::slice::from_ref(last))
                .ok()
                .map(|(k,)| k);
            (&args[..args.len() - 1], kwargs)
        }
        _ => (args, None),
    }
}

/// The key a lookup (`var`, `env_var`, `config.get`) was called with and the default it was
/// given, as its second argument or `default=`. `function` and `what` name the key in the
/// error if it is not a string; `missing` is the error if there is none.
pub(super) fn key_and_default(
    args: &[Value],
    function: &str,
    what: &str,
    missing: String,
) -> Result<(String, Option<Value>), Error> {
    let (positional, kwargs) = split_args(args);
    let key = match positional.first() {
        Some(key) => str_arg(key, function, what)?,
        None => return Err(Error::new(ErrorKind::MissingArgument, missing)),
    };
    let default = match (positional.get(1), &kwargs) {
        (Some(default), _) => Some(default.clone()),
        (None, Some(kwargs)) if kwargs.has("default") => Some(kwargs.get("default")?),
        _ => None,
    };
    Ok((key, default))
}

pub(super) fn str_arg(value: &Value, function: &str, what: &str) -> Result<String, Error> {
    value.as_str().map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "{function}(): {what} must be a string, got {}",
                value.kind()
            ),
        )
    })
}

pub(crate) fn to_json(value: &Value) -> Result<Json, Error> {
    serde_json::to_value(value).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("value cannot be used as data: {e}"),
        )
    })
}

fn ref_fn(shared: &Shared, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let (positional, kwargs) = split_args(args);
    if let Some(kwargs) = kwargs
        && (kwargs.has("v") || kwargs.has("version"))
    {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "ref(..., v=...): model versions are not supported by Strata",
        ));
    }
    let (package, name) = match positional {
        [name] => (None, str_arg(name, "ref", "the model name")?),
        [package, name] => (
            Some(str_arg(package, "ref", "the package name")?),
            str_arg(name, "ref", "the model name")?,
        ),
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "ref() takes a model name, optionally preceded by a package name; got {} arguments",
                    positional.len()
                ),
            ));
        }
    };
    match &frame.mode {
        Mode::Parse => {
            frame.refs.borrow_mut().push((package, name.clone()));
            Ok(JinjaRelation {
                rendered: name.clone(),
                database: None,
                schema: None,
                identifier: name,
            }
            .value())
        }
        Mode::Compile(resolved) => {
            let root = shared.project_name.as_str();
            let own = frame.node_package(root);
            match resolved.find(package.as_deref(), &name, own, root) {
                Some(target) => {
                    if target.ephemeral {
                        let mut used = frame.ephemerals.borrow_mut();
                        if !used.contains(&target.unique_id) {
                            used.push(target.unique_id.clone());
                        }
                    }
                    Ok(target.relation.clone())
                }
                None => Err(frame.fail(
                    FrameFailure::UndeclaredRef(name.clone()),
                    format!("ref('{name}') was not seen when the project was parsed"),
                )),
            }
        }
    }
}

fn source_fn(_shared: &Shared, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let (positional, _) = split_args(args);
    let [source, table] = positional else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "source() takes a source name and a table name; got {} arguments",
                positional.len()
            ),
        ));
    };
    let source = str_arg(source, "source", "the source name")?;
    let table = str_arg(table, "source", "the table name")?;
    match &frame.mode {
        Mode::Parse => {
            let rendered = format!("{source}.{table}");
            frame
                .sources
                .borrow_mut()
                .push((source.clone(), table.clone()));
            Ok(JinjaRelation {
                rendered,
                database: None,
                schema: Some(source),
                identifier: table,
            }
            .value())
        }
        Mode::Compile(resolved) => match resolved.sources.get(&(source.clone(), table.clone())) {
            Some(relation) => Ok(relation.clone()),
            None => Err(frame.fail(
                FrameFailure::UndeclaredSource(source.clone(), table.clone()),
                format!("source('{source}', '{table}') was not seen when the project was parsed"),
            )),
        },
    }
}

fn env_var_fn(_shared: &Shared, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let (name, default) = key_and_default(
        args,
        "env_var",
        "the variable name",
        "env_var() needs a name".into(),
    )?;
    let value = match frame.env_vars.get(&name) {
        Some(value) => Ok(value.clone()),
        None => std::env::var(&name),
    };
    match value {
        Ok(value) => Ok(Value::from(value)),
        Err(_) => match default {
            Some(default) => Ok(default),
            None => Err(frame.fail(
                FrameFailure::MissingEnvVar(name.clone()),
                format!("Env var required but not provided: '{name}'"),
            )),
        },
    }
}

fn is_incremental_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let () = from_args(args)?;
    Ok(Value::from(current()?.is_incremental))
}

fn doc_fn(shared: &Shared, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let name = match args {
        [name] | [_, name] => str_arg(name, "doc", "the doc name")?,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "doc() takes a doc name, optionally preceded by a package name",
            ));
        }
    };
    match shared.docs.get(&name) {
        Some(text) => Ok(Value::from(text.clone())),
        None => Err(frame.fail(
            FrameFailure::UnknownDoc(name.clone()),
            format!("Documentation for '{name}' not found"),
        )),
    }
}

/// `log(msg, info=False)`: with `info`, to standard error as dbt prints it to the console;
/// otherwise to the debug log.
fn log_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args);
    let message = positional
        .first()
        .map(|v| v.to_string())
        .unwrap_or_default();
    let info = positional.get(1).is_some_and(Value::is_true)
        || kwargs.is_some_and(|k| k.get::<Value>("info").is_ok_and(|v| v.is_true()));
    if info {
        eprintln!("{message}");
    } else {
        tracing::debug!("{message}");
    }
    Ok(Value::from(""))
}

/// `print(msg)`: to standard error, beside the run's output (dbt prints to the console).
fn print_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let message = args.first().map(|v| v.to_string()).unwrap_or_default();
    eprintln!("{message}");
    Ok(Value::from(""))
}

/// dbt's `graph`: `graph.nodes` and `graph.sources` by unique id (empty until the project is
/// loaded, as dbt's is while parsing).
#[derive(Debug)]
struct GraphObj {
    shared: Arc<Shared>,
}

impl Object for GraphObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if !matches!(
            key,
            "nodes" | "sources" | "exposures" | "metrics" | "groups" | "macros"
        ) {
            return None;
        }
        Some(match self.shared.graph.get().and_then(|g| g.get(key)) {
            Some(value) => Value::from_serialize(value),
            None => Value::from_iter(std::iter::empty::<(String, Value)>()),
        })
    }
}

fn tojson_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    serialize(args, |json| {
        serde_json::to_string(json).map_err(|e| e.to_string())
    })
}

fn fromjson_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    deserialize(args, |text| {
        serde_json::from_str(text).map_err(|e| e.to_string())
    })
}

fn toyaml_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    serialize(args, |json| {
        serde_norway::to_string(json).map_err(|e| e.to_string())
    })
}

fn fromyaml_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    deserialize(args, |text| {
        serde_norway::from_str(text).map_err(|e| e.to_string())
    })
}

/// `tojson`/`toyaml`: the first argument written as text in a serde format.
fn serialize(args: &[Value], write: fn(&Json) -> Result<String, String>) -> Result<Value, Error> {
    let value = args.first().cloned().unwrap_or_default();
    let text = write(&to_json(&value)?).map_err(|e| Error::new(ErrorKind::InvalidOperation, e))?;
    Ok(Value::from(text))
}

/// `fromjson`/`fromyaml`: the first argument parsed, or the second (a default) if it does not parse.
fn deserialize(args: &[Value], read: fn(&str) -> Result<Json, String>) -> Result<Value, Error> {
    let text = args.first().map(|v| v.to_string()).unwrap_or_default();
    match read(&text) {
        Ok(json) => Ok(Value::from_serialize(&json)),
        Err(e) => match args.get(1) {
            Some(default) => Ok(default.clone()),
            None => Err(Error::new(ErrorKind::InvalidOperation, e)),
        },
    }
}

fn as_bool(value: Value) -> Value {
    match value.as_str().map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("true") => Value::from(true),
        Some(s) if s.eq_ignore_ascii_case("false") => Value::from(false),
        _ => value,
    }
}

fn as_number(value: Value) -> Value {
    match value.as_str().map(str::trim) {
        Some(s) => {
            if let Ok(i) = s.parse::<i64>() {
                Value::from(i)
            } else if let Ok(f) = s.parse::<f64>() {
                Value::from(f)
            } else {
                value
            }
        }
        None => value,
    }
}

fn as_text(value: Value) -> String {
    value.to_string()
}

fn as_native(value: Value) -> Value {
    value
}
