//! Parsing and running statements, as `strata sql` and the REPL's embedded backend do: the
//! server's time travel (`VERSION AS OF`, `SET strata.as_of_run`) included.

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::EmptyRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{ResetStatement, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{DescribeAlias, Expr, ObjectName, Set, Statement, Value};
use std::sync::Arc;

use super::names::ResultNames;
use super::search_path::SearchPath;
use super::timetravel::{self, AS_OF_RUN, Pins, TimeTravelError};
use super::{dialect, rewrite};
use crate::explore;
use crate::lake::Lake;

/// What running a statement produced.
#[derive(Debug)]
pub struct Outcome {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// A statement that failed to plan or run.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    TimeTravel(#[from] TimeTravelError),
}

/// Splits SQL text into statements (errors carry the line and column).
pub fn split_statements(sql: &str) -> Result<Vec<DFStatement>, DataFusionError> {
    dialect::parse_datafusion(sql)
}

/// Runs one statement to completion. `DESCRIBE <table>` profiles the table's columns (the
/// first look at raw data) instead of only listing them. `pins` are the session's
/// `strata.as_of_run` pins, which a `SET`/`RESET` of it changes.
pub async fn run_statement(
    ctx: &SessionContext,
    lake: &Lake,
    pins: &mut Option<Pins>,
    statement: DFStatement,
) -> Result<Outcome, SqlError> {
    let stream = stream_statement(ctx, lake, pins, statement).await?;
    let schema = stream.schema();
    let batches = futures::TryStreamExt::try_collect(stream).await?;
    Ok(Outcome { schema, batches })
}

/// Runs one statement, its rows streamed as they are computed (so a caller can show the
/// first rows of a long result and stop, or drop the stream to cancel the query), its
/// columns named as PostgreSQL names them.
pub async fn stream_statement(
    ctx: &SessionContext,
    lake: &Lake,
    pins: &mut Option<Pins>,
    statement: DFStatement,
) -> Result<SendableRecordBatchStream, SqlError> {
    if let Some(run) = as_of_run(&statement) {
        *pins = match run.filter(|r| !r.is_empty()) {
            Some(run) => Some(timetravel::pins_of_run(lake, &run).await?),
            None => None,
        };
        return Ok(Box::pin(EmptyRecordBatchStream::new(Arc::new(
            Schema::empty(),
        ))));
    }
    let names = match &statement {
        DFStatement::Statement(inner) => ResultNames::of(inner),
        _ => ResultNames::default(),
    };
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
            let default_schema = ctx
                .state()
                .config()
                .options()
                .catalog
                .default_schema
                .clone();
            let path = SearchPath::of_catalog(ctx, &default_schema);
            rewrite::before_planning(ctx, lake, &mut inner, &path, pins.as_ref()).await?;
            DFStatement::Statement(inner)
        }
        other => other,
    };
    let plan = ctx.state().statement_to_plan(statement).await?;
    let stream = ctx
        .execute_logical_plan(plan)
        .await?
        .execute_stream()
        .await?;
    Ok(names.stream(stream))
}

/// The run a `SET strata.as_of_run = '…'` pins to (`Some(None)` for `RESET` or `DEFAULT`);
/// `None` for any other statement.
fn as_of_run(statement: &DFStatement) -> Option<Option<String>> {
    let is_as_of_run = |name: &ObjectName| name.to_string().eq_ignore_ascii_case(AS_OF_RUN);
    match statement {
        DFStatement::Statement(inner) => match inner.as_ref() {
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) if is_as_of_run(variable) => Some(set_value(values)),
            _ => None,
        },
        DFStatement::Reset(ResetStatement::Variable(name)) if is_as_of_run(name) => Some(None),
        _ => None,
    }
}

/// The text of a SET value list: `'a'`, `a`, `1`, `a, b` (search_path) or DEFAULT (`None`).
pub fn set_value(values: &[Expr]) -> Option<String> {
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        })
        .collect();
    if parts.len() == 1 && parts[0].eq_ignore_ascii_case("default") {
        return None;
    }
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_of_run_of(sql: &str) -> Option<Option<String>> {
        as_of_run(&split_statements(sql).unwrap()[0])
    }

    #[test]
    fn set_and_reset_of_as_of_run_are_recognized() {
        assert_eq!(
            as_of_run_of("SET strata.as_of_run = 'r1'"),
            Some(Some("r1".to_string()))
        );
        assert_eq!(as_of_run_of("RESET strata.as_of_run"), Some(None));
        assert_eq!(as_of_run_of("SET strata.as_of_run TO DEFAULT"), Some(None));
        assert_eq!(
            as_of_run_of("SET datafusion.execution.batch_size = 10"),
            None
        );
        assert_eq!(as_of_run_of("SELECT 1"), None);
    }
}
