//! What can go wrong in the shell, and how an error points at the statement text.

use std::path::PathBuf;

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use unicode_width::UnicodeWidthStr;

use crate::sql::SqlError;
use crate::sql::position;
use crate::sql::timetravel::TimeTravelError;

#[derive(Debug, thiserror::Error)]
pub enum ReplError {
    /// The engine or server refused or failed a statement; `position` is where in the
    /// statement text it points, when it says.
    #[error("{message}")]
    Query {
        message: String,
        position: Option<Position>,
    },
    #[error("query cancelled")]
    Cancelled,
    /// A meta command used wrongly, or asked of a backend that cannot answer it.
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("the line editor failed: {0}")]
    Editor(#[from] rustyline::error::ReadlineError),
}

/// A place in a statement's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line and column (in characters), as sqlparser reports them.
    LineColumn { line: usize, column: usize },
    /// 1-based character offset, as PostgreSQL reports it.
    Offset(usize),
}

impl From<DataFusionError> for ReplError {
    fn from(e: DataFusionError) -> Self {
        let position = position::of(&e).map(|p| Position::LineColumn {
            line: p.line,
            column: p.column,
        });
        let message = match e.find_root() {
            DataFusionError::SQL(inner, _) => match inner.as_ref() {
                ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                    format!("syntax error: {m}")
                }
                other => other.to_string(),
            },
            _ => e.strip_backtrace(),
        };
        ReplError::Query { message, position }
    }
}

impl From<SqlError> for ReplError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::DataFusion(e) | SqlError::TimeTravel(TimeTravelError::Register(e)) => {
                e.into()
            }
            SqlError::TimeTravel(e) => ReplError::Query {
                message: e.to_string(),
                position: None,
            },
        }
    }
}

/// Characters of the offending line shown around the caret.
const WINDOW: usize = 60;

/// psql's pointer at an error: the statement's offending line and a caret under the position.
///
/// ```text
/// LINE 2: SELECT amount FORM gold.orders
///                       ^
/// ```
pub fn caret(statement: &str, position: Position) -> Option<String> {
    let (line_no, column) = match position {
        Position::LineColumn { line, column } => (line, column),
        Position::Offset(offset) => {
            let before: String = statement.chars().take(offset.checked_sub(1)?).collect();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            (line, column)
        }
    };
    let text = statement.lines().nth(line_no.checked_sub(1)?)?;
    let chars: Vec<char> = text.chars().collect();
    let at = column.checked_sub(1)?.min(chars.len());
    // Long lines show a window around the position, as psql does.
    let (from, to) = if chars.len() <= WINDOW {
        (0, chars.len())
    } else {
        let from = at.saturating_sub(WINDOW / 2);
        (from, (from + WINDOW).min(chars.len()))
    };
    let mut shown: String = chars[from..to].iter().collect();
    let mut before: String = chars[from..at].iter().collect();
    if from > 0 {
        shown.insert_str(0, "...");
        before.insert_str(0, "...");
    }
    if to < chars.len() {
        shown.push_str("...");
    }
    let label = format!("LINE {line_no}: ");
    let pad = label.width() + before.replace('\t', " ").width();
    Some(format!(
        "{label}{}\n{}^",
        shown.replace('\t', " "),
        " ".repeat(pad)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_column_of_the_line() {
        let text = "SELECT 1\nFROM gold.orders FORM x";
        let shown = caret(
            text,
            Position::LineColumn {
                line: 2,
                column: 18,
            },
        )
        .unwrap();
        assert_eq!(
            shown,
            "LINE 2: FROM gold.orders FORM x\n                         ^"
        );
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "select 1\nfrom nope";
        assert_eq!(
            caret(text, Position::Offset(15)).unwrap(),
            "LINE 2: from nope\n             ^"
        );
    }

    #[test]
    fn long_lines_show_a_window() {
        let text = format!("SELECT {} FORM t", "a, ".repeat(50));
        let shown = caret(
            &text,
            Position::LineColumn {
                line: 1,
                column: 159,
            },
        )
        .unwrap();
        let (line, pointer) = shown.split_once('\n').unwrap();
        assert!(line.starts_with("LINE 1: ...") && line.len() < 90, "{line}");
        assert_eq!(&line[pointer.len() - 1..pointer.len() + 3], "FORM");
    }
}
