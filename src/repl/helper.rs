//! The rustyline helper: completion from the backend's catalog (cached until a statement
//! runs, since statements can create tables), and Enter running a statement only once it
//! ends with `;`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use tokio::runtime::Handle;

use super::backend::{Backend, TableName};
use super::complete::{self, Catalog};
use super::input;

/// How long completion waits for the catalog before offering nothing.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ReplHelper {
    backend: Arc<dyn Backend>,
    runtime: Handle,
    /// Relative paths in quotes complete from here.
    dir: PathBuf,
    cache: Mutex<Cache>,
    /// Set by the shell after each statement: the cached catalog may be out of date.
    stale: Arc<AtomicBool>,
}

#[derive(Default)]
struct Cache {
    schemas: Option<Vec<String>>,
    tables: Option<Vec<TableName>>,
    columns: HashMap<TableName, Vec<String>>,
}

impl ReplHelper {
    pub fn new(
        backend: Arc<dyn Backend>,
        runtime: Handle,
        dir: PathBuf,
        stale: Arc<AtomicBool>,
    ) -> Self {
        Self {
            backend,
            runtime,
            dir,
            cache: Mutex::default(),
            stale,
        }
    }
}

/// The catalog as completion sees it: the backend's answers, cached. Called from inside
/// `readline`, which the shell runs outside the runtime's workers, so blocking on the
/// runtime here is allowed.
struct Lookup<'a> {
    backend: &'a dyn Backend,
    runtime: &'a Handle,
    cache: &'a mut Cache,
}

impl Lookup<'_> {
    fn wait<T>(&self, work: impl Future<Output = Result<T, super::ReplError>>) -> Option<T> {
        self.runtime
            .block_on(tokio::time::timeout(LOOKUP_TIMEOUT, work))
            .ok()?
            .ok()
    }
}

impl Catalog for Lookup<'_> {
    fn schemas(&mut self) -> Vec<String> {
        if self.cache.schemas.is_none() {
            self.cache.schemas = self.wait(self.backend.schemas());
        }
        self.cache.schemas.clone().unwrap_or_default()
    }

    fn tables(&mut self) -> Vec<TableName> {
        if self.cache.tables.is_none() {
            self.cache.tables = self
                .wait(self.backend.tables(false))
                .map(|t| t.into_iter().map(|(name, _)| name).collect());
        }
        self.cache.tables.clone().unwrap_or_default()
    }

    fn columns(&mut self, table: &TableName) -> Vec<String> {
        if let Some(columns) = self.cache.columns.get(table) {
            return columns.clone();
        }
        let columns = self.wait(self.backend.columns(table)).unwrap_or_default();
        self.cache.columns.insert(table.clone(), columns.clone());
        columns
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let mut cache = self.cache.lock();
        if self.stale.swap(false, Ordering::Relaxed) {
            *cache = Cache::default();
        }
        let target = complete::analyze(line, pos);
        let mut lookup = Lookup {
            backend: self.backend.as_ref(),
            runtime: &self.runtime,
            cache: &mut cache,
        };
        let found = complete::candidates(&target, &mut lookup, &self.dir)
            .into_iter()
            .map(|(display, replacement)| Pair {
                display,
                replacement,
            })
            .collect();
        Ok((target.start, found))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if input::is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Helper for ReplHelper {}
