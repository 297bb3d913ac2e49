//! The embedded backend: a DataFusion session over the lake (the full user session from
//! [`crate::session`]), statements run as `strata sql` runs them (time travel included),
//! Delta state read with deltalake.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::CatalogProvider;
use datafusion::datasource::TableType;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use super::backend::{Backend, DeltaState, Description, TableName};
use super::error::ReplError;
use crate::lake::{Lake, delta, layout};
use crate::session::CATALOG;
use crate::sql;
use crate::sql::results::{Column, ResultSet, append_rows};
use crate::sql::timetravel::Pins;
use crate::warehouse::catalog::{BRONZE, PUBLIC};

pub struct Embedded {
    ctx: SessionContext,
    lake: Lake,
    /// The session's `strata.as_of_run` pins, set by `SET strata.as_of_run`.
    pins: parking_lot::Mutex<Option<Pins>>,
}

impl Embedded {
    pub fn new(ctx: SessionContext, lake: Lake) -> Self {
        Self {
            ctx,
            lake,
            pins: parking_lot::Mutex::default(),
        }
    }

    fn catalog(&self) -> Result<Arc<dyn CatalogProvider>, ReplError> {
        self.ctx
            .catalog(CATALOG)
            .ok_or_else(|| ReplError::Usage(format!("the session has no catalog {CATALOG}")))
    }

    async fn delta(&self, table: &TableName) -> Result<Option<deltalake::DeltaTable>, ReplError> {
        if table.schema == BRONZE || table.schema == PUBLIC {
            return Ok(None);
        }
        delta::open(&self.lake, &layout::model_table(&table.schema, &table.name))
            .await
            .map_err(query_error)
    }
}

fn query_error(e: impl std::fmt::Display) -> ReplError {
    ReplError::Query {
        message: e.to_string(),
        position: None,
    }
}

fn table_kind(schema: &str, kind: TableType) -> String {
    match (schema, kind) {
        (BRONZE, _) => "bronze table (schema-on-read)".to_string(),
        (_, TableType::Base) => "table".to_string(),
        (_, TableType::View) => "view".to_string(),
        (_, TableType::Temporary) => "temporary".to_string(),
    }
}

#[async_trait]
impl Backend for Embedded {
    fn describe(&self) -> String {
        format!("the lake at {}", self.lake.root())
    }

    async fn run(
        &self,
        sql_text: &str,
        keep: Option<usize>,
        cancel: &CancellationToken,
    ) -> Result<Option<ResultSet>, ReplError> {
        let statements = sql::split_statements(sql_text)?;
        let mut last = None;
        for statement in statements {
            let ctx = self.ctx.clone();
            let lake = self.lake.clone();
            let mut pins = self.pins.lock().clone();
            // Its own task, so a cancel is seen even while an operator keeps this one busy;
            // aborting it drops the stream, which stops the query's partitions.
            let task = tokio::spawn(async move {
                let mut stream = sql::stream_statement(&ctx, &lake, &mut pins, statement).await?;
                let schema = stream.schema();
                let mut rows = Vec::new();
                let mut total = 0u64;
                while let Some(batch) = stream.next().await {
                    let batch = batch?;
                    append_rows(&mut rows, &batch, keep).map_err(query_error)?;
                    total += batch.num_rows() as u64;
                }
                let columns: Vec<Column> = schema
                    .fields()
                    .iter()
                    .map(|f| Column::of_field(f))
                    .collect();
                let result = (!columns.is_empty()).then_some(ResultSet {
                    columns,
                    rows,
                    total_rows: total,
                });
                Ok::<_, ReplError>((result, pins))
            });
            let abort = task.abort_handle();
            let (result, pins) = tokio::select! {
                done = task => done.map_err(query_error)??,
                _ = cancel.cancelled() => {
                    abort.abort();
                    return Err(ReplError::Cancelled);
                }
            };
            *self.pins.lock() = pins;
            last = result;
        }
        Ok(last)
    }

    async fn databases(&self) -> Result<ResultSet, ReplError> {
        let rows = self
            .ctx
            .catalog_names()
            .into_iter()
            .map(|name| {
                let location = (name == CATALOG).then(|| self.lake.root().to_string());
                vec![Some(name), location]
            })
            .collect();
        Ok(ResultSet::new(
            vec![Column::text("Name"), Column::text("Location")],
            rows,
        ))
    }

    async fn schemas(&self) -> Result<Vec<String>, ReplError> {
        let mut names = self.catalog()?.schema_names();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn tables(&self, with_kinds: bool) -> Result<Vec<(TableName, String)>, ReplError> {
        let catalog = self.catalog()?;
        let mut out = Vec::new();
        for schema_name in self.schemas().await? {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for name in schema.table_names() {
                let kind = match with_kinds {
                    true => match schema.table_type(&name).await? {
                        Some(kind) => table_kind(&schema_name, kind),
                        None => continue,
                    },
                    false => String::new(),
                };
                out.push((
                    TableName {
                        schema: schema_name.clone(),
                        name,
                    },
                    kind,
                ));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn columns(&self, table: &TableName) -> Result<Vec<String>, ReplError> {
        let provider = self
            .ctx
            .table_provider(datafusion::common::TableReference::partial(
                table.schema.as_str(),
                table.name.as_str(),
            ))
            .await?;
        Ok(provider
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect())
    }

    async fn describe_table(&self, table: &TableName) -> Result<Description, ReplError> {
        let provider = self
            .ctx
            .table_provider(datafusion::common::TableReference::partial(
                table.schema.as_str(),
                table.name.as_str(),
            ))
            .await?;
        let columns = provider
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
            .collect();
        let delta = match self.delta(table).await? {
            Some(loaded) => Some(DeltaState {
                version: loaded.version().unwrap_or_default(),
                files: loaded
                    .snapshot()
                    .map_err(query_error)?
                    .log_data()
                    .num_files(),
                location: loaded.table_url().to_string(),
            }),
            None => None,
        };
        Ok(Description {
            kind: table_kind(&table.schema, provider.table_type()),
            columns,
            delta,
        })
    }

    async fn history(&self, table: &TableName) -> Result<ResultSet, ReplError> {
        let Some(loaded) = self.delta(table).await? else {
            return Err(ReplError::Usage(format!("{table} is not a Delta table")));
        };
        let latest = loaded.version().unwrap_or_default();
        let commits: Vec<_> = loaded
            .history(None)
            .try_collect()
            .await
            .map_err(query_error)?;
        // Newest first, one per commit file (delta-rs writes commit info in every commit).
        let rows = commits
            .into_iter()
            .enumerate()
            .map(|(i, commit)| {
                let at = commit
                    .timestamp
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string());
                let parameters = commit
                    .operation_parameters
                    .map(|p| serde_json::to_string(&p).unwrap_or_default());
                let metrics = commit
                    .info
                    .get("operationMetrics")
                    .map(serde_json::Value::to_string);
                vec![
                    Some(latest.saturating_sub(i as u64).to_string()),
                    at,
                    commit.operation,
                    parameters,
                    metrics,
                ]
            })
            .collect();
        Ok(ResultSet::new(
            vec![
                Column::number("version"),
                Column::text("committed_at"),
                Column::text("operation"),
                Column::text("parameters"),
                Column::text("metrics"),
            ],
            rows,
        ))
    }
}
