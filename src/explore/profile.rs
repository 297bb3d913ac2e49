//! Column profiles computed with SQL over any relation the session can name.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

/// Sample values shown per column.
const SAMPLES: usize = 3;
/// Longest value shown in a profile cell; the rest is elided.
const SHOWN_CHARS: usize = 40;
/// Rows the sample values are drawn from (the statistics cover every row).
const SAMPLE_ROWS: usize = 10_000;

/// One row per column of `relation` (SQL text usable after FROM): name, type, nulls, an
/// approximate distinct count, min, max and a few sample values.
pub async fn profile(ctx: &SessionContext, relation: &str) -> Result<RecordBatch, DataFusionError> {
    let schema = ctx
        .sql(&format!("SELECT * FROM {relation} LIMIT 0"))
        .await?
        .schema()
        .as_arrow()
        .clone();
    let fields: Vec<&Field> = schema.fields().iter().map(AsRef::as_ref).collect();
    let mut stats = vec!["count(*)".to_string()];
    for field in &fields {
        let col = quote(field.name());
        stats.push(format!("count(*) - count({col})"));
        if orderable(field.data_type()) {
            // approx_distinct takes integers and strings; count other values as text.
            let native = field.data_type().is_integer()
                || matches!(
                    field.data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                );
            let distinct = if native {
                col.clone()
            } else {
                format!("CAST({col} AS VARCHAR)")
            };
            stats.push(format!("approx_distinct({distinct})"));
            stats.push(format!("CAST(min({col}) AS VARCHAR)"));
            stats.push(format!("CAST(max({col}) AS VARCHAR)"));
        } else {
            stats.push("CAST(NULL AS BIGINT)".into());
            stats.push("CAST(NULL AS VARCHAR)".into());
            stats.push("CAST(NULL AS VARCHAR)".into());
        }
    }
    let row = ctx
        .sql(&format!("SELECT {} FROM {relation}", stats.join(", ")))
        .await?
        .collect()
        .await?;
    let row = row
        .first()
        .filter(|b| b.num_rows() == 1)
        .ok_or_else(|| DataFusionError::Internal("a profile aggregate returns one row".into()))?;
    let value = |i: usize| -> Result<Option<String>, DataFusionError> {
        let col = cast(row.column(i), &DataType::Utf8)?;
        let col = col
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        Ok(col.iter().next().flatten().map(str::to_string))
    };
    let number = |i: usize| -> Result<Option<u64>, DataFusionError> {
        Ok(value(i)?.and_then(|v| v.parse().ok()))
    };

    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut nulls = Vec::new();
    let mut distinct = Vec::new();
    let mut mins = Vec::new();
    let mut maxs = Vec::new();
    let mut samples = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let base = 1 + i * 4;
        names.push(field.name().clone());
        types.push(field.data_type().to_string());
        nulls.push(number(base)?);
        distinct.push(number(base + 1)?);
        mins.push(value(base + 2)?.map(|v| truncate(&v, SHOWN_CHARS)));
        maxs.push(value(base + 3)?.map(|v| truncate(&v, SHOWN_CHARS)));
        samples.push(sample_values(ctx, relation, field.name()).await?);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(types)),
        Arc::new(UInt64Array::from(nulls)),
        Arc::new(UInt64Array::from(distinct)),
        Arc::new(StringArray::from(mins)),
        Arc::new(StringArray::from(maxs)),
        Arc::new(StringArray::from(samples)),
    ];
    let out = Schema::new(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("nulls", DataType::UInt64, true),
        Field::new("distinct_approx", DataType::UInt64, true),
        Field::new("min", DataType::Utf8, true),
        Field::new("max", DataType::Utf8, true),
        Field::new("samples", DataType::Utf8, false),
    ]);
    Ok(RecordBatch::try_new(Arc::new(out), columns)?)
}

/// A few distinct non-null values from the first rows, comma-separated.
async fn sample_values(
    ctx: &SessionContext,
    relation: &str,
    column: &str,
) -> Result<String, DataFusionError> {
    let col = quote(column);
    let batches = ctx
        .sql(&format!(
            "SELECT DISTINCT CAST({col} AS VARCHAR) AS v FROM (SELECT {col} FROM {relation} LIMIT {SAMPLE_ROWS}) WHERE {col} IS NOT NULL ORDER BY v LIMIT {SAMPLES}"
        ))
        .await?
        .collect()
        .await?;
    let mut values = Vec::new();
    for batch in &batches {
        let col = cast(batch.column(0), &DataType::Utf8)?;
        let col = col
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        values.extend(col.iter().flatten().map(|v| truncate(v, SHOWN_CHARS)));
    }
    Ok(values.join(", "))
}

fn orderable(t: &DataType) -> bool {
    !(t.is_nested() || matches!(t, DataType::Null | DataType::Binary | DataType::LargeBinary))
}

/// A double-quoted SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn truncate(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_string(),
    }
}
