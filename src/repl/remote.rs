//! The `--connect` backend: a running Strata server, or any PostgreSQL, through
//! tokio-postgres. Values arrive as text (the simple query protocol); their types come from
//! preparing the statement first, so numbers still right-align.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;

use super::backend::{Backend, Description, TableName};
use super::error::{Position, ReplError};
use crate::sql::results::{Column, Kind, ResultSet};

/// How long a cancelled query may take to report that it stopped.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

pub struct Remote {
    client: Client,
    target: String,
}

impl Remote {
    /// Connects to `url` (`postgres://user@host:port/db` or `host=… port=…`), without TLS.
    pub async fn connect(url: &str) -> Result<Self, ReplError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|source| ReplError::Connect {
                url: url.to_string(),
                source,
            })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("connection closed: {e}");
            }
        });
        Ok(Self {
            client,
            target: url.to_string(),
        })
    }

    /// Rows of a catalog query, as text.
    async fn text_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, ReplError> {
        let messages = self.client.simple_query(sql).await.map_err(from_pg)?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }
}

/// A PostgreSQL error as psql shows it: message, detail, hint, and where it points.
fn from_pg(e: tokio_postgres::Error) -> ReplError {
    let Some(db) = e.as_db_error() else {
        return ReplError::Query {
            message: e.to_string(),
            position: None,
        };
    };
    if *db.code() == SqlState::QUERY_CANCELED {
        return ReplError::Cancelled;
    }
    let mut message = db.message().to_string();
    if let Some(detail) = db.detail() {
        message.push_str(&format!("\nDETAIL: {detail}"));
    }
    if let Some(hint) = db.hint() {
        message.push_str(&format!("\nHINT: {hint}"));
    }
    let position = match db.position() {
        Some(ErrorPosition::Original(at)) => Some(Position::Offset(*at as usize)),
        _ => None,
    };
    ReplError::Query { message, position }
}

fn kind_of(t: &Type) -> Kind {
    match *t {
        Type::INT2
        | Type::INT4
        | Type::INT8
        | Type::FLOAT4
        | Type::FLOAT8
        | Type::NUMERIC
        | Type::OID => Kind::Number,
        Type::BOOL => Kind::Bool,
        Type::JSON | Type::JSONB => Kind::Json,
        _ => Kind::Text,
    }
}

/// A single-quoted SQL literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[async_trait]
impl Backend for Remote {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn run(
        &self,
        sql: &str,
        keep: Option<usize>,
        cancel: &CancellationToken,
    ) -> Result<Option<ResultSet>, ReplError> {
        // Types only: a statement the server cannot prepare still runs, as text.
        let types: Option<Vec<Type>> = self
            .client
            .prepare(sql)
            .await
            .ok()
            .map(|s| s.columns().iter().map(|c| c.type_().clone()).collect());
        let mut stream = Box::pin(self.client.simple_query_raw(sql).await.map_err(from_pg)?);
        let mut result: Option<ResultSet> = None;
        let mut cancelled = false;
        loop {
            let message = tokio::select! {
                message = stream.next() => message,
                _ = cancel.cancelled(), if !cancelled => {
                    cancelled = true;
                    // The server stops the query and ends the stream with an error.
                    let token = self.client.cancel_token();
                    tokio::spawn(async move { token.cancel_query(NoTls).await });
                    continue;
                }
                _ = tokio::time::sleep(CANCEL_GRACE), if cancelled => return Err(ReplError::Cancelled),
            };
            match message {
                None => break,
                Some(Err(e)) => return Err(from_pg(e)),
                Some(Ok(SimpleQueryMessage::RowDescription(columns))) => {
                    let columns = columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let t = types.as_ref().and_then(|t| t.get(i));
                            Column {
                                name: c.name().to_string(),
                                kind: t.map_or(Kind::Text, kind_of),
                            }
                        })
                        .collect();
                    result = Some(ResultSet::new(columns, Vec::new()));
                }
                Some(Ok(SimpleQueryMessage::Row(row))) => {
                    if let Some(set) = result.as_mut() {
                        set.total_rows += 1;
                        if keep.is_none_or(|k| set.rows.len() < k) {
                            set.rows.push(
                                (0..row.len())
                                    .map(|i| row.get(i).map(str::to_string))
                                    .collect(),
                            );
                        }
                    }
                }
                Some(Ok(_)) => {}
            }
        }
        Ok(result)
    }

    async fn databases(&self) -> Result<ResultSet, ReplError> {
        let rows = self
            .text_rows("SELECT datname FROM pg_catalog.pg_database ORDER BY 1")
            .await?;
        Ok(ResultSet::new(vec![Column::text("Name")], rows))
    }

    async fn schemas(&self) -> Result<Vec<String>, ReplError> {
        let rows = self
            .text_rows("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
            .await?;
        Ok(rows.into_iter().filter_map(|mut r| r.remove(0)).collect())
    }

    async fn tables(&self, _with_kinds: bool) -> Result<Vec<(TableName, String)>, ReplError> {
        let rows = self
            .text_rows(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let [schema, name, kind] = <[Option<String>; 3]>::try_from(r).ok()?;
                let kind = match kind.as_deref() {
                    Some("BASE TABLE") => "table".to_string(),
                    Some(other) => other.to_lowercase(),
                    None => String::new(),
                };
                Some((
                    TableName {
                        schema: schema?,
                        name: name?,
                    },
                    kind,
                ))
            })
            .collect())
    }

    async fn columns(&self, table: &TableName) -> Result<Vec<String>, ReplError> {
        Ok(self
            .describe_table(table)
            .await?
            .columns
            .into_iter()
            .map(|(name, _, _)| name)
            .collect())
    }

    async fn describe_table(&self, table: &TableName) -> Result<Description, ReplError> {
        let rows = self
            .text_rows(&format!(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                 WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
                literal(&table.schema),
                literal(&table.name)
            ))
            .await?;
        if rows.is_empty() {
            return Err(ReplError::Usage(format!("no table or view {table}")));
        }
        let kind = self
            .tables(true)
            .await?
            .into_iter()
            .find(|(name, _)| name == table)
            .map_or_else(|| "table".to_string(), |(_, kind)| kind);
        Ok(Description {
            kind,
            columns: rows
                .into_iter()
                .map(|r| {
                    let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                    (text(0), text(1), text(2) == "YES")
                })
                .collect(),
            delta: None,
        })
    }

    async fn history(&self, _table: &TableName) -> Result<ResultSet, ReplError> {
        Err(ReplError::Usage(
            "\\history reads the Delta log, which only the embedded engine can (run strata repl \
             without --connect)"
                .to_string(),
        ))
    }
}
