//! dbt's block tags that are not Jinja: `{% test %}` (a generic test, which is a macro named
//! `test_<name>`), `{% docs %}` (documentation in `.md` files), `{% snapshot %}` (a snapshot's
//! query) and `{% materialization %}` (not supported; skipped). Macro files are rewritten into plain minijinja, keeping every
//! line where it was so that error line numbers stay right.

use super::MACRO_PREFIX;

/// A macro defined in a macro file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MacroDecl {
    /// The name templates call it by (`test_<name>` for `{% test name %}`).
    pub name: String,
    pub line: usize,
}

/// A `{% docs name %}` block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DocBlock {
    pub name: String,
    pub text: String,
    pub line: usize,
}

/// The parts of a block tag: where it starts and ends, its keyword and the word after it.
pub(super) struct Tag<'a> {
    pub start: usize,
    pub end: usize,
    pub keyword: &'a str,
    pub keyword_at: usize,
    pub name: &'a str,
    pub name_at: usize,
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

/// Reads the tag starting at `start` (which points at `{%`).
fn read_tag(src: &str, start: usize) -> Tag<'_> {
    let mut at = start + 2;
    if matches!(src[at..].chars().next(), Some('-' | '+')) {
        at += 1;
    }
    at += src[at..].len() - src[at..].trim_start().len();
    let keyword_at = at;
    let keyword = &src[at..at + ident_len(&src[at..])];
    at += keyword.len();
    at += src[at..].len() - src[at..].trim_start().len();
    let name_at = at;
    let name = &src[at..at + ident_len(&src[at..])];
    let end = src[start..].find("%}").map_or(src.len(), |i| start + i + 2);
    Tag {
        start,
        end,
        keyword,
        keyword_at,
        name,
        name_at,
    }
}

fn line_at(src: &str, offset: usize) -> usize {
    src[..offset].matches('\n').count() + 1
}

/// Finds the next `{%` at or after `from`, skipping `{# comments #}` and `{% raw %}` blocks.
pub(super) fn next_tag(src: &str, mut from: usize) -> Option<Tag<'_>> {
    loop {
        let rest = &src[from..];
        let tag = rest.find("{%");
        let comment = rest.find("{#");
        match (tag, comment) {
            (Some(t), Some(c)) if c < t => {
                from += c + 2;
                from = src[from..].find("#}").map_or(src.len(), |i| from + i + 2);
            }
            (Some(t), _) => {
                let tag = read_tag(src, from + t);
                if tag.keyword == "raw" {
                    let mut after = tag.end;
                    loop {
                        match src[after..].find("{%") {
                            Some(i) => {
                                let inner = read_tag(src, after + i);
                                after = inner.end;
                                if inner.keyword == "endraw" {
                                    break;
                                }
                            }
                            None => return None,
                        }
                    }
                    from = after;
                    continue;
                }
                return Some(tag);
            }
            (None, _) => return None,
        }
    }
}

/// Rewrites a macro file for minijinja: macros are renamed to `<prefix><name>`,
/// `{% test x(...) %}…{% endtest %}` become macros `test_x`, materializations are blanked.
pub(crate) fn preprocess_macros(src: &str) -> (String, Vec<MacroDecl>) {
    let mut out = String::with_capacity(src.len() + 64);
    let mut decls = Vec::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(tag) = next_tag(src, from) {
        from = tag.end.max(tag.start + 2);
        match tag.keyword {
            "macro" | "test" if !tag.name.is_empty() => {
                let name = if tag.keyword == "test" {
                    format!("test_{}", tag.name)
                } else {
                    tag.name.to_string()
                };
                out.push_str(&src[copied..tag.keyword_at]);
                out.push_str("macro");
                out.push_str(&src[tag.keyword_at + tag.keyword.len()..tag.name_at]);
                out.push_str(MACRO_PREFIX);
                out.push_str(&name);
                copied = tag.name_at + tag.name.len();
                decls.push(MacroDecl {
                    name,
                    line: line_at(src, tag.start),
                });
            }
            "endtest" => {
                out.push_str(&src[copied..tag.keyword_at]);
                out.push_str("endmacro");
                copied = tag.keyword_at + tag.keyword.len();
            }
            "materialization" => {
                // Skip to the matching end tag, keeping only newlines.
                let mut end = src.len();
                let mut search = tag.end;
                while let Some(inner) = next_tag(src, search) {
                    search = inner.end.max(inner.start + 2);
                    if inner.keyword == "endmaterialization" {
                        end = inner.end;
                        break;
                    }
                }
                out.push_str(&src[copied..tag.start]);
                out.extend(src[tag.start..end].chars().filter(|c| *c == '\n'));
                copied = end;
                from = end;
            }
            _ => {}
        }
    }
    out.push_str(&src[copied..]);
    (out, decls)
}

/// The `{% docs %}` blocks of a Markdown file, their text trimmed.
pub(crate) fn docs_blocks(src: &str) -> Result<Vec<DocBlock>, (usize, String)> {
    Ok(named_blocks(src, "docs")?
        .into_iter()
        .map(|(name, line, body)| DocBlock {
            name,
            text: src[body].trim().to_string(),
            line,
        })
        .collect())
}

/// A `{% snapshot %}` block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SnapshotBlock {
    pub name: String,
    pub line: usize,
    /// The block's body, after as many newlines as the file has before it, so that its
    /// lines are the file's.
    pub sql: String,
}

/// The `{% snapshot name %}…{% endsnapshot %}` blocks of a snapshot file.
pub(crate) fn snapshot_blocks(src: &str) -> Result<Vec<SnapshotBlock>, (usize, String)> {
    Ok(named_blocks(src, "snapshot")?
        .into_iter()
        .map(|(name, line, body)| {
            let mut sql = "\n".repeat(line_at(src, body.start) - 1);
            sql.push_str(&src[body]);
            SnapshotBlock { name, line, sql }
        })
        .collect())
}

/// A block's name, line and body range.
type NamedBlock = (String, usize, std::ops::Range<usize>);

/// The blocks `{% <keyword> name %}…{% end<keyword> %}` of `src`.
fn named_blocks(src: &str, keyword: &str) -> Result<Vec<NamedBlock>, (usize, String)> {
    let closing = format!("end{keyword}");
    let mut blocks = Vec::new();
    let mut from = 0;
    while let Some(tag) = next_tag(src, from) {
        from = tag.end.max(tag.start + 2);
        if tag.keyword != keyword {
            continue;
        }
        let line = line_at(src, tag.start);
        if tag.name.is_empty() {
            return Err((line, format!("{{% {keyword} %}} needs a name")));
        }
        let mut end = None;
        let mut search = tag.end;
        while let Some(inner) = next_tag(src, search) {
            search = inner.end.max(inner.start + 2);
            if inner.keyword == closing {
                end = Some(inner);
                break;
            }
        }
        let Some(end) = end else {
            return Err((
                line,
                format!("{{% {keyword} {} %}} has no {{% {closing} %}}", tag.name),
            ));
        };
        blocks.push((tag.name.to_string(), line, tag.end..end.start));
        from = end.end;
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_and_tests_are_renamed_in_place() {
        let src = "{# {% macro no() %} #}\n{% macro a(x) %}{{ x }}{% endmacro %}\n{%- test positive(model, column_name) -%}\nselect 1\n{%- endtest %}\n{% raw %}{% macro nope() %}{% endraw %}";
        let (out, decls) = preprocess_macros(src);
        assert_eq!(
            out,
            "{# {% macro no() %} #}\n{% macro __strata_macro__a(x) %}{{ x }}{% endmacro %}\n{%- macro __strata_macro__test_positive(model, column_name) -%}\nselect 1\n{%- endmacro %}\n{% raw %}{% macro nope() %}{% endraw %}"
        );
        assert_eq!(
            decls,
            [
                MacroDecl {
                    name: "a".into(),
                    line: 2
                },
                MacroDecl {
                    name: "test_positive".into(),
                    line: 3
                }
            ]
        );
    }

    #[test]
    fn materializations_are_blanked() {
        let src = "{% materialization m, default %}\nx\n{% endmaterialization %}\n{% macro b() %}{% endmacro %}";
        let (out, decls) = preprocess_macros(src);
        assert_eq!(out, "\n\n\n{% macro __strata_macro__b() %}{% endmacro %}");
        assert_eq!(decls[0].line, 4);
    }

    #[test]
    fn docs() {
        let src = "# Docs\n{% docs status %}\nOne of *placed*, *shipped*.\n{% enddocs %}\n\n{%- docs other -%}x{%- enddocs -%}";
        let blocks = docs_blocks(src).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].name, "status");
        assert_eq!(blocks[0].text, "One of *placed*, *shipped*.");
        assert_eq!(blocks[0].line, 2);
        assert_eq!(blocks[1].text, "x");
        assert_eq!(docs_blocks("{% docs a %}x").unwrap_err().0, 1);
    }

    #[test]
    fn snapshots_keep_their_lines() {
        let src = "{% snapshot a %}\nselect 1\n{% endsnapshot %}\n\n{% snapshot b %}select {{ 2 }}{% endsnapshot %}";
        let blocks = snapshot_blocks(src).unwrap();
        assert_eq!(blocks[0].sql, "\nselect 1\n");
        assert_eq!((blocks[1].name.as_str(), blocks[1].line), ("b", 5));
        assert_eq!(blocks[1].sql, "\n\n\n\nselect {{ 2 }}");
        assert!(snapshot_blocks("{% snapshot %}x{% endsnapshot %}").is_err());
    }
}
