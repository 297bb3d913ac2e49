//! Tab completion: what the word under the cursor can be (a meta command, a table, a column
//! of a table the statement reads or names by alias, a keyword, a file path inside quotes)
//! and the candidates for it. The catalog is asked through [`Catalog`], so this reads the
//! same for both backends and is tested without one.

use std::path::Path;

use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;

use super::backend::TableName;
use super::input;
use crate::sql::ident::ident;

/// The meta commands, for completion and `\?`.
pub const META_COMMANDS: &[&str] = &[
    "\\?",
    "\\d",
    "\\dn",
    "\\dt",
    "\\explain",
    "\\history",
    "\\i",
    "\\l",
    "\\o",
    "\\pset",
    "\\q",
    "\\timing",
    "\\x",
];

/// What the catalog knows, as completion needs it.
pub trait Catalog {
    fn schemas(&mut self) -> Vec<String>;
    fn tables(&mut self) -> Vec<TableName>;
    fn columns(&mut self, table: &TableName) -> Vec<String>;
}

/// A relation the statement reads: its name as typed, and its alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRelation {
    pub name: String,
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    MetaCommand,
    /// A table or view, `schema.name`.
    Table,
    /// A file path (inside quotes, or after `\i` and `\o`).
    Path,
    /// A keyword or a column; `qualifier.` words are columns of that relation (or tables of
    /// that schema).
    Word {
        relations: Vec<ReadRelation>,
    },
    Choice(&'static [&'static str]),
    Nothing,
}

/// The word being completed: it starts at byte `start` of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub start: usize,
    pub word: String,
    pub want: Want,
}

/// Keywords after which a relation name comes.
const BEFORE_TABLE: &[&str] = &[
    "FROM", "JOIN", "INTO", "UPDATE", "TABLE", "DESCRIBE", "DESC",
];
/// Keywords that end a FROM list or cannot be an alias.
const NOT_ALIAS: &[&str] = &[
    "WHERE",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "CROSS",
    "NATURAL",
    "ON",
    "USING",
    "GROUP",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "HAVING",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "WINDOW",
    "QUALIFY",
    "SELECT",
    "FROM",
    "AS",
    "SET",
    "VALUES",
];

/// Works out what the word before `pos` in `line` (the whole edit buffer) can be.
pub fn analyze(line: &str, pos: usize) -> Target {
    let before = &line[..pos];
    let trimmed = before.trim_start();
    if trimmed.starts_with('\\') {
        return analyze_meta(line, pos);
    }
    let statement_start = input::split(before).rest;
    analyze_sql(line, statement_start, pos)
}

fn analyze_meta(line: &str, pos: usize) -> Target {
    let before = &line[..pos];
    let word_start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = before[word_start..].to_string();
    let mut args = before.split_whitespace();
    let command = args.next().unwrap_or("");
    if !before[before.find('\\').unwrap_or(0)..].contains(char::is_whitespace) {
        return Target {
            start: word_start,
            word,
            want: Want::MetaCommand,
        };
    }
    let earlier: Vec<&str> = before[..word_start].split_whitespace().skip(1).collect();
    let want = match command {
        "\\d" | "\\dt" | "\\history" => Want::Table,
        "\\i" | "\\o" => Want::Path,
        "\\x" => Want::Choice(&["on", "off", "auto"]),
        "\\timing" => Want::Choice(&["on", "off"]),
        "\\pset" => match earlier.as_slice() {
            [] => Want::Choice(&["format", "maxrows", "null"]),
            ["format"] => Want::Choice(&["aligned", "csv", "json", "markdown"]),
            _ => Want::Nothing,
        },
        "\\explain" => {
            let sql_start = before.find("\\explain").unwrap_or(0) + "\\explain".len();
            return analyze_sql(line, sql_start, pos);
        }
        _ => Want::Nothing,
    };
    Target {
        start: word_start,
        word,
        want,
    }
}

fn analyze_sql(line: &str, statement_start: usize, pos: usize) -> Target {
    let statement = &line[statement_start..pos];
    match open_quote(statement) {
        Some(Quote::Single(at)) => {
            let start = statement_start + at + 1;
            return Target {
                start,
                word: line[start..pos].to_string(),
                want: Want::Path,
            };
        }
        Some(Quote::Other) => {
            return Target {
                start: pos,
                word: String::new(),
                want: Want::Nothing,
            };
        }
        None => {}
    }
    let word_len = statement
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .map(char::len_utf8)
        .sum::<usize>();
    let start = pos - word_len;
    let word = line[start..pos].to_string();
    // The whole statement, past the cursor too: aliases are often defined after it.
    let mut statement_tokens = tokens(&line[statement_start..]);
    if let Some(end) = statement_tokens
        .iter()
        .position(|t| *t == Token::Symbol(';'))
    {
        statement_tokens.truncate(end);
    }
    let earlier = tokens(&line[statement_start..start]);
    let want = if expects_table(&earlier) {
        Want::Table
    } else {
        Want::Word {
            relations: relations(&statement_tokens),
        }
    };
    Target { start, word, want }
}

enum Quote {
    /// Inside a single-quoted string opened at this byte.
    Single(usize),
    /// Inside a double-quoted identifier or a comment.
    Other,
}

fn open_quote(text: &str) -> Option<Quote> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let quote = bytes[i];
                match text[i + 1..].find(quote as char) {
                    Some(len) => i += len + 1,
                    None if quote == b'\'' => return Some(Quote::Single(i)),
                    None => return Some(Quote::Other),
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => match text[i..].find('\n') {
                Some(len) => i += len,
                None => return Some(Quote::Other),
            },
            b'/' if bytes.get(i + 1) == Some(&b'*') => match text[i..].find("*/") {
                Some(len) => i += len + 1,
                None => return Some(Quote::Other),
            },
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Symbol(char),
    Text,
}

/// Words (dotted names included), symbols and string literals; comments dropped.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '\'' {
            for (_, d) in chars.by_ref() {
                if d == '\'' {
                    break;
                }
            }
            out.push(Token::Text);
        } else if c == '-' && text[i..].starts_with("--") {
            for (_, d) in chars.by_ref() {
                if d == '\n' {
                    break;
                }
            }
        } else if c.is_alphanumeric() || c == '_' || c == '"' {
            let mut word = String::from(c);
            let mut quoted = c == '"';
            while let Some(&(_, d)) = chars.peek() {
                if quoted || d.is_alphanumeric() || d == '_' || d == '.' || d == '"' {
                    if d == '"' {
                        quoted = !quoted;
                    }
                    word.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Token::Word(word));
        } else {
            out.push(Token::Symbol(c));
        }
    }
    out
}

fn is_keyword(token: &Token, keywords: &[&str]) -> bool {
    matches!(token, Token::Word(w) if keywords.iter().any(|k| k.eq_ignore_ascii_case(w)))
}

/// Whether the next word is a relation: after FROM/JOIN/…, or after a comma in a FROM list.
fn expects_table(earlier: &[Token]) -> bool {
    match earlier.last() {
        Some(t) if is_keyword(t, BEFORE_TABLE) => true,
        Some(Token::Symbol(',')) => earlier
            .iter()
            .rev()
            .find(|t| is_keyword(t, &["FROM", "SELECT", "WHERE", "BY", "ON", "HAVING"]))
            .is_some_and(|t| is_keyword(t, &["FROM"])),
        _ => false,
    }
}

/// The relations a statement reads, with their aliases.
fn relations(tokens: &[Token]) -> Vec<ReadRelation> {
    let mut out = Vec::new();
    let mut in_from = false;
    let mut i = 0;
    while i < tokens.len() {
        let starts = match &tokens[i] {
            t if is_keyword(t, &["FROM", "JOIN", "UPDATE", "INTO"]) => {
                in_from = is_keyword(t, &["FROM", "JOIN"]);
                true
            }
            Token::Symbol(',') => in_from,
            Token::Symbol('(' | ')') => {
                in_from = false;
                false
            }
            t if is_keyword(t, NOT_ALIAS) => {
                in_from = false;
                false
            }
            _ => false,
        };
        i += 1;
        if !starts {
            continue;
        }
        let Some(Token::Word(name)) = tokens.get(i) else {
            continue;
        };
        if is_keyword(&tokens[i], NOT_ALIAS) {
            continue;
        }
        i += 1;
        if tokens.get(i).is_some_and(|t| is_keyword(t, &["AS"])) {
            i += 1;
        }
        let alias = match tokens.get(i) {
            Some(t @ Token::Word(alias)) if !is_keyword(t, NOT_ALIAS) => {
                i += 1;
                Some(alias.trim_matches('"').to_string())
            }
            _ => None,
        };
        out.push(ReadRelation {
            name: name.clone(),
            alias,
        });
    }
    out
}

/// The tables `name` (as typed: `t`, `s.t`, quoted parts) can refer to.
pub fn matching_tables(name: &str, tables: &[TableName]) -> Vec<TableName> {
    let parsed = TableName::parse(name);
    tables
        .iter()
        .filter(|t| {
            t.name == parsed.name && (parsed.schema.is_empty() || t.schema == parsed.schema)
        })
        .cloned()
        .collect()
}

/// Candidates for `target`: (shown, inserted) pairs, sorted.
pub fn candidates(target: &Target, catalog: &mut dyn Catalog, dir: &Path) -> Vec<(String, String)> {
    let word = target.word.as_str();
    let same = |items: Vec<String>| -> Vec<(String, String)> {
        items.into_iter().map(|s| (s.clone(), s)).collect()
    };
    let mut out = match &target.want {
        Want::MetaCommand => same(
            META_COMMANDS
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| c.to_string())
                .collect(),
        ),
        Want::Choice(choices) => same(
            choices
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| c.to_string())
                .collect(),
        ),
        Want::Table => same(table_candidates(word, catalog)),
        Want::Path => paths(word, dir),
        Want::Word { relations } => same(word_candidates(word, relations, catalog)),
        Want::Nothing => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// `schema.` and `schema.table` names starting with `word`.
fn table_candidates(word: &str, catalog: &mut dyn Catalog) -> Vec<String> {
    let lower = word.to_lowercase();
    let mut out: Vec<String> = catalog
        .tables()
        .iter()
        .map(|t| format!("{}.{}", ident(&t.schema), ident(&t.name)))
        .filter(|qualified| {
            qualified.starts_with(&lower)
                || (!lower.contains('.')
                    && qualified
                        .split_once('.')
                        .is_some_and(|(_, name)| name.starts_with(&lower)))
        })
        .collect();
    if !word.contains('.') {
        out.extend(
            catalog
                .schemas()
                .iter()
                .filter(|s| s.starts_with(&lower))
                .map(|s| format!("{}.", ident(s))),
        );
    }
    out
}

fn word_candidates(
    word: &str,
    relations: &[ReadRelation],
    catalog: &mut dyn Catalog,
) -> Vec<String> {
    if let Some((qualifier, part)) = word.rsplit_once('.') {
        let tables = catalog.tables();
        let named = relations
            .iter()
            .find(|r| {
                r.alias
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(qualifier))
            })
            .map_or(qualifier, |r| r.name.as_str());
        let found = matching_tables(named, &tables);
        if let Some(table) = found.first() {
            return catalog
                .columns(table)
                .iter()
                .filter(|c| c.starts_with(part))
                .map(|c| format!("{qualifier}.{}", ident(c)))
                .collect();
        }
        return table_candidates(word, catalog);
    }
    let upper = word.chars().next().is_some_and(char::is_uppercase);
    let mut out: Vec<String> = ALL_KEYWORDS
        .iter()
        .filter(|k| k.starts_with(&word.to_uppercase()))
        .map(|k| {
            if upper {
                k.to_string()
            } else {
                k.to_lowercase()
            }
        })
        .collect();
    let tables = catalog.tables();
    for relation in relations {
        if let Some(table) = matching_tables(&relation.name, &tables).first() {
            out.extend(
                catalog
                    .columns(table)
                    .into_iter()
                    .filter(|c| c.starts_with(word))
                    .map(|c| ident(&c)),
            );
        }
    }
    out
}

/// Files and directories starting with `typed` (relative to `dir`); directories end in `/`.
fn paths(typed: &str, dir: &Path) -> Vec<(String, String)> {
    let (folder, prefix) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let Ok(entries) = std::fs::read_dir(dir.join(folder)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let slash = if entry.path().is_dir() { "/" } else { "" };
            Some((format!("{name}{slash}"), format!("{folder}{name}{slash}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl Catalog for Fake {
        fn schemas(&mut self) -> Vec<String> {
            vec!["bronze".into(), "gold".into(), "silver".into()]
        }
        fn tables(&mut self) -> Vec<TableName> {
            vec![
                TableName::new("gold", "orders"),
                TableName::new("gold", "order_items"),
                TableName::new("silver", "recent_orders"),
            ]
        }
        fn columns(&mut self, table: &TableName) -> Vec<String> {
            match table.name.as_str() {
                "orders" => vec!["order_id".into(), "amount".into(), "Customer".into()],
                _ => vec!["item_id".into()],
            }
        }
    }

    fn complete(line: &str) -> Vec<String> {
        let target = analyze(line, line.len());
        candidates(&target, &mut Fake, Path::new("/"))
            .into_iter()
            .map(|(_, insert)| insert)
            .collect()
    }

    #[test]
    fn tables_after_from_and_join() {
        assert_eq!(
            complete("select * from gold.ord"),
            ["gold.order_items", "gold.orders"]
        );
        assert_eq!(complete("SELECT * FROM rec"), ["silver.recent_orders"]);
        assert_eq!(
            complete("select * from go"),
            ["gold.", "gold.order_items", "gold.orders"]
        );
        assert_eq!(
            complete("select * from gold.orders o join gold.order_i"),
            ["gold.order_items"]
        );
        assert_eq!(
            complete("select * from gold.orders, silver.re"),
            ["silver.recent_orders"]
        );
    }

    #[test]
    fn columns_after_an_alias_or_a_table_name() {
        assert_eq!(
            complete("select * from gold.orders o where o.am"),
            ["o.amount"]
        );
        assert_eq!(complete("select o.ord"), Vec::<String>::new());
        let line = "select o.ord from gold.orders as o";
        let target = analyze(line, "select o.ord".len());
        let found: Vec<String> = candidates(&target, &mut Fake, Path::new("/"))
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        assert_eq!(found, ["o.order_id"]);
        assert_eq!(
            complete("select gold.orders.C"),
            ["gold.orders.\"Customer\""]
        );
    }

    #[test]
    fn keywords_and_columns_of_the_statement() {
        assert_eq!(complete("select ordx"), Vec::<String>::new());
        let found = complete("select * from gold.orders where am");
        assert_eq!(found, ["amount"]);
        assert!(complete("SELECT * FROM gold.orders WHE").contains(&"WHERE".to_string()));
        assert!(complete("sel").contains(&"select".to_string()));
    }

    #[test]
    fn meta_commands_and_their_arguments() {
        assert_eq!(complete("\\d"), ["\\d", "\\dn", "\\dt"]);
        assert_eq!(complete("\\d gold.or"), ["gold.order_items", "gold.orders"]);
        assert_eq!(complete("\\pset format c"), ["csv"]);
        assert_eq!(complete("\\x a"), ["auto"]);
        assert_eq!(
            complete("\\explain select * from sil"),
            ["silver.", "silver.recent_orders"]
        );
    }

    #[test]
    fn paths_inside_quotes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("drop/orders")).unwrap();
        std::fs::write(dir.path().join("drop/orders/a.csv"), "x").unwrap();
        let line = "select * from 'drop/or";
        let target = analyze(line, line.len());
        assert_eq!(target.want, Want::Path);
        assert_eq!(
            candidates(&target, &mut Fake, dir.path()),
            [("orders/".to_string(), "drop/orders/".to_string())]
        );
        let line = "select * from read_csv('drop/orders/";
        let target = analyze(line, line.len());
        assert_eq!(
            candidates(&target, &mut Fake, dir.path()),
            [("a.csv".to_string(), "drop/orders/a.csv".to_string())]
        );
    }
}
