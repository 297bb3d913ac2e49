//! The Jinja runtime, as dbt's `clients/jinja.py`: shared by parsing (dbt's "parse mode", in
//! `project`) and compiling (`compile`). It sits below both and imports neither, so that
//! neither has to import the other for it.
//!
//! A project owns one minijinja [`Environment`] holding every macro file and node template.
//! The dbt context functions (`ref`, `source`, `config`, `var`, `is_incremental`, ...) are
//! environment globals; what they answer depends on the node being rendered, which they read
//! from a thread-local stack of frames (`frame`). So one environment serves every render, and
//! renders on different threads do not see each other.
//!
//! Project macros are globals too: each evaluates its macro file and calls the macro there,
//! which lets any template (and any other macro) call any macro by its bare name, as in dbt,
//! and lets `{{ return(x) }}` hand a native value back to the caller.
//!
//! Macros live in packages: the project's own, the installed packages', and `dbt` (Strata's
//! global project: the built-in generic tests and the cross-database macros). A bare name
//! resolves in the calling macro's package, then the root project, then `dbt`; `pkg.name`
//! names one package's macro; `adapter.dispatch` searches packages and adapter prefixes.
//!
//! The parts: `blocks` (dbt's non-Jinja block tags), `context` (`target`, `this`, `model`,
//! ...), `functions` (the dbt functions and filters), `config` (`config()` and config
//! layering), `macros`, `adapter` (`adapter`, `api`, dispatch and introspection),
//! `statement` (`run_query`, `statement`, `load_result`), `modules` (`modules.re`, ...),
//! `mutable` (lists and dicts `append`/`update` change in place), `methods` (Python-style
//! methods), `frame` (the per-render state) and `error`.

mod adapter;
pub(crate) mod blocks;
pub(crate) mod config_call;
pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod frame;
mod functions;
mod macros;
mod methods;
mod modules;
mod mutable;
mod statement;
pub mod warehouse;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, UndefinedBehavior};
use serde_json::Value as Json;

pub use context::{Invocation, Target};
use error::RenderFailure;
pub use error::{Phase, RenderError};
use frame::{Frame, with_frame};
pub(crate) use macros::call_macro;
pub(crate) use mutable::mutable_literals;
pub use warehouse::{QueryResult, Warehouse, WarehouseColumn};

/// The package holding Strata's built-in macros, as dbt's global project.
pub(crate) const GLOBAL_PROJECT: &str = "dbt";

/// Strata's global project: template name and source of each file. Ordinary Jinja macros,
/// overridable by project macros of the same name (or, for dispatched ones, through
/// `dispatch:`).
pub(crate) const BUILTIN_MACROS: [(&str, &str); 2] = [
    // The built-in generic tests (`not_null`, `unique`, ...).
    (
        "<strata>/generic_tests.sql",
        include_str!("generic_tests.sql"),
    ),
    // dbt's cross-database macros, written for Strata's SQL.
    ("<strata>/cross_db.sql", include_str!("cross_db.sql")),
];
/// Project macros are renamed to `<prefix><name>` inside their file, so that a call by bare
/// name always goes through the macro's global (see the module docs).
pub(crate) const MACRO_PREFIX: &str = "__strata_macro__";

/// Project-wide data every render may read.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub project_name: String,
    /// Project vars merged with `--vars` (already scoped to this project).
    pub vars: BTreeMap<String, Json>,
    /// The vars an installed package's nodes and macros see, by package: its own, then the
    /// root project's (global and scoped to it), then `--vars`.
    pub package_vars: BTreeMap<String, BTreeMap<String, Json>>,
    /// `{% docs %}` blocks by name.
    pub docs: BTreeMap<String, String>,
    /// Callable macros by package and name (`test_<name>` for generic tests).
    pub macros: MacroTable,
    /// `dispatch:` of `dbt_project.yml`: the packages searched for each macro namespace.
    pub dispatch: BTreeMap<String, Vec<String>>,
    /// dbt's `graph` (nodes and sources), set once the project is loaded.
    pub graph: std::sync::OnceLock<Json>,
}

impl Shared {
    /// The vars seen by code of `package`.
    pub(crate) fn vars_of(&self, package: &str) -> &BTreeMap<String, Json> {
        self.package_vars.get(package).unwrap_or(&self.vars)
    }
}

/// Where a macro lives: its package, its template and its (renamed) name inside it.
#[derive(Debug, Clone)]
pub(crate) struct MacroRef {
    pub package: String,
    pub template: String,
    pub mangled: String,
}

/// Every macro by package, and how a bare name resolves.
#[derive(Debug, Default, Clone)]
pub(crate) struct MacroTable {
    /// The root project's name.
    pub root: String,
    pub packages: BTreeMap<String, BTreeMap<String, MacroRef>>,
}

impl MacroTable {
    /// Macro `name` of `package`.
    pub(crate) fn get(&self, package: &str, name: &str) -> Option<&MacroRef> {
        self.packages.get(package)?.get(name)
    }

    /// A bare `name` called from code of `package`: that package's macro, else the root
    /// project's, else the global project's (as dbt's local, root, then `dbt` namespaces).
    pub(crate) fn resolve(&self, name: &str, package: &str) -> Option<&MacroRef> {
        [package, self.root.as_str(), GLOBAL_PROJECT]
            .into_iter()
            .find_map(|p| self.get(p, name))
    }

    /// Every macro name, once.
    pub(crate) fn names(&self) -> std::collections::BTreeSet<&str> {
        self.packages
            .values()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect()
    }

    /// The packages defining `name`.
    pub(crate) fn defining(&self, name: &str) -> Vec<&str> {
        self.packages
            .iter()
            .filter(|(_, m)| m.contains_key(name))
            .map(|(p, _)| p.as_str())
            .collect()
    }
}

/// Whether a string holds Jinja that needs rendering.
pub(crate) fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// The environment every render of a project uses; templates are added by the loader.
pub(crate) fn new_env(shared: Arc<Shared>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_debug(false);
    env.set_unknown_method_callback(methods::pycompat);
    env.set_formatter(methods::python_formatter);

    functions::add_globals(&mut env, &shared);
    adapter::add_globals(&mut env, &shared);
    statement::add_globals(&mut env, &shared);
    modules::add_globals(&mut env);
    mutable::add_globals(&mut env);
    macros::add_globals(&mut env, &shared);
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
}
