//! Parsing and running statements.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{DescribeAlias, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;

use super::rewrite;
use crate::explore;

/// What running a statement produced.
#[derive(Debug)]
pub struct Outcome {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Splits SQL text into statements (errors carry the line and column).
pub fn split_statements(sql: &str) -> Result<Vec<DFStatement>, DataFusionError> {
    Ok(DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?
        .into_iter()
        .collect())
}

/// Runs one statement to completion. `DESCRIBE <table>` profiles the table's columns (the
/// first look at raw data) instead of only listing them.
pub async fn run_statement(
    ctx: &SessionContext,
    statement: DFStatement,
) -> Result<Outcome, DataFusionError> {
    let stream = stream_statement(ctx, statement).await?;
    let schema = stream.schema();
    let batches = futures::TryStreamExt::try_collect(stream).await?;
    Ok(Outcome { schema, batches })
}

/// Runs one statement, its rows streamed as they are computed (so a caller can show the
/// first rows of a long result and stop, or drop the stream to cancel the query).
pub async fn stream_statement(
    ctx: &SessionContext,
    statement: DFStatement,
) -> Result<SendableRecordBatchStream, DataFusionError> {
    let statement = match statement {
        DFStatement::Statement(mut inner) => {
            if let Statement::ExplainTable {
                describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
                table_name,
                ..
            } = inner.as_ref()
            {
                let batch = explore::profile(ctx, &table_name.to_string()).await?;
                return Ok(Box::pin(RecordBatchStreamAdapter::new(
                    batch.schema(),
                    futures::stream::iter([Ok(batch)]),
                )));
            }
            rewrite::named_args(&mut inner);
            DFStatement::Statement(inner)
        }
        other => other,
    };
    let plan = ctx.state().statement_to_plan(statement).await?;
    ctx.execute_logical_plan(plan).await?.execute_stream().await
}
