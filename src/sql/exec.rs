//! Parsing and running statements.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
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
    let statement = match statement {
        DFStatement::Statement(mut inner) => {
            if let Statement::ExplainTable {
                describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
                table_name,
                ..
            } = inner.as_ref()
            {
                let batch = explore::profile(ctx, &table_name.to_string()).await?;
                return Ok(Outcome {
                    schema: batch.schema(),
                    batches: vec![batch],
                });
            }
            rewrite::named_args(&mut inner);
            DFStatement::Statement(inner)
        }
        other => other,
    };
    let plan = ctx.state().statement_to_plan(statement).await?;
    let frame = ctx.execute_logical_plan(plan).await?;
    let schema = SchemaRef::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok(Outcome { schema, batches })
}
