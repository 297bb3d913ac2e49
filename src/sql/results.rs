//! Results as people and programs see them: each cell as display text (`None` is NULL) and
//! each column with the kind that decides its alignment and its JSON form. The embedded
//! engine fills them from Arrow batches, a server from PostgreSQL's text, and one renderer
//! ([`super::render`]) draws both.

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef};
use arrow::error::ArrowError;
use arrow::json::writer::{EncoderOptions, make_encoder};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// How a column's values are shown: numbers right-aligned and bare in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Bool,
    Text,
    /// Values that are JSON text already (lists, structs and maps; `json` from a server):
    /// kept as they are in JSON output.
    Json,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

impl Column {
    pub fn text(name: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: Kind::Text,
        }
    }

    pub fn number(name: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: Kind::Number,
        }
    }
}

/// A statement's rows as display text (`None` is NULL), possibly only the first ones.
#[derive(Debug, Clone)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows the statement returned, kept or not.
    pub total_rows: u64,
}

impl ResultSet {
    /// A result whose rows are all kept.
    pub fn new(columns: Vec<Column>, rows: Vec<Vec<Option<String>>>) -> Self {
        let total_rows = rows.len() as u64;
        Self {
            columns,
            rows,
            total_rows,
        }
    }
}

impl Column {
    /// The column of an Arrow field.
    pub fn of_field(field: &Field) -> Self {
        Self {
            name: field.name().clone(),
            kind: kind_of(field.data_type()),
        }
    }
}

fn kind_of(data_type: &DataType) -> Kind {
    match data_type {
        DataType::Boolean => Kind::Bool,
        t if t.is_numeric() => Kind::Number,
        t if nested(t) => Kind::Json,
        _ => Kind::Text,
    }
}

/// Types whose values are shown as JSON, so that a list of strings stays readable as one.
fn nested(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::Struct(_)
            | DataType::Map(..)
    )
}

impl ResultSet {
    /// Every row of `batches`, all of `fields`.
    pub fn from_batches(fields: &[FieldRef], batches: &[RecordBatch]) -> Result<Self, ArrowError> {
        let mut rows = Vec::new();
        for batch in batches {
            append_rows(&mut rows, batch, None)?;
        }
        Ok(Self::new(
            fields.iter().map(|f| Column::of_field(f)).collect(),
            rows,
        ))
    }
}

/// Appends the rows of `batch` as display text, up to `keep` rows in all.
pub fn append_rows(
    rows: &mut Vec<Vec<Option<String>>>,
    batch: &RecordBatch,
    keep: Option<usize>,
) -> Result<(), ArrowError> {
    let room = keep.map_or(batch.num_rows(), |k| k.saturating_sub(rows.len()));
    let take = room.min(batch.num_rows());
    if take == 0 {
        return Ok(());
    }
    let options = FormatOptions::default();
    let json_options = EncoderOptions::default();
    let fields = batch.schema_ref().fields();
    let mut cells = batch
        .columns()
        .iter()
        .zip(fields)
        .map(|(column, field)| {
            Ok(if nested(field.data_type()) {
                Cell::Json(make_encoder(field, column.as_ref(), &json_options)?)
            } else {
                Cell::Display(ArrayFormatter::try_new(column.as_ref(), &options)?)
            })
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    // Logical nulls: a NullArray (the type of a bare NULL literal) has no validity buffer.
    let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
    for row in 0..take {
        rows.push(
            cells
                .iter_mut()
                .zip(&nulls)
                .map(|(cell, nulls)| {
                    let null = nulls.as_ref().is_some_and(|n| n.is_null(row));
                    (!null).then(|| cell.text(row))
                })
                .collect(),
        );
    }
    Ok(())
}

/// How one column's cells become text.
enum Cell<'a> {
    Display(ArrayFormatter<'a>),
    Json(arrow::json::writer::NullableEncoder<'a>),
}

impl Cell<'_> {
    fn text(&mut self, row: usize) -> String {
        match self {
            Cell::Display(formatter) => formatter.value(row).to_string(),
            Cell::Json(encoder) => {
                let mut out = Vec::new();
                encoder.encode(row, &mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
        }
    }
}
