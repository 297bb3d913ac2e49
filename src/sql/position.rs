//! Where a DataFusion error points in the SQL text it came from: its diagnostic's span, or
//! sqlparser's "… at Line: N, Column: M". The shell draws a caret there; `compile` and
//! `build` name that line of the compiled SQL file.

use datafusion::error::DataFusionError;

/// A 1-based line and column (in characters), as sqlparser counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineColumn {
    pub line: usize,
    pub column: usize,
}

/// Where `e` points in its statement's text, when it says.
pub fn of(e: &DataFusionError) -> Option<LineColumn> {
    e.diagnostic()
        .and_then(|d| d.span)
        .filter(|span| span.start.line > 0)
        .map(|span| LineColumn {
            line: span.start.line as usize,
            column: span.start.column as usize,
        })
        .or_else(|| in_message(&e.to_string()))
}

/// Reads sqlparser's "… at Line: N, Column: M" out of a message.
pub fn in_message(message: &str) -> Option<LineColumn> {
    let at = message.rfind("Line: ")?;
    let rest = &message[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(LineColumn {
        line: line.parse().ok()?,
        column: column.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlparser_positions_are_read_from_messages() {
        assert_eq!(
            in_message("Expected: end of statement, found: x at Line: 3, Column: 12"),
            Some(LineColumn {
                line: 3,
                column: 12
            })
        );
        assert_eq!(in_message("no table named x"), None);
    }
}
