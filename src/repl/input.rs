//! Splitting typed or piped text into statements: a statement ends at a `;` outside quotes,
//! comments and dollar-quoted strings. The shell uses it to know when a multi-line statement
//! is complete, and both backends receive one statement at a time.

/// One complete statement of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// From its first significant character to before its `;`.
    pub text: String,
    /// 1-based line of the input where `text` starts.
    pub line: usize,
}

/// What the input holds so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub statements: Vec<Statement>,
    /// Byte offset where the unterminated rest starts.
    pub rest: usize,
    /// Whether the rest holds anything but blanks and comments.
    pub rest_pending: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Single,
    Double,
    LineComment,
    BlockComment(usize),
    Dollar,
}

/// Splits `input` into complete statements and an unterminated rest.
pub fn split(input: &str) -> Split {
    let bytes = input.as_bytes();
    let mut out = Split::default();
    let mut state = State::Normal;
    let mut dollar_tag = "";
    // Start (byte offset, line) of the current statement's first significant character.
    let mut start: Option<(usize, usize)> = None;
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Normal => match c {
                b';' => {
                    if let Some((from, at)) = start.take() {
                        out.statements.push(Statement {
                            text: input[from..i].trim_end().to_string(),
                            line: at,
                        });
                    }
                    out.rest = i + 1;
                }
                b'-' if next == Some(b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment(1);
                    i += 1;
                }
                _ if c.is_ascii_whitespace() => {}
                _ => {
                    start.get_or_insert((i, line));
                    match c {
                        b'\'' => state = State::Single,
                        b'"' => state = State::Double,
                        b'$' => {
                            if let Some(tag) = dollar_tag_at(&input[i..]) {
                                dollar_tag = tag;
                                state = State::Dollar;
                                i += tag.len() - 1;
                            }
                        }
                        _ => {}
                    }
                }
            },
            // A doubled quote inside a string reads as a close and a reopen: same result.
            State::Single if c == b'\'' => state = State::Normal,
            State::Double if c == b'"' => state = State::Normal,
            State::LineComment if c == b'\n' => state = State::Normal,
            State::BlockComment(depth) => {
                if c == b'*' && next == Some(b'/') {
                    state = match depth {
                        1 => State::Normal,
                        d => State::BlockComment(d - 1),
                    };
                    i += 1;
                } else if c == b'/' && next == Some(b'*') {
                    state = State::BlockComment(depth + 1);
                    i += 1;
                }
            }
            State::Dollar if input[i..].starts_with(dollar_tag) => {
                state = State::Normal;
                i += dollar_tag.len() - 1;
            }
            _ => {}
        }
        if c == b'\n' {
            line += 1;
        }
        i += 1;
    }
    out.rest_pending = start.is_some();
    out
}

/// The `$tag$` opening a dollar-quoted string at the start of `text`, if any.
fn dollar_tag_at(text: &str) -> Option<&str> {
    let body = &text[1..];
    let end = body.find('$')?;
    let tag = &body[..end];
    let plain = tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !tag.starts_with(|c: char| c.is_ascii_digit());
    plain.then(|| &text[..end + 2])
}

/// Whether the text typed so far ends with a complete statement (or is a meta command, or
/// nothing), so Enter runs it instead of starting a new line.
pub fn is_complete(input: &str) -> bool {
    let trimmed = input.trim();
    trimmed.is_empty()
        || trimmed.starts_with('\\')
        || is_quit(trimmed)
        || !split(input).rest_pending
}

/// `quit` and `exit` on their own end the shell, as in psql.
pub fn is_quit(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "quit" | "exit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<String> {
        split(input)
            .statements
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        assert_eq!(
            texts("select ';' as a; -- x;\nselect \"a;b\" /* ; */ from t;"),
            ["select ';' as a", "select \"a;b\" /* ; */ from t"]
        );
        assert_eq!(
            texts("select $$a;b$$; select $q$;$q$;"),
            ["select $$a;b$$", "select $q$;$q$"]
        );
        assert_eq!(texts(";; -- only a comment;\n"), Vec::<String>::new());
    }

    #[test]
    fn lines_count_from_the_input_start() {
        let split = split("\n\nselect 1;\n  select\n 2;");
        assert_eq!(split.statements[0].line, 3);
        assert_eq!(split.statements[1].line, 4);
        assert_eq!(split.statements[1].text, "select\n 2");
    }

    #[test]
    fn completeness_decides_whether_enter_runs() {
        assert!(is_complete("select 1;"));
        assert!(is_complete("select 1; -- done"));
        assert!(!is_complete("select 1"));
        assert!(!is_complete("select 'a;"));
        assert!(!is_complete("select 1; select"));
        assert!(is_complete("\\dt gold.*"));
        assert!(is_complete("   "));
        assert!(is_complete("quit"));
    }
}
