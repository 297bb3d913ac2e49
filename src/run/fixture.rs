//! A unit test's rows (dbt's `dict`, `csv` and `sql` formats) as a DataFrame: typed like the
//! relation they stand for when it has a schema (a built input, or the model's output for the
//! expected rows), else as their values read (`1` an integer, `'x'` text).

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, Expr, SessionContext, cast, ident, lit};
use serde_json::{Map as JsonMap, Value as Json};

use crate::project::Fixture;
use crate::sql::ident::ident as quote_ident;

/// How the rows are typed.
pub enum Typing<'a> {
    /// As their values read.
    Inferred,
    /// As the relation they stand for: every column of `schema`, those the rows leave out null.
    Input(&'a Schema),
    /// The rows' own columns, each typed as the column of that name in `schema`.
    Columns(&'a Schema),
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("the rows name the column '{0}', which {1}")]
    UnknownColumn(String, &'static str),
    #[error("csv rows: {0}")]
    Csv(#[source] csv::Error),
    #[error(transparent)]
    Query(#[from] DataFusionError),
}

/// The rows of `fixture`, typed as `typing` says, planned in `ctx`.
pub async fn frame(
    ctx: &SessionContext,
    fixture: &Fixture,
    typing: Typing<'_>,
) -> Result<DataFrame, FixtureError> {
    let frame = match fixture {
        Fixture::Rows(rows) => values(ctx, rows, &typing).await?,
        Fixture::Csv(text) => {
            let rows = csv_rows(text, matches!(typing, Typing::Inferred))?;
            values(ctx, &rows, &typing).await?
        }
        Fixture::Sql(sql) => ctx.sql(sql).await?,
    };
    typed(frame, &typing)
}

/// The rows as a `select … union all select …` (no rows: an empty frame of the relation's
/// columns, or of none).
async fn values(
    ctx: &SessionContext,
    rows: &[JsonMap<String, Json>],
    typing: &Typing<'_>,
) -> Result<DataFrame, FixtureError> {
    let mut columns: Vec<&String> = Vec::new();
    for row in rows {
        for key in row.keys() {
            if !columns.contains(&key) {
                columns.push(key);
            }
        }
    }
    if rows.is_empty() {
        let schema = match typing {
            Typing::Input(schema) => (*schema).clone(),
            _ => Schema::empty(),
        };
        return Ok(ctx.read_batch(RecordBatch::new_empty(Arc::new(schema)))?);
    }
    let selects: Vec<String> = rows
        .iter()
        .map(|row| {
            let items: Vec<String> = columns
                .iter()
                .map(|c| {
                    let value = row.get(*c).map_or_else(|| "null".to_string(), literal);
                    format!("{value} as {}", quote_ident(c))
                })
                .collect();
            format!("select {}", items.join(", "))
        })
        .collect();
    Ok(ctx.sql(&selects.join(" union all ")).await?)
}

/// A YAML value as a SQL literal.
fn literal(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => format!("'{}'", other.to_string().replace('\'', "''")),
    }
}

/// CSV rows: an empty field is null; values are text, or (when `infer`) numbers and booleans
/// where they read as such.
fn csv_rows(text: &str, infer: bool) -> Result<Vec<JsonMap<String, Json>>, FixtureError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.trim().as_bytes());
    let header = reader.headers().map_err(FixtureError::Csv)?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(FixtureError::Csv)?;
        let row = header
            .iter()
            .zip(record.iter())
            .map(|(name, value)| (name.to_string(), csv_value(value, infer)))
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

fn csv_value(value: &str, infer: bool) -> Json {
    if value.is_empty() {
        return Json::Null;
    }
    if infer {
        if let Ok(n) = value.parse::<i64>() {
            return Json::from(n);
        }
        if let Some(n) = value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Json::Number(n);
        }
        match value.to_ascii_lowercase().as_str() {
            "true" => return Json::Bool(true),
            "false" => return Json::Bool(false),
            _ => {}
        }
    }
    Json::String(value.to_string())
}

/// The frame's columns cast as `typing` says.
fn typed(frame: DataFrame, typing: &Typing<'_>) -> Result<DataFrame, FixtureError> {
    let has = |name: &str| frame.schema().fields().iter().any(|f| f.name() == name);
    let cast_to = |name: &str, to: &DataType| cast(ident(name), to.clone()).alias(name);
    let exprs: Vec<Expr> = match typing {
        Typing::Inferred => return Ok(frame),
        Typing::Input(schema) => {
            for field in frame.schema().fields() {
                if schema.field_with_name(field.name()).is_err() {
                    return Err(FixtureError::UnknownColumn(
                        field.name().clone(),
                        "the input relation does not have",
                    ));
                }
            }
            schema
                .fields()
                .iter()
                .map(|f| {
                    if has(f.name()) {
                        Ok(cast_to(f.name(), f.data_type()))
                    } else {
                        let null = ScalarValue::try_from(f.data_type())?;
                        Ok(lit(null).alias(f.name()))
                    }
                })
                .collect::<Result<_, DataFusionError>>()?
        }
        Typing::Columns(schema) => frame
            .schema()
            .fields()
            .iter()
            .map(|f| match schema.field_with_name(f.name()) {
                Ok(target) => Ok(cast_to(f.name(), target.data_type())),
                Err(_) => Err(FixtureError::UnknownColumn(
                    f.name().clone(),
                    "the model does not return",
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    // No columns (an empty `rows:` with nothing to type it by): nothing to cast.
    if exprs.is_empty() {
        return Ok(frame);
    }
    Ok(frame.select(exprs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_values_are_read_as_dbt_fixtures() {
        let rows = csv_rows("id, name, score\n1, ann, 2.5\n2,,true\n", true).unwrap();
        assert_eq!(rows[0]["id"], Json::from(1));
        assert_eq!(rows[0]["name"], Json::from("ann"));
        assert_eq!(rows[0]["score"], Json::from(2.5));
        assert_eq!(rows[1]["name"], Json::Null);
        assert_eq!(rows[1]["score"], Json::Bool(true));
        let text = csv_rows("code\n007\n", false).unwrap();
        assert_eq!(text[0]["code"], Json::from("007"));
        assert_eq!(literal(&Json::from("it's")), "'it''s'");
    }
}
