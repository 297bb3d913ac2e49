//! Tracing a line of compiled SQL back to the line of the node's own text it was rendered
//! from, so an error names the line the user wrote. minijinja keeps no line map, so lines are
//! aligned by their text: a source line matches a compiled line when its text outside Jinja
//! tags appears there, in order; the order-preserving alignment that matches the most text
//! decides. A compiled line no source line matches came from a macro (or an ephemeral model
//! injected as a CTE).

use std::collections::HashMap;

/// Where a position in compiled SQL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Text written in the node's own source, at this line and column (1-based).
    Source { line: usize, column: usize },
    /// Text a Jinja tag produced (a macro call, an expression); `line` is the source line
    /// holding the tag, when known.
    Expanded { line: Option<usize> },
}

/// The origin of `line`, `column` (1-based, in characters) of `compiled`, rendered from `raw`.
pub fn origin(raw: &str, compiled: &str, line: usize, column: usize) -> Origin {
    let sources = source_lines(raw);
    let targets: Vec<&str> = compiled.lines().collect();
    let Some(target) = line.checked_sub(1).filter(|l| *l < targets.len()) else {
        return Origin::Expanded { line: None };
    };
    let matches = candidates(&sources, &targets);
    let Some(at) = aligned(&sources, &matches, targets.len(), target) else {
        return Origin::Expanded { line: None };
    };
    let (source, text) = (&sources[at], targets[target]);
    let offset = text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(text.len(), |(b, _)| b);
    let spans = source.spans(text).unwrap_or_default();
    for (piece, (start, end)) in source.pieces.iter().zip(spans) {
        if (start..end).contains(&offset) {
            let written = piece.start + (offset - start);
            return Origin::Source {
                line: at + 1,
                column: source.text[..written].chars().count() + 1,
            };
        }
    }
    Origin::Expanded { line: Some(at + 1) }
}

/// One line of the node's own text.
struct SourceLine {
    /// The line as written.
    text: String,
    /// Its text outside Jinja tags, split at each tag, each piece trimmed, empty ones dropped.
    pieces: Vec<Piece>,
}

/// Text outside tags, and the byte offset in its line where it starts.
struct Piece {
    text: String,
    start: usize,
}

impl SourceLine {
    /// Lines without a letter or digit outside tags (`)`, `{% endif %}`) match too many
    /// compiled lines to say where one came from.
    fn matchable(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| p.text.chars().any(char::is_alphanumeric))
    }

    /// Whether the line is all text: then only the same text (indentation aside) matches.
    fn plain(&self) -> bool {
        matches!(self.pieces.as_slice(), [p] if p.text == self.text.trim())
    }

    fn weight(&self) -> u32 {
        self.pieces.iter().map(|p| p.text.len() as u32).sum()
    }

    /// Where each piece sits in `compiled` (byte ranges), if all of them do, in order.
    fn spans(&self, compiled: &str) -> Option<Vec<(usize, usize)>> {
        let mut from = 0;
        let mut spans = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            let start = from + compiled[from..].find(piece.text.as_str())?;
            from = start + piece.text.len();
            spans.push((start, from));
        }
        Some(spans)
    }
}

/// Splits `raw` into lines, noting the text outside `{{ }}`, `{% %}` and `{# #}` tags.
fn source_lines(raw: &str) -> Vec<SourceLine> {
    let mut lines = Vec::new();
    let mut closing: Option<&str> = None;
    for text in raw.split('\n') {
        let mut line = SourceLine {
            text: text.to_string(),
            pieces: Vec::new(),
        };
        let mut piece_start = 0;
        let mut at = 0;
        while at < text.len() {
            let rest = &text[at..];
            match closing {
                Some(end) if rest.starts_with(end) => {
                    at += end.len();
                    piece_start = at;
                    closing = None;
                }
                Some(_) => at += rest.chars().next().map_or(1, char::len_utf8),
                None => {
                    let opened = [("{{", "}}"), ("{%", "%}"), ("{#", "#}")]
                        .into_iter()
                        .find(|(open, _)| rest.starts_with(open));
                    match opened {
                        Some((open, end)) => {
                            line.push_piece(piece_start, at);
                            at += open.len();
                            closing = Some(end);
                        }
                        None => at += rest.chars().next().map_or(1, char::len_utf8),
                    }
                }
            }
        }
        if closing.is_none() {
            line.push_piece(piece_start, text.len());
        }
        lines.push(line);
    }
    lines
}

impl SourceLine {
    /// Adds `text[from..to]`, trimmed, as a piece unless it is blank.
    fn push_piece(&mut self, from: usize, to: usize) {
        let slice = &self.text[from..to];
        let trimmed = slice.trim_start();
        let start = from + (slice.len() - trimmed.len());
        let trimmed = trimmed.trim_end();
        if !trimmed.is_empty() {
            self.pieces.push(Piece {
                text: trimmed.to_string(),
                start,
            });
        }
    }
}

/// For each source line, the compiled lines (0-based, ascending) it matches.
fn candidates(sources: &[SourceLine], targets: &[&str]) -> Vec<Vec<usize>> {
    let mut exact: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        exact.entry(t.trim()).or_default().push(i);
    }
    sources
        .iter()
        .map(|s| {
            if !s.matchable() {
                Vec::new()
            } else if s.plain() {
                exact.get(s.text.trim()).cloned().unwrap_or_default()
            } else {
                (0..targets.len())
                    .filter(|&i| s.spans(targets[i]).is_some())
                    .collect()
            }
        })
        .collect()
}

/// The source line that compiled line `target` is aligned with in the order-preserving
/// alignment matching the most text, if any.
fn aligned(
    sources: &[SourceLine],
    matches: &[Vec<usize>],
    targets: usize,
    target: usize,
) -> Option<usize> {
    let (n, m) = (sources.len(), targets);
    let width = m + 1;
    // best[i * width + j]: most text matched aligning sources[..i] with compiled[..j].
    let mut best = vec![0u32; (n + 1) * width];
    let hit = |i: usize, j: usize| matches[i].binary_search(&j).is_ok();
    for i in 1..=n {
        let weight = sources[i - 1].weight();
        for j in 1..=m {
            let mut value = best[(i - 1) * width + j].max(best[i * width + j - 1]);
            if hit(i - 1, j - 1) {
                value = value.max(best[(i - 1) * width + j - 1] + weight);
            }
            best[i * width + j] = value;
        }
    }
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let here = best[i * width + j];
        if hit(i - 1, j - 1) && here == best[(i - 1) * width + j - 1] + sources[i - 1].weight() {
            if j - 1 == target {
                return Some(i - 1);
            }
            i -= 1;
            j -= 1;
        } else if here == best[(i - 1) * width + j] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "select order_id,
       {{ cents('amount') }} as amount_cents,
       bogus_column
from {{ ref('orders') }}
where amount > 0";

    const COMPILED: &str = "select order_id,
       round(amount * 100)
  + no_such_column as amount_cents,
       bogus_column
from silver.orders
where amount > 0";

    #[test]
    fn text_written_in_the_model_maps_to_its_line_and_column() {
        let at = |line, column| origin(RAW, COMPILED, line, column);
        assert_eq!(at(4, 8), Origin::Source { line: 3, column: 8 });
        assert_eq!(at(6, 7), Origin::Source { line: 5, column: 7 });
        // `as amount_cents` follows the macro call on the model's line 2.
        assert_eq!(
            at(3, 20),
            Origin::Source {
                line: 2,
                column: 30
            }
        );
    }

    #[test]
    fn text_a_tag_produced_is_expanded() {
        let at = |line, column| origin(RAW, COMPILED, line, column);
        assert_eq!(at(3, 5), Origin::Expanded { line: Some(2) });
        assert_eq!(at(5, 6), Origin::Expanded { line: Some(4) });
        assert_eq!(at(2, 8), Origin::Expanded { line: None });
        assert_eq!(at(99, 1), Origin::Expanded { line: None });
    }

    #[test]
    fn repeated_lines_keep_their_order() {
        let raw = "a,\n{{ x() }}\nwhere b\n  and c\nunion all\nselect a,\nwhere b\n  and c";
        let compiled = "a,\nwhere b\n  and c\nunion all\nselect a,\nwhere b\n  and c";
        assert_eq!(
            origin(raw, compiled, 7, 3),
            Origin::Source { line: 8, column: 3 }
        );
        assert_eq!(
            origin(raw, compiled, 3, 3),
            Origin::Source { line: 4, column: 3 }
        );
    }

    #[test]
    fn multi_line_tags_are_not_text() {
        let raw = "{{ config(\n  materialized='table'\n) }}\nselect x from t";
        assert_eq!(
            origin(raw, "\nselect x from t", 2, 8),
            Origin::Source { line: 4, column: 8 }
        );
        assert_eq!(
            origin(raw, "materialized='table'", 1, 1),
            Origin::Expanded { line: None }
        );
    }
}
