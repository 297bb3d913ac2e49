//! The Jinja runtime shared by parsing (dbt's "parse mode") and compiling.
//!
//! A project owns one minijinja [`Environment`] holding every macro file and node template.
//! The dbt context functions (`ref`, `source`, `config`, `var`, `is_incremental`, ...) are
//! environment globals; what they answer depends on the node being rendered, which they read
//! from a thread-local stack of [`Frame`]s. So one environment serves every render, and
//! renders on different threads do not see each other.
//!
//! Project macros are globals too: each is a [`MacroFn`] that evaluates its macro file and
//! calls the macro there, which lets any template (and any other macro) call any macro by its
//! bare name, as in dbt, and lets `{{ return(x) }}` hand a native value back to the caller.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, ObjectRepr, Value, ValueKind, from_args};
use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, escape_formatter,
};
use serde_json::{Map as JsonMap, Value as Json};

use crate::project::config::{merge_config, normalize_key};

/// Template name of the built-in generic tests (`not_null`, `unique`, ...).
pub(crate) const BUILTIN_TESTS_TEMPLATE: &str = "<strata>/generic_tests.sql";
/// Their source: ordinary Jinja macros, overridable by project macros of the same name.
pub(crate) const BUILTIN_TESTS: &str = include_str!("generic_tests.sql");
/// Project macros are renamed to `<prefix><name>` inside their file, so that a call by bare
/// name always goes through the global [`MacroFn`] (see the module docs).
pub(crate) const MACRO_PREFIX: &str = "__strata_macro__";
/// The dbt version Strata mirrors, as `dbt_version` in templates.
pub(crate) const DBT_VERSION: &str = "1.10.0";

const RETURN_MARKER: &str = "return() unwound the macro";
const MAX_MACRO_DEPTH: usize = 200;

/// Project-wide data every render may read.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub project_name: String,
    /// Project vars merged with `--vars` (already scoped to this project).
    pub vars: BTreeMap<String, Json>,
    /// `{% docs %}` blocks by name.
    pub docs: BTreeMap<String, String>,
    /// Callable macros by name (`test_<name>` for generic tests).
    pub macros: BTreeMap<String, MacroRef>,
}

/// Where a macro lives: its template and its (renamed) name inside it.
#[derive(Debug, Clone)]
pub(crate) struct MacroRef {
    pub template: String,
    pub mangled: String,
}

/// A failure of a context function that the caller reports as a typed error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    MissingVar(String),
    MissingEnvVar(String),
    UnknownDoc(String),
    UndeclaredRef(String),
    UndeclaredSource(String, String),
    Raised(String),
    Unsupported(String),
}

/// What `ref`/`source` answer while compiling: the relations of the node's declared
/// dependencies, spelled by the caller.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// By model/seed name.
    pub refs: HashMap<String, RefTarget>,
    pub sources: HashMap<(String, String), Value>,
}

#[derive(Debug)]
pub(crate) struct RefTarget {
    pub unique_id: String,
    pub relation: Value,
    pub ephemeral: bool,
}

#[derive(Debug)]
pub(crate) enum Mode {
    /// dbt's parse: `execute` is false, `ref`/`source`/`config` are recorded.
    Parse,
    /// Rendering for execution.
    Compile(Resolved),
}

/// The state of one node's render.
#[derive(Debug)]
pub(crate) struct Frame {
    pub mode: Mode,
    /// The template context: `this`, `target`, `execute`, `model`, ...
    pub ctx: Value,
    pub is_incremental: bool,
    /// The node's config as known before the render (parse) or final (compile).
    pub config: JsonMap<String, Json>,
    /// `config(...)` calls seen during a parse render, merged in order.
    pub captured_config: RefCell<JsonMap<String, Json>>,
    /// `ref` calls seen during a parse render: (package, name).
    pub refs: RefCell<Vec<(Option<String>, String)>>,
    /// `source` calls seen during a parse render.
    pub sources: RefCell<Vec<(String, String)>>,
    /// Ephemeral models referenced while compiling (unique ids, first use first).
    pub ephemerals: RefCell<Vec<String>>,
    pub failure: RefCell<Option<Failure>>,
    returns: RefCell<Vec<Option<Value>>>,
    depth: Cell<usize>,
}

impl Frame {
    pub(crate) fn new(
        mode: Mode,
        ctx: Value,
        is_incremental: bool,
        config: JsonMap<String, Json>,
    ) -> Frame {
        Frame {
            mode,
            ctx,
            is_incremental,
            config,
            captured_config: RefCell::default(),
            refs: RefCell::default(),
            sources: RefCell::default(),
            ephemerals: RefCell::default(),
            failure: RefCell::default(),
            returns: RefCell::default(),
            depth: Cell::new(0),
        }
    }

    fn is_parse(&self) -> bool {
        matches!(self.mode, Mode::Parse)
    }

    /// Records `failure` (the first one wins) and returns the error that aborts the render.
    fn fail(&self, failure: Failure, message: String) -> Error {
        let mut slot = self.failure.borrow_mut();
        if slot.is_none() {
            *slot = Some(failure);
        }
        Error::new(ErrorKind::InvalidOperation, message)
    }

    /// The config as `config.get` sees it.
    fn config_view(&self) -> JsonMap<String, Json> {
        let mut view = self.config.clone();
        merge_config(&mut view, &self.captured_config.borrow());
        view
    }
}

thread_local! {
    static FRAMES: RefCell<Vec<Rc<Frame>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `frame` as the current render frame of this thread.
pub(crate) fn with_frame<R>(frame: Rc<Frame>, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            FRAMES.with(|frames| {
                frames.borrow_mut().pop();
            });
        }
    }
    FRAMES.with(|frames| frames.borrow_mut().push(frame));
    let _pop = Pop;
    f()
}

fn current() -> Result<Rc<Frame>, Error> {
    FRAMES
        .with(|frames| frames.borrow().last().cloned())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "dbt context function called outside of a render",
            )
        })
}

/// A render error, located as precisely as minijinja allows.
#[derive(Debug)]
pub(crate) struct RenderFailure {
    /// The template the error happened in (a node file, a macro file, ...).
    pub template: Option<String>,
    pub line: Option<usize>,
    pub message: String,
    /// Set when a context function failed in a way the caller reports specifically.
    pub failure: Option<Failure>,
}

impl RenderFailure {
    pub(crate) fn new(frame: &Frame, err: &Error) -> RenderFailure {
        RenderFailure {
            template: err.name().map(str::to_string),
            line: err.line(),
            message: describe(err),
            failure: frame.failure.borrow().clone(),
        }
    }
}

/// A minijinja error's message without its location (which callers format themselves).
pub(crate) fn describe(err: &Error) -> String {
    let mut msg = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        msg.push_str(": ");
        msg.push_str(&inner.to_string());
        source = inner.source();
    }
    msg
}

/// The 1-based column of byte `offset` in `source`.
pub(crate) fn column_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    source[line_start..offset].chars().count() + 1
}

/// A relation as templates see it: renders as the caller's spelling, with dbt's attributes.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub rendered: String,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub identifier: String,
}

impl Relation {
    pub(crate) fn value(self) -> Value {
        Value::from_object(self)
    }
}

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let opt = |v: &Option<String>| v.clone().map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "identifier" | "name" | "table" => Value::from(self.identifier.clone()),
            "schema" => opt(&self.schema),
            "database" => opt(&self.database),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(self.rendered.clone())),
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

/// A project macro, callable by its bare name from anywhere.
#[derive(Debug)]
struct MacroFn {
    name: String,
    target: MacroRef,
}

impl Object for MacroFn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        call_macro(state.env(), &self.target, args)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<macro {}>", self.name)
    }
}

/// Calls a project macro in the current frame; its value is its output, or what it passed
/// to `return()`.
pub(crate) fn call_macro(
    env: &Environment<'_>,
    target: &MacroRef,
    args: &[Value],
) -> Result<Value, Error> {
    let frame = current()?;
    if frame.depth.get() >= MAX_MACRO_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("macros nested deeper than {MAX_MACRO_DEPTH} calls (unbounded recursion?)"),
        ));
    }
    let template = env.get_template(&target.template)?;
    // Evaluating the file defines its macros (its own output is discarded).
    let captured = template.render_captured_to(frame.ctx.clone(), std::io::sink())?;
    let state = captured.state();
    frame.depth.set(frame.depth.get() + 1);
    frame.returns.borrow_mut().push(None);
    let result = state.call_macro(&target.mangled, args);
    let returned = frame.returns.borrow_mut().pop().flatten();
    frame.depth.set(frame.depth.get() - 1);
    match returned {
        Some(value) => Ok(value),
        None => result.map(Value::from),
    }
}

/// `config`: callable (records the config at parse time) with `get`/`require`.
#[derive(Debug)]
struct ConfigObj;

impl Object for ConfigObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let frame = current()?;
        if frame.is_parse() {
            let (positional, kwargs) = split_args(args);
            let mut map = JsonMap::new();
            for arg in positional {
                match to_json(arg)? {
                    Json::Object(obj) => map.extend(obj),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            "config() takes keyword arguments or a dict",
                        ));
                    }
                }
            }
            if let Some(kwargs) = kwargs {
                for key in kwargs.args() {
                    let value: Value = kwargs.get(key)?;
                    map.insert(key.to_string(), to_json(&value)?);
                }
            }
            let map = map
                .into_iter()
                .map(|(k, v)| (normalize_key(&k), v))
                .collect();
            merge_config(&mut frame.captured_config.borrow_mut(), &map);
        }
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let frame = current()?;
        let (positional, kwargs) = split_args(args);
        let key = match positional.first() {
            Some(key) => str_arg(key, "config.get", "the key")?,
            None => {
                return Err(Error::new(
                    ErrorKind::MissingArgument,
                    format!("config.{method}() needs a key"),
                ));
            }
        };
        let found = frame.config_view().get(&normalize_key(&key)).cloned();
        match method {
            "get" => Ok(match found {
                Some(v) if !v.is_null() => Value::from_serialize(&v),
                _ => match (positional.get(1), kwargs) {
                    (Some(default), _) => default.clone(),
                    (None, Some(kwargs)) if kwargs.has("default") => kwargs.get("default")?,
                    _ => Value::from(()),
                },
            }),
            "require" => match found {
                Some(v) if !v.is_null() => Ok(Value::from_serialize(&v)),
                _ => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("required config '{key}' was not set"),
                )),
            },
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
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
        let (positional, kwargs) = split_args(args);
        let name = match positional.first() {
            Some(name) => str_arg(name, "var", "the variable name")?,
            None => {
                return Err(Error::new(ErrorKind::MissingArgument, "var() needs a name"));
            }
        };
        let default = match (positional.get(1), &kwargs) {
            (Some(default), _) => Some(default.clone()),
            (None, Some(kwargs)) if kwargs.has("default") => Some(kwargs.get("default")?),
            _ => None,
        };
        match self.shared.vars.get(&name) {
            Some(Json::String(s)) if is_template(s) => {
                Ok(Value::from(state.env().render_str(s, frame.ctx.clone())?))
            }
            Some(value) => Ok(Value::from_serialize(value)),
            None => match default {
                Some(default) => Ok(default),
                None => Err(frame.fail(
                    Failure::MissingVar(name.clone()),
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
                Ok(Value::from(self.shared.vars.contains_key(&name)))
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
                Err(frame.fail(Failure::Raised(message.clone()), message))
            }
            "warn" => {
                tracing::warn!("{message}");
                Ok(Value::from(""))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

fn split_args(args: &[Value]) -> (&[Value], Option<Kwargs>) {
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

fn str_arg(value: &Value, function: &str, what: &str) -> Result<String, Error> {
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

/// Whether a string holds Jinja that needs rendering.
pub(crate) fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
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
            Ok(Relation {
                rendered: name.clone(),
                database: None,
                schema: None,
                identifier: name,
            }
            .value())
        }
        Mode::Compile(resolved) => {
            if let Some(package) = &package
                && package != &shared.project_name
            {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("ref('{package}', '{name}'): packages are not supported by Strata"),
                ));
            }
            match resolved.refs.get(&name) {
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
                    Failure::UndeclaredRef(name.clone()),
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
            Ok(Relation {
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
                Failure::UndeclaredSource(source.clone(), table.clone()),
                format!("source('{source}', '{table}') was not seen when the project was parsed"),
            )),
        },
    }
}

fn env_var_fn(_shared: &Shared, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let (positional, kwargs) = split_args(args);
    let name = match positional.first() {
        Some(name) => str_arg(name, "env_var", "the variable name")?,
        None => {
            return Err(Error::new(
                ErrorKind::MissingArgument,
                "env_var() needs a name",
            ));
        }
    };
    let default = match (positional.get(1), &kwargs) {
        (Some(default), _) => Some(default.clone()),
        (None, Some(kwargs)) if kwargs.has("default") => Some(kwargs.get("default")?),
        _ => None,
    };
    match std::env::var(&name) {
        Ok(value) => Ok(Value::from(value)),
        Err(_) => match default {
            Some(default) => Ok(default),
            None => Err(frame.fail(
                Failure::MissingEnvVar(name.clone()),
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
            Failure::UnknownDoc(name.clone()),
            format!("Documentation for '{name}' not found"),
        )),
    }
}

fn return_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let value = args.first().cloned().unwrap_or(Value::from(()));
    let mut returns = frame.returns.borrow_mut();
    match returns.last_mut() {
        Some(slot) => {
            *slot = Some(value);
            Err(Error::new(ErrorKind::InvalidOperation, RETURN_MARKER))
        }
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            "return() can only be used inside a macro",
        )),
    }
}

fn log_fn(_: &Shared, _: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args);
    let message = positional
        .first()
        .map(|v| v.to_string())
        .unwrap_or_default();
    let info = positional.get(1).is_some_and(Value::is_true)
        || kwargs.is_some_and(|k| k.get::<Value>("info").is_ok_and(|v| v.is_true()));
    if info {
        tracing::info!("{message}");
    } else {
        tracing::debug!("{message}");
    }
    Ok(Value::from(""))
}

fn run_query_fn(_: &Shared, _: &State<'_, '_>, _args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    if frame.is_parse() {
        return Ok(Value::from(()));
    }
    let message = "run_query() is not supported by Strata's compiler".to_string();
    Err(frame.fail(Failure::Unsupported(message.clone()), message))
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

/// The Python string/dict methods dbt projects commonly call, which minijinja lacks.
fn pycompat(state: &State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            string_method(state, s, method, args)
        }
        ValueKind::Map => match method {
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                let found = value.get_item(&key)?;
                Ok(if found.is_undefined() {
                    default.unwrap_or(Value::from(()))
                } else {
                    found
                })
            }
            "items" => state.apply_filter("items", std::slice::from_ref(value)),
            "keys" => Ok(Value::from(value.try_iter()?.collect::<Vec<_>>())),
            "values" => {
                let mut values = Vec::new();
                for key in value.try_iter()? {
                    values.push(value.get_item(&key)?);
                }
                Ok(Value::from(values))
            }
            "copy" => Ok(value.clone()),
            "update" | "pop" | "setdefault" | "clear" => Err(immutable(method)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        ValueKind::Seq => match method {
            "index" => {
                let (needle,): (Value,) = from_args(args)?;
                let position = value.try_iter()?.position(|v| v == needle);
                position.map(Value::from).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "value is not in the list")
                })
            }
            "count" => {
                let (needle,): (Value,) = from_args(args)?;
                Ok(Value::from(
                    value.try_iter()?.filter(|v| v == &needle).count(),
                ))
            }
            "append" | "extend" | "insert" | "pop" | "remove" | "sort" | "reverse" | "clear" => {
                Err(immutable(method))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

fn immutable(method: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "lists and dicts cannot be changed in place in Strata's Jinja (.{method}()); \
             build a new one instead, e.g. {{% set xs = xs + [x] %}}"
        ),
    )
}

fn string_method(state: &State, s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    let strip_set = |args: &[Value]| -> Result<Option<String>, Error> {
        let (chars,): (Option<String>,) = from_args(args)?;
        Ok(chars)
    };
    Ok(match method {
        "upper" => Value::from(s.to_uppercase()),
        "lower" => Value::from(s.to_lowercase()),
        "title" | "capitalize" => state.apply_filter(method, &[Value::from(s)])?,
        "strip" | "lstrip" | "rstrip" => {
            let chars = strip_set(args)?;
            let is_stripped = |c: char| match &chars {
                Some(set) => set.contains(c),
                None => c.is_whitespace(),
            };
            Value::from(match method {
                "strip" => s.trim_matches(is_stripped),
                "lstrip" => s.trim_start_matches(is_stripped),
                _ => s.trim_end_matches(is_stripped),
            })
        }
        "replace" => {
            let (old, new, count): (String, String, Option<i64>) = from_args(args)?;
            match count {
                Some(n) if n >= 0 => Value::from(s.replacen(&old, &new, n as usize)),
                _ => Value::from(s.replace(&old, &new)),
            }
        }
        "split" => {
            let (sep, maxsplit): (Option<String>, Option<i64>) = from_args(args)?;
            let parts: Vec<String> = match (sep, maxsplit) {
                (None, _) => s.split_whitespace().map(str::to_string).collect(),
                (Some(sep), Some(n)) if n >= 0 => {
                    s.splitn(n as usize + 1, &sep).map(str::to_string).collect()
                }
                (Some(sep), _) => s.split(&sep).map(str::to_string).collect(),
            };
            Value::from(parts)
        }
        "startswith" | "endswith" => {
            let (what,): (Value,) = from_args(args)?;
            let candidates: Vec<String> = if what.kind() == ValueKind::String {
                vec![what.to_string()]
            } else {
                what.try_iter()?.map(|v| v.to_string()).collect()
            };
            Value::from(candidates.iter().any(|c| {
                if method == "startswith" {
                    s.starts_with(c.as_str())
                } else {
                    s.ends_with(c.as_str())
                }
            }))
        }
        "join" => {
            let (items,): (Value,) = from_args(args)?;
            let parts: Vec<String> = items.try_iter()?.map(|v| v.to_string()).collect();
            Value::from(parts.join(s))
        }
        "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        "isalpha" => Value::from(!s.is_empty() && s.chars().all(char::is_alphabetic)),
        "isupper" => Value::from(s.chars().any(char::is_alphabetic) && s == s.to_uppercase()),
        "islower" => Value::from(s.chars().any(char::is_alphabetic) && s == s.to_lowercase()),
        "count" => {
            let (needle,): (String,) = from_args(args)?;
            Value::from(if needle.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(&needle).count()
            })
        }
        "find" => {
            let (needle,): (String,) = from_args(args)?;
            Value::from(
                s.find(&needle)
                    .map_or(-1, |i| s[..i].chars().count() as i64),
            )
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

/// Renders `{{ true }}` and `{{ none }}` as Jinja2 (and so dbt) does: `True`, `None`.
fn python_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Bool => out
            .write_str(if value.is_true() { "True" } else { "False" })
            .map_err(Error::from),
        ValueKind::None => out.write_str("None").map_err(Error::from),
        _ => escape_formatter(out, state, value),
    }
}

/// The environment every render of a project uses; templates are added by the loader.
pub(crate) fn new_env(shared: Arc<Shared>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_debug(false);
    env.set_unknown_method_callback(pycompat);
    env.set_formatter(python_formatter);

    let functions: [(&'static str, NativeFn); 13] = [
        ("ref", ref_fn),
        ("source", source_fn),
        ("env_var", env_var_fn),
        ("is_incremental", is_incremental_fn),
        ("doc", doc_fn),
        ("return", return_fn),
        ("log", log_fn),
        ("print", log_fn),
        ("run_query", run_query_fn),
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
    env.add_global("builtins", Value::from_iter(builtins));
    env.add_filter("as_bool", as_bool);
    env.add_filter("as_number", as_number);
    env.add_filter("as_text", as_text);
    env.add_filter("as_native", as_native);

    for (name, target) in &shared.macros {
        env.add_global(
            name.clone(),
            Value::from_object(MacroFn {
                name: name.clone(),
                target: target.clone(),
            }),
        );
    }
    env
}

/// Renders template `name` in `frame`.
pub(crate) fn render_template(
    env: &Environment<'_>,
    name: &str,
    frame: Rc<Frame>,
) -> Result<String, RenderFailure> {
    let ctx = frame.ctx.clone();
    let result = with_frame(frame.clone(), || {
        env.get_template(name).and_then(|t| t.render(ctx))
    });
    result.map_err(|e| RenderFailure::new(&frame, &e))
}

/// Renders a string (a description, a var, a YAML value) in `frame`.
pub(crate) fn render_str(
    env: &Environment<'_>,
    name: &str,
    source: &str,
    frame: Rc<Frame>,
) -> Result<String, RenderFailure> {
    let ctx = frame.ctx.clone();
    let result = with_frame(frame.clone(), || env.render_named_str(name, source, ctx));
    result.map_err(|e| RenderFailure::new(&frame, &e))
}

/// Runs `f` (which may call into templates and macros) in `frame`.
pub(crate) fn run_in_frame<R>(
    frame: Rc<Frame>,
    f: impl FnOnce() -> Result<R, Error>,
) -> Result<R, RenderFailure> {
    with_frame(frame.clone(), f).map_err(|e| RenderFailure::new(&frame, &e))
}

/// dbt's `looks_like_func`: test arguments like `ref('x')` are evaluated as expressions.
pub(crate) fn looks_like_function(s: &str) -> bool {
    let s = s.trim();
    ["env_var", "ref", "var", "source", "doc"]
        .iter()
        .any(|name| match s.strip_prefix(name) {
            Some(rest) => {
                let rest = rest.trim_start();
                rest.starts_with('(') && rest.ends_with(')') && rest.len() > 2
            }
            None => false,
        })
}

/// Evaluates a generic test's argument as dbt does: `ref(...)`-like strings as expressions,
/// other strings rendered as templates, containers element by element.
pub(crate) fn eval_test_arg(
    env: &Environment<'_>,
    ctx: &Value,
    arg: &Json,
) -> Result<Value, Error> {
    Ok(match arg {
        Json::String(s) if looks_like_function(s) => env
            .compile_expression_owned(s.trim().to_string())?
            .eval(ctx.clone())?,
        Json::String(s) if is_template(s) => Value::from(env.render_str(s, ctx.clone())?),
        Json::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                values.push(eval_test_arg(env, ctx, item)?);
            }
            Value::from(values)
        }
        Json::Object(map) => {
            let mut values = BTreeMap::new();
            for (key, item) in map {
                values.insert(key.clone(), eval_test_arg(env, ctx, item)?);
            }
            Value::from_iter(values)
        }
        other => Value::from_serialize(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_like_arguments() {
        assert!(looks_like_function("ref('customers')"));
        assert!(looks_like_function("  source('a', 'b') "));
        assert!(!looks_like_function("refund"));
        assert!(!looks_like_function("reference('x')"));
        assert!(!looks_like_function("ref"));
    }

    #[test]
    fn columns() {
        assert_eq!(column_of("ab\ncd", 4), 2);
        assert_eq!(column_of("abc", 0), 1);
    }
}
