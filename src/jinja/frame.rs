//! The render frame: the state of one node's render (parse or compile mode, its context,
//! what `ref`/`source`/`config` recorded, how a context function failed), kept on a
//! thread-local stack so that the environment's globals can find the node they serve.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{Error, ErrorKind};
use serde_json::{Map as JsonMap, Value as Json};

use super::config_call::merge_config;
use super::warehouse::Warehouse;

/// A failure of a context function that the caller reports as a typed error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FrameFailure {
    MissingVar(String),
    MissingEnvVar(String),
    UnknownDoc(String),
    UndeclaredRef(String),
    UndeclaredSource(String, String),
    Raised(String),
    Unsupported(String),
    /// A compile-time query reads a relation this run builds: the node is rendered again once
    /// it is built (the reason says which).
    Deferred(String),
}

/// What `ref`/`source` answer while compiling: the relations of the node's declared
/// dependencies, spelled by the caller.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub refs: Vec<RefTarget>,
    pub sources: HashMap<(String, String), Value>,
}

impl Resolved {
    /// `ref([package,] name)` from a node of `own` package: the named package's node, else
    /// the root project's, the node's own package's, then any package's (as dbt searches).
    pub(crate) fn find(
        &self,
        package: Option<&str>,
        name: &str,
        own: &str,
        root: &str,
    ) -> Option<&RefTarget> {
        let named = |p: &str| self.refs.iter().find(|t| t.name == name && t.package == p);
        match package {
            Some(p) => named(p),
            None => named(root)
                .or_else(|| named(own))
                .or_else(|| self.refs.iter().find(|t| t.name == name)),
        }
    }
}

#[derive(Debug)]
pub(crate) struct RefTarget {
    pub unique_id: String,
    pub package: String,
    pub name: String,
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
    pub failure: RefCell<Option<FrameFailure>>,
    /// The package of the node rendered (`None`: the root project's).
    pub package: Option<String>,
    /// Where compile-time queries (`run_query`, `statement`, introspection) go.
    pub warehouse: Option<Arc<dyn Warehouse>>,
    /// Vars that override the project's for this render (a unit test's `overrides.vars`).
    pub vars: BTreeMap<String, Json>,
    /// What `env_var` answers before the environment (a unit test's `overrides.env_vars`).
    pub env_vars: BTreeMap<String, String>,
    /// What a call of these macros returns instead of running them (a unit test's
    /// `overrides.macros`), by `name` or `package.name`.
    pub macros: BTreeMap<String, Json>,
    /// `statement` results by name, for `load_result`.
    pub(super) results: RefCell<HashMap<String, Value>>,
    /// The macros being called (their packages and names), innermost last.
    pub(super) macro_stack: RefCell<Vec<(String, String)>>,
    pub(super) returns: RefCell<Vec<Option<Value>>>,
    pub(super) depth: Cell<usize>,
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
            package: None,
            warehouse: None,
            vars: BTreeMap::new(),
            env_vars: BTreeMap::new(),
            macros: BTreeMap::new(),
            results: RefCell::default(),
            macro_stack: RefCell::default(),
            returns: RefCell::default(),
            depth: Cell::new(0),
        }
    }

    /// The frame of a node of `package`.
    pub(crate) fn in_package(mut self, package: &str) -> Frame {
        self.package = Some(package.to_string());
        self
    }

    /// The frame with compile-time queries going to `warehouse`.
    pub(crate) fn with_warehouse(mut self, warehouse: Option<Arc<dyn Warehouse>>) -> Frame {
        self.warehouse = warehouse;
        self
    }

    /// The frame with `vars` overriding the project's.
    pub(crate) fn with_vars(mut self, vars: BTreeMap<String, Json>) -> Frame {
        self.vars = vars;
        self
    }

    /// The frame with `env_vars` answering `env_var` and `macros` answering their calls.
    pub(crate) fn with_overrides(
        mut self,
        env_vars: BTreeMap<String, String>,
        macros: BTreeMap<String, Json>,
    ) -> Frame {
        self.env_vars = env_vars;
        self.macros = macros;
        self
    }

    /// What a call of macro `name` of `package` returns when overridden.
    pub(super) fn macro_override(&self, package: &str, name: &str) -> Option<Value> {
        self.macros
            .get(&format!("{package}.{name}"))
            .or_else(|| self.macros.get(name))
            .map(Value::from_serialize)
    }

    /// The package whose code runs now: the innermost macro's, else the node's (`root` when
    /// the node is the root project's).
    pub(super) fn current_package(&self, root: &str) -> String {
        self.macro_stack
            .borrow()
            .last()
            .map(|(package, _)| package.clone())
            .or_else(|| self.package.clone())
            .unwrap_or_else(|| root.to_string())
    }

    /// The innermost macro being called, as `package.name`.
    pub(super) fn current_macro(&self) -> Option<String> {
        self.macro_stack
            .borrow()
            .last()
            .map(|(package, name)| format!("{package}.{name}"))
    }

    /// The package of the node rendered.
    pub(super) fn node_package<'a>(&'a self, root: &'a str) -> &'a str {
        self.package.as_deref().unwrap_or(root)
    }

    pub(super) fn is_parse(&self) -> bool {
        matches!(self.mode, Mode::Parse)
    }

    /// Records `failure` (the first one wins) and returns the error that aborts the render.
    pub(super) fn fail(&self, failure: FrameFailure, message: String) -> Error {
        let mut slot = self.failure.borrow_mut();
        if slot.is_none() {
            *slot = Some(failure);
        }
        Error::new(ErrorKind::InvalidOperation, message)
    }

    /// The config as `config.get` sees it.
    pub(super) fn config_view(&self) -> JsonMap<String, Json> {
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

pub(super) fn current() -> Result<Rc<Frame>, Error> {
    FRAMES
        .with(|frames| frames.borrow().last().cloned())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "dbt context function called outside of a render",
            )
        })
}
