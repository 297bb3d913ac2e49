//! What a client's statement asks of the server: session commands answered here (SET, SHOW,
//! transactions, COPY of a query), writes refused (the warehouse is read-only), and queries
//! planned by DataFusion.

use datafusion::sql::sqlparser::ast::{
    CloseCursor, CopyOption, CopySource, CopyTarget, FetchDirection, Ident, ObjectName,
    ObjectNamePart, ObjectType, Set, Statement, TransactionMode, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::sql::exec::set_value;
use crate::sql::search_path;
use crate::warehouse::catalog::PUBLIC;

/// A statement, sorted by who answers it.
#[derive(Debug, Clone)]
pub enum ServerCommand {
    /// Planned and run by DataFusion (SELECT, EXPLAIN, temporary views…).
    Query(Box<Statement>),
    /// `SET name = value` (`None`: `TO DEFAULT`).
    Set {
        name: String,
        value: Option<String>,
    },
    Reset {
        name: Option<String>,
    },
    Show {
        name: String,
    },
    ShowAll,
    Begin,
    Commit,
    Rollback,
    /// `COPY (query) TO STDOUT`.
    CopyOut {
        query: Box<Statement>,
        csv: bool,
        header: bool,
    },
    /// `DECLARE name CURSOR FOR query`.
    Declare {
        name: String,
        query: Box<Statement>,
    },
    /// `FETCH [FORWARD] n FROM name`; `None` fetches the rest.
    Fetch {
        name: String,
        count: Option<u64>,
    },
    /// `CLOSE name` / `CLOSE ALL`.
    Close {
        name: Option<String>,
    },
    /// Accepted and ignored: DISCARD, DEALLOCATE, LISTEN and the like, which drivers send.
    Ignored {
        tag: &'static str,
    },
    /// Refused: the statement would change the lake (SQLSTATE 25006).
    Write {
        what: String,
    },
    /// Refused: valid SQL Strata does not do.
    Unsupported {
        what: String,
    },
}

impl ServerCommand {
    pub fn of(statement: Statement) -> ServerCommand {
        match statement {
            Statement::Query(_) | Statement::Explain { .. } | Statement::ExplainTable { .. } => {
                ServerCommand::Query(Box::new(statement))
            }
            // A session's temporary views live in its own `public` schema (in memory; PostgreSQL's
            // pg_temp), which DataFusion plans as a plain view there.
            Statement::CreateView(mut view) if view.temporary => {
                if view.name.0.len() > 1 {
                    return ServerCommand::Unsupported {
                        what: "a temporary view in a named schema".to_string(),
                    };
                }
                view.temporary = false;
                view.name
                    .0
                    .insert(0, ObjectNamePart::Identifier(Ident::new(PUBLIC)));
                ServerCommand::Query(Box::new(Statement::CreateView(view)))
            }
            Statement::Set(set) => set_command(set),
            Statement::ShowVariable { variable } => show_command(&variable),
            Statement::ShowVariables { .. } => ServerCommand::ShowAll,
            Statement::Reset(reset) => ServerCommand::Reset {
                name: reset_name(&reset.to_string()),
            },
            Statement::StartTransaction { modes, .. } => {
                if modes.iter().any(|m| {
                    matches!(m, TransactionMode::AccessMode(a) if a.to_string().contains("WRITE"))
                }) {
                    ServerCommand::Write {
                        what: "a read-write transaction".to_string(),
                    }
                } else {
                    ServerCommand::Begin
                }
            }
            Statement::Commit { .. } => ServerCommand::Commit,
            Statement::Rollback {
                savepoint: None, ..
            } => ServerCommand::Rollback,
            Statement::Copy {
                source,
                to: true,
                target: CopyTarget::Stdout,
                options,
                ..
            } => {
                let csv = options.iter().any(
                    |o| matches!(o, CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv")),
                );
                let header = options
                    .iter()
                    .any(|o| matches!(o, CopyOption::Header(true)));
                let query = match source {
                    CopySource::Query(query) => Statement::Query(query),
                    CopySource::Table {
                        table_name,
                        columns,
                    } => match select_from(&table_name, &columns) {
                        Some(query) => query,
                        None => {
                            return ServerCommand::Unsupported {
                                what: format!("COPY {table_name}"),
                            };
                        }
                    },
                };
                ServerCommand::CopyOut {
                    query: Box::new(query),
                    csv,
                    header,
                }
            }
            Statement::Copy { .. } => ServerCommand::Write {
                what: "COPY other than COPY … TO STDOUT".to_string(),
            },
            Statement::Declare { mut stmts } if stmts.len() == 1 => {
                let declare = stmts.remove(0);
                match (declare.names.as_slice(), declare.for_query) {
                    ([name], Some(query)) => ServerCommand::Declare {
                        name: name.value.clone(),
                        query: Box::new(Statement::Query(query)),
                    },
                    _ => ServerCommand::Unsupported {
                        what: "DECLARE without a query".to_string(),
                    },
                }
            }
            Statement::Fetch {
                name, direction, ..
            } => match fetch_count(&direction) {
                Some(count) => ServerCommand::Fetch {
                    name: name.value,
                    count,
                },
                None => ServerCommand::Unsupported {
                    what: format!("FETCH {direction} (cursors only move forward)"),
                },
            },
            Statement::Close { cursor } => ServerCommand::Close {
                name: match cursor {
                    CloseCursor::All => None,
                    CloseCursor::Specific { name } => Some(name.value),
                },
            },
            Statement::Discard { .. } => ServerCommand::Ignored { tag: "DISCARD ALL" },
            Statement::Deallocate { .. } => ServerCommand::Ignored { tag: "DEALLOCATE" },
            Statement::Savepoint { .. } => ServerCommand::Ignored { tag: "SAVEPOINT" },
            Statement::ReleaseSavepoint { .. } => ServerCommand::Ignored { tag: "RELEASE" },
            Statement::Rollback {
                savepoint: Some(_), ..
            } => ServerCommand::Ignored { tag: "ROLLBACK" },
            Statement::Drop {
                object_type: ObjectType::View,
                temporary: true,
                ..
            } => ServerCommand::Query(Box::new(statement)),
            other => classify_other(other),
        }
    }
}

/// How many rows a forward FETCH asks for: `Some(None)` for all of them; `None` for a
/// direction other than forward.
fn fetch_count(direction: &FetchDirection) -> Option<Option<u64>> {
    let number = |v: &ValueWithSpan| match &v.value {
        Value::Number(n, _) => n.parse::<u64>().ok(),
        _ => None,
    };
    match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => Some(Some(1)),
        FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
            number(limit).map(Some)
        }
        FetchDirection::All | FetchDirection::ForwardAll => Some(None),
        _ => None,
    }
}

/// `COPY table (cols) TO STDOUT` as the query it stands for.
fn select_from(table: &ObjectName, columns: &[Ident]) -> Option<Statement> {
    let columns = if columns.is_empty() {
        "*".to_string()
    } else {
        columns
            .iter()
            .map(Ident::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!("SELECT {columns} FROM {table}");
    let mut parsed = Parser::parse_sql(&PostgreSqlDialect {}, &sql).ok()?;
    (parsed.len() == 1).then(|| parsed.remove(0))
}

/// Writes and DDL are refused as read-only; the rest is unsupported.
fn classify_other(statement: Statement) -> ServerCommand {
    let text = statement.to_string();
    let what: String = text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    match statement {
        Statement::Insert(_)
        | Statement::Update { .. }
        | Statement::Delete(_)
        | Statement::Merge { .. }
        | Statement::Truncate { .. }
        | Statement::CreateTable(_)
        | Statement::CreateView(_)
        | Statement::CreateSchema { .. }
        | Statement::CreateDatabase { .. }
        | Statement::CreateIndex(_)
        | Statement::CreateFunction(_)
        | Statement::CreateRole { .. }
        | Statement::CreateSequence { .. }
        | Statement::CreateType { .. }
        | Statement::CreateExtension { .. }
        | Statement::AlterTable { .. }
        | Statement::AlterView { .. }
        | Statement::AlterRole { .. }
        | Statement::AlterSchema { .. }
        | Statement::AlterIndex { .. }
        | Statement::Drop { .. }
        | Statement::DropFunction { .. }
        | Statement::Grant { .. }
        | Statement::Revoke { .. }
        | Statement::Comment { .. }
        | Statement::Vacuum(_)
        | Statement::Analyze { .. } => ServerCommand::Write { what },
        _ => ServerCommand::Unsupported { what },
    }
}

fn set_command(set: Set) -> ServerCommand {
    match set {
        Set::SingleAssignment {
            variable, values, ..
        } => {
            let name = variable.to_string();
            let value = if name.eq_ignore_ascii_case("search_path") {
                search_path::setting(&values)
            } else {
                set_value(&values)
            };
            ServerCommand::Set { name, value }
        }
        Set::SetTimeZone { value, .. } => ServerCommand::Set {
            name: "TimeZone".to_string(),
            value: set_value(std::slice::from_ref(&value)),
        },
        Set::SetNames { charset_name, .. } => ServerCommand::Set {
            name: "client_encoding".to_string(),
            value: Some(charset_name.value),
        },
        Set::SetNamesDefault {} => ServerCommand::Set {
            name: "client_encoding".to_string(),
            value: None,
        },
        Set::SetTransaction { modes, .. } => {
            let read_write = modes.iter().any(
                |m| matches!(m, TransactionMode::AccessMode(a) if a.to_string().contains("WRITE")),
            );
            if read_write {
                ServerCommand::Write {
                    what: "a read-write transaction".to_string(),
                }
            } else {
                ServerCommand::Ignored { tag: "SET" }
            }
        }
        // Roles and session authorization: everyone reads the same warehouse.
        Set::SetRole { .. } | Set::SetSessionAuthorization(_) => {
            ServerCommand::Ignored { tag: "SET" }
        }
        other => ServerCommand::Unsupported {
            what: other.to_string(),
        },
    }
}

fn show_command(variable: &[Ident]) -> ServerCommand {
    let words: Vec<String> = variable.iter().map(|i| i.value.to_lowercase()).collect();
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["all"] => ServerCommand::ShowAll,
        ["transaction", "isolation", "level"] => ServerCommand::Show {
            name: "transaction_isolation".to_string(),
        },
        ["time", "zone"] => ServerCommand::Show {
            name: "TimeZone".to_string(),
        },
        _ => ServerCommand::Show {
            name: variable
                .iter()
                .map(|i| i.value.clone())
                .collect::<Vec<_>>()
                .join("."),
        },
    }
}

/// `RESET name` / `RESET ALL` as sqlparser prints them.
fn reset_name(text: &str) -> Option<String> {
    let name = text.trim_start_matches("RESET").trim();
    (!name.eq_ignore_ascii_case("all")).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(sql: &str) -> ServerCommand {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        ServerCommand::of(statements.remove(0))
    }

    #[test]
    fn session_commands_are_recognized() {
        assert!(matches!(command("SET extra_float_digits = 3"),
            ServerCommand::Set { name, value: Some(v) } if name == "extra_float_digits" && v == "3"));
        assert!(matches!(command("SET search_path TO gold, public"),
            ServerCommand::Set { value: Some(v), .. } if v == "gold, public"));
        assert!(matches!(command("SET TIME ZONE 'UTC'"),
            ServerCommand::Set { name, .. } if name == "TimeZone"));
        assert!(matches!(
            command("SET application_name TO DEFAULT"),
            ServerCommand::Set { value: None, .. }
        ));
        assert!(matches!(command("SHOW TRANSACTION ISOLATION LEVEL"),
            ServerCommand::Show { name } if name == "transaction_isolation"));
        assert!(matches!(command("SHOW ALL"), ServerCommand::ShowAll));
        assert!(matches!(command("BEGIN READ ONLY"), ServerCommand::Begin));
        assert!(matches!(
            command("START TRANSACTION READ WRITE"),
            ServerCommand::Write { .. }
        ));
        assert!(matches!(command("COMMIT"), ServerCommand::Commit));
        assert!(matches!(command("ROLLBACK"), ServerCommand::Rollback));
        assert!(matches!(
            command("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv, HEADER true)"),
            ServerCommand::CopyOut {
                csv: true,
                header: true,
                ..
            }
        ));
        assert!(matches!(
            command("COPY gold.t TO STDOUT"),
            ServerCommand::CopyOut { csv: false, .. }
        ));
        assert!(matches!(
            command("RESET ALL"),
            ServerCommand::Reset { name: None }
        ));
        assert!(matches!(
            command("DISCARD ALL"),
            ServerCommand::Ignored { .. }
        ));
        assert!(matches!(command("DECLARE c CURSOR FOR SELECT 1"),
            ServerCommand::Declare { name, .. } if name == "c"));
        assert!(matches!(
            command("FETCH FORWARD 10 FROM c"),
            ServerCommand::Fetch {
                count: Some(10),
                ..
            }
        ));
        assert!(matches!(
            command("FETCH ALL FROM c"),
            ServerCommand::Fetch { count: None, .. }
        ));
        assert!(matches!(
            command("CLOSE c"),
            ServerCommand::Close { name: Some(_) }
        ));
    }

    #[test]
    fn writes_are_refused_and_temporary_views_allowed() {
        for sql in [
            "INSERT INTO gold.t VALUES (1)",
            "UPDATE gold.t SET a = 1",
            "DELETE FROM gold.t",
            "CREATE TABLE x (a int)",
            "CREATE TABLE x AS SELECT 1",
            "DROP TABLE gold.t",
            "CREATE VIEW v AS SELECT 1",
            "TRUNCATE gold.t",
            "COPY gold.t FROM STDIN",
            "ALTER TABLE gold.t ADD COLUMN b int",
        ] {
            assert!(matches!(command(sql), ServerCommand::Write { .. }), "{sql}");
        }
        assert!(matches!(
            command("CREATE TEMPORARY VIEW v AS SELECT 1"),
            ServerCommand::Query(_)
        ));
        assert!(matches!(command("SELECT 1"), ServerCommand::Query(_)));
    }
}
