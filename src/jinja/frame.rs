//! The render frame: the state of one node's render (parse or compile mode, its context,
//! what `ref`/`source`/`config` recorded, how a context function failed), kept on a
//! thread-local stack so that the environment's globals can find the node they serve.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use minijinja::value::Value;
use minijinja::{Error, ErrorKind};
use serde_json::{Map as JsonMap, Value as Json};

use super::config_call::merge_config;

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
    pub failure: RefCell<Option<FrameFailure>>,
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
            returns: RefCell::default(),
            depth: Cell::new(0),
        }
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
