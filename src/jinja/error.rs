//! How a render fails: [`RenderFailure`] is what minijinja and the context functions report
//! (template, line, message, typed failure); [`RenderError`] is the user-facing error for
//! the failures parsing and compiling both report, which `ProjectError` and `CompileError`
//! wrap.

use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::Error;

use super::frame::{Frame, FrameFailure};

/// A render error, located as precisely as minijinja allows.
#[derive(Debug)]
pub(crate) struct RenderFailure {
    /// The template the error happened in (a node file, a macro file, ...).
    pub template: Option<String>,
    pub line: Option<usize>,
    pub message: String,
    /// Set when a context function failed in a way the caller reports specifically.
    pub failure: Option<FrameFailure>,
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
    if msg.contains("operator on unsupported types") && msg.contains("object") {
        msg.push_str(OBJECT_ARITHMETIC);
    }
    msg
}

/// Why `date - timedelta(days=1)` fails, and what works in dbt and Strata alike.
const OBJECT_ARITHMETIC: &str = " (Strata's Jinja has no + or - on datetimes and timedeltas: \
     write `modules.datetime.datetime.fromtimestamp(d.timestamp() - delta.total_seconds())`, \
     `d.replace(day=1)`, or do the arithmetic in SQL with `dbt.dateadd`)";

/// The 1-based column of byte `offset` in `source`.
pub(crate) fn column_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    source[line_start..offset].chars().count() + 1
}

/// Whether a node was rendered to parse it or to compile it for execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Parse,
    Compile,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Parse => "rendering",
            Phase::Compile => "compiling",
        })
    }
}

/// A node's template could not be rendered; the file, line and node are in the message.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{}: error {phase} {node}: {message}", location(.path, *.line))]
    Template {
        path: PathBuf,
        line: Option<usize>,
        node: String,
        phase: Phase,
        message: String,
    },
    #[error("{}: {node}: Required var '{var}' not found in config (dbt_project.yml vars or --vars)", .path.display())]
    MissingVar {
        path: PathBuf,
        node: String,
        var: String,
    },
    #[error("{}: {node}: Env var required but not provided: '{var}'", .path.display())]
    MissingEnvVar {
        path: PathBuf,
        node: String,
        var: String,
    },
}

fn location(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(column_of("ab\ncd", 4), 2);
        assert_eq!(column_of("abc", 0), 1);
    }
}
