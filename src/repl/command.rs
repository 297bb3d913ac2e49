//! The backslash meta commands psql users know, plus `\history` and `\explain`.

use std::path::PathBuf;

use globset::GlobBuilder;

use super::backend::TableName;
use super::complete::matching_tables;
use super::error::ReplError;
use super::{Flow, Shell};
use crate::sql::render::{Expanded, Format};
use crate::sql::results::{Column, ResultSet};

pub const HELP: &str = r#"Meta commands (SQL statements end with ;):
  \d [name]              list tables, or describe one: columns, types, Delta version and files
  \dt [schema.]pattern   list tables and views matching a pattern (* and ? wildcards)
  \dn                    list schemas
  \l                     list databases (catalogs)
  \history name          versions of a Delta table (embedded engine only)
  \explain SQL           show the plan of a query (\explain analyze SQL runs it)
  \timing [on|off]       show how long each statement takes
  \x [on|off|auto]       expanded output, one line per column
  \pset format aligned|csv|json|markdown
  \pset maxrows N        rows shown of a long result in aligned output (0: all)
  \pset null TEXT        how NULL is shown
  \o [file]              send results to a file (no file: back to the screen)
  \i file.sql            run the statements and commands of a file
  \q                     quit (also Ctrl-D)
  \?                     this help
Keys: Tab completes keywords, tables, columns, commands and quoted paths; Ctrl-R searches
history; Ctrl-C cancels a running query or clears the line."#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Help,
    Quit,
    Describe(Option<String>),
    Tables(Option<String>),
    Schemas,
    Databases,
    History(String),
    Explain(String),
    Timing(Option<bool>),
    Expanded(Option<Expanded>),
    Pset(String, Option<String>),
    Output(Option<PathBuf>),
    Include(PathBuf),
}

fn on_off(word: &str) -> Result<bool, ReplError> {
    match word.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(ReplError::Usage(format!("expected on or off, not {other}"))),
    }
}

/// Parses one meta command line (starting with `\`).
pub fn parse(line: &str) -> Result<Meta, ReplError> {
    let line = line.trim().trim_end_matches(';').trim_end();
    let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let arg = (!rest.is_empty()).then(|| rest.to_string());
    let required = |what: &str| {
        arg.clone()
            .ok_or_else(|| ReplError::Usage(format!("{command} needs {what}")))
    };
    Ok(match command {
        "\\?" | "\\h" | "\\help" => Meta::Help,
        "\\q" | "\\quit" => Meta::Quit,
        "\\d" | "\\d+" => Meta::Describe(arg),
        "\\dt" | "\\dt+" | "\\dv" => Meta::Tables(arg),
        "\\dn" => Meta::Schemas,
        "\\l" | "\\list" => Meta::Databases,
        "\\history" => Meta::History(required("a table name")?),
        "\\explain" => Meta::Explain(required("a query")?),
        "\\timing" => Meta::Timing(arg.as_deref().map(on_off).transpose()?),
        "\\x" => Meta::Expanded(match arg.as_deref() {
            None => None,
            Some("auto") => Some(Expanded::Auto),
            Some(word) => Some(if on_off(word)? {
                Expanded::On
            } else {
                Expanded::Off
            }),
        }),
        "\\pset" => {
            let text = required("an option: format, maxrows or null")?;
            let (option, value) = match text.split_once(char::is_whitespace) {
                Some((option, value)) => (option.to_string(), Some(value.trim().to_string())),
                None => (text, None),
            };
            Meta::Pset(option, value)
        }
        "\\o" | "\\out" => Meta::Output(arg.map(PathBuf::from)),
        "\\i" | "\\include" => Meta::Include(PathBuf::from(required("a file")?)),
        other => {
            return Err(ReplError::Usage(format!(
                "invalid command {other}; \\? lists the commands"
            )));
        }
    })
}

/// Schemas of the engine or server itself, left out of listings unless asked for.
fn system_schema(name: &str) -> bool {
    name == "information_schema" || name.starts_with("pg_")
}

/// A `\dt` pattern: `[schema.]table`, each part a glob.
fn glob(pattern: &str) -> Result<globset::GlobMatcher, ReplError> {
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| ReplError::Usage(format!("bad pattern {pattern}: {e}")))
}

impl Shell {
    pub(super) fn meta(&mut self, meta: Meta) -> Result<Flow, ReplError> {
        match meta {
            Meta::Help => self.say(HELP),
            Meta::Quit => return Ok(Flow::Quit),
            Meta::Describe(None) => self.list_tables(None)?,
            Meta::Describe(Some(name)) => self.describe(&name)?,
            Meta::Tables(pattern) => self.list_tables(pattern.as_deref())?,
            Meta::Schemas => {
                let backend = self.backend.clone();
                let schemas = self.runtime.block_on(backend.schemas())?;
                let rows = schemas
                    .into_iter()
                    .filter(|s| !system_schema(s))
                    .map(|s| vec![Some(s)])
                    .collect();
                self.show(&ResultSet::new(vec![Column::text("Name")], rows))?;
            }
            Meta::Databases => {
                let backend = self.backend.clone();
                let databases = self.runtime.block_on(backend.databases())?;
                self.show(&databases)?;
            }
            Meta::History(name) => {
                let table = self.resolve(&name)?;
                let backend = self.backend.clone();
                let versions = self.runtime.block_on(backend.history(&table))?;
                self.show(&versions)?;
            }
            Meta::Explain(query) => self.run_sql(&format!("EXPLAIN {query}"))?,
            Meta::Timing(value) => {
                self.timing = value.unwrap_or(!self.timing);
                self.say(&format!(
                    "Timing is {}.",
                    if self.timing { "on" } else { "off" }
                ));
            }
            Meta::Expanded(value) => {
                self.expanded = value.unwrap_or(match self.expanded {
                    Expanded::Off => Expanded::On,
                    _ => Expanded::Off,
                });
                let state = match self.expanded {
                    Expanded::On => "on",
                    Expanded::Off => "off",
                    Expanded::Auto => "used automatically",
                };
                self.say(&format!("Expanded display is {state}."));
            }
            Meta::Pset(option, value) => self.pset(&option, value.as_deref())?,
            Meta::Output(path) => {
                self.output = match path {
                    Some(path) => {
                        let file = std::fs::File::create(&path)
                            .map_err(|source| ReplError::File { path, source })?;
                        Some(std::io::BufWriter::new(file))
                    }
                    None => None,
                };
            }
            Meta::Include(path) => {
                let file = std::fs::File::open(&path).map_err(|source| ReplError::File {
                    path: path.clone(),
                    source,
                })?;
                let origin = path.display().to_string();
                return self.script(std::io::BufReader::new(file), &origin);
            }
        }
        Ok(Flow::Continue)
    }

    fn pset(&mut self, option: &str, value: Option<&str>) -> Result<(), ReplError> {
        match (option, value) {
            ("format", Some(value)) => {
                self.format = <Format as clap::ValueEnum>::from_str(value, true).map_err(|_| {
                    ReplError::Usage(format!(
                        "unknown format {value}: aligned, csv, json or markdown"
                    ))
                })?;
                self.say(&format!("Output format is {}.", value.to_lowercase()));
            }
            ("maxrows", Some(value)) => {
                self.maxrows = value.parse().map_err(|_| {
                    ReplError::Usage(format!("maxrows is a number of rows, not {value}"))
                })?;
                self.say(&format!("Long results show {value} rows (0: all)."));
            }
            ("null", value) => {
                self.null = value.unwrap_or("").to_string();
                self.say(&format!("Null display is \"{}\".", self.null));
            }
            (option, None) => {
                return Err(ReplError::Usage(format!("\\pset {option} needs a value")));
            }
            (option, Some(_)) => {
                return Err(ReplError::Usage(format!(
                    "unknown option {option}: format, maxrows or null"
                )));
            }
        }
        Ok(())
    }

    /// The one table `name` names: qualified as given, or found in the single schema
    /// holding a table of that name.
    fn resolve(&self, name: &str) -> Result<TableName, ReplError> {
        let parsed = TableName::parse(name);
        if !parsed.schema.is_empty() {
            return Ok(parsed);
        }
        let backend = self.backend.clone();
        let tables: Vec<TableName> = self
            .runtime
            .block_on(backend.tables(false))?
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        let mut found = matching_tables(name, &tables);
        match found.len() {
            0 => Err(ReplError::Usage(format!("no table or view named {name}"))),
            1 => Ok(found.remove(0)),
            _ => Err(ReplError::Usage(format!(
                "{name} is in several schemas ({}); qualify it",
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn describe(&mut self, name: &str) -> Result<(), ReplError> {
        let table = self.resolve(name)?;
        let backend = self.backend.clone();
        let description = self.runtime.block_on(backend.describe_table(&table))?;
        let mut kind = description.kind.clone();
        if let Some(first) = kind.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        self.say(&format!("{kind} \"{table}\""));
        let rows = description
            .columns
            .into_iter()
            .map(|(name, data_type, nullable)| {
                vec![
                    Some(name),
                    Some(data_type),
                    Some(if nullable { "yes" } else { "no" }.to_string()),
                ]
            })
            .collect();
        self.show(&ResultSet::new(
            vec![
                Column::text("Column"),
                Column::text("Type"),
                Column::text("Nullable"),
            ],
            rows,
        ))?;
        if let Some(delta) = description.delta {
            self.say(&format!(
                "Delta table: version {}, {} file{}, at {}",
                delta.version,
                delta.files,
                if delta.files == 1 { "" } else { "s" },
                delta.location
            ));
        }
        Ok(())
    }

    fn list_tables(&mut self, pattern: Option<&str>) -> Result<(), ReplError> {
        let (schema_glob, table_glob) = match pattern {
            None => (None, None),
            Some(p) => match p.rsplit_once('.') {
                Some((schema, table)) => (Some(glob(schema)?), Some(glob(table)?)),
                None => (None, Some(glob(p)?)),
            },
        };
        let backend = self.backend.clone();
        let tables = self.runtime.block_on(backend.tables(true))?;
        let rows: Vec<Vec<Option<String>>> = tables
            .into_iter()
            .filter(|(t, _)| match &schema_glob {
                Some(g) => g.is_match(&t.schema),
                None => !system_schema(&t.schema),
            })
            .filter(|(t, _)| table_glob.as_ref().is_none_or(|g| g.is_match(&t.name)))
            .map(|(t, kind)| vec![Some(t.schema), Some(t.name), Some(kind)])
            .collect();
        if rows.is_empty() {
            self.say(&format!(
                "No tables or views{}.",
                pattern.map(|p| format!(" match {p}")).unwrap_or_default()
            ));
            return Ok(());
        }
        self.show(&ResultSet::new(
            vec![
                Column::text("Schema"),
                Column::text("Name"),
                Column::text("Type"),
            ],
            rows,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_parse_like_psql() {
        assert_eq!(
            parse("\\dt gold.*").unwrap(),
            Meta::Tables(Some("gold.*".into()))
        );
        assert_eq!(parse("\\d").unwrap(), Meta::Describe(None));
        assert_eq!(
            parse("\\x auto").unwrap(),
            Meta::Expanded(Some(Expanded::Auto))
        );
        assert_eq!(parse("\\timing on").unwrap(), Meta::Timing(Some(true)));
        assert_eq!(
            parse("\\pset format csv").unwrap(),
            Meta::Pset("format".into(), Some("csv".into()))
        );
        assert_eq!(parse("\\q;").unwrap(), Meta::Quit);
        assert!(
            parse("\\nope")
                .unwrap_err()
                .to_string()
                .contains("\\? lists")
        );
        assert!(parse("\\history").is_err());
    }
}
