//! Values on the wire as PostgreSQL spells them, where arrow-pg's encoding differs: the
//! types Arrow lacks (`json`, `jsonb`, `uuid`, held as text and marked by the session's type
//! planner), and fractional seconds without trailing zeros (`13:14:15.5`, not
//! `13:14:15.500000`). Everything else is arrow-pg's.

use std::error::Error;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow_pg::encoder::{Encoder, encode_value};
use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use tokio_postgres::types::{IsNull, ToSql, to_sql_checked};

use crate::session::PG_TYPE_KEY;

type BoxError = Box<dyn Error + Sync + Send>;

/// The PostgreSQL type a field is reported as.
fn pg_type(field: &Field) -> PgWireResult<Type> {
    Ok(
        match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
            Some("json") => Type::JSON,
            Some("jsonb") => Type::JSONB,
            Some("uuid") => Type::UUID,
            _ => arrow_pg::datatypes::field_into_pg_type(&Arc::new(field.clone()))?,
        },
    )
}

/// The row description of a result.
pub fn fields(
    schema: &Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let info = FieldInfo::new(
                field.name().clone(),
                None,
                None,
                pg_type(field)?,
                format.format_for(i),
            );
            Ok(match &options {
                Some(options) => info.with_format_options(Arc::clone(options)),
                None => info,
            })
        })
        .collect()
}

/// The PostgreSQL types of parameters, from the fields the plan gives them.
pub fn parameter_type(field: Option<&Field>) -> PgWireResult<Type> {
    match field {
        Some(field) => pg_type(field),
        // PostgreSQL resolves an untyped parameter as text.
        None => Ok(Type::TEXT),
    }
}

/// A batch's rows as DataRows.
pub fn rows(
    fields: &Arc<Vec<FieldInfo>>,
    batch: &RecordBatch,
) -> impl Iterator<Item = PgWireResult<DataRow>> + use<> {
    let mut encoder = PgEncoder(DataRowEncoder::new(Arc::clone(fields)));
    let fields = Arc::clone(fields);
    let batch = batch.clone();
    (0..batch.num_rows()).map(move |row| {
        encode_row(&mut encoder, &batch, row, &fields)?;
        Ok(encoder.take_row())
    })
}

/// Encodes one row of `batch` into `encoder` (a DataRow or COPY encoder, wrapped).
pub fn encode_row<E: Encoder>(
    encoder: &mut PgEncoder<E>,
    batch: &RecordBatch,
    row: usize,
    fields: &[FieldInfo],
) -> PgWireResult<()> {
    let schema = batch.schema();
    for (column, pg_field) in fields.iter().enumerate() {
        encode_value(
            encoder,
            batch.column(column),
            row,
            schema.field(column),
            pg_field,
        )?;
    }
    Ok(())
}

/// Wraps arrow-pg's encoders so every value goes through [`Spelled`].
pub struct PgEncoder<E>(pub E);

impl<E: Encoder> Encoder for PgEncoder<E> {
    type Item = E::Item;

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        self.0.encode_field(&Spelled(value), pg_field)
    }

    fn take_row(&mut self) -> Self::Item {
        self.0.take_row()
    }
}

/// A value spelled as PostgreSQL does.
#[derive(Debug)]
struct Spelled<'a, T>(&'a T);

impl<T: ToSqlText> Spelled<'_, T> {
    /// The value's plain text.
    fn text(&self, options: &FormatOptions) -> Result<Option<BytesMut>, BoxError> {
        let mut text = BytesMut::new();
        Ok(match self.0.to_sql_text(&Type::TEXT, &mut text, options)? {
            IsNull::Yes => None,
            IsNull::No => Some(text),
        })
    }
}

impl<T: ToSql + ToSqlText> ToSql for Spelled<'_, T> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if ![Type::JSON, Type::JSONB, Type::UUID].contains(ty) {
            return self.0.to_sql(ty, out);
        }
        let Some(text) = self.text(&FormatOptions::default())? else {
            return Ok(IsNull::Yes);
        };
        match *ty {
            Type::UUID => {
                let uuid = uuid::Uuid::try_parse_ascii(&text)?;
                out.put_slice(uuid.as_bytes());
            }
            Type::JSONB => {
                // jsonb's binary format: a version byte, then the text.
                out.put_u8(1);
                out.put_slice(&text);
            }
            _ => out.put_slice(&text),
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        // json and uuid are carried as text.
        T::accepts(ty) || [Type::JSON, Type::JSONB, Type::UUID].contains(ty)
    }

    to_sql_checked!();
}

impl<T: ToSqlText> ToSqlText for Spelled<'_, T> {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        options: &FormatOptions,
    ) -> Result<IsNull, BoxError> {
        if [Type::JSON, Type::JSONB, Type::UUID].contains(ty) {
            return Ok(match self.text(options)? {
                Some(text) => {
                    out.put_slice(&text);
                    IsNull::No
                }
                None => IsNull::Yes,
            });
        }
        let start = out.len();
        let written = self.0.to_sql_text(ty, out, options)?;
        if [Type::TIME, Type::TIMESTAMP, Type::TIMESTAMPTZ].contains(ty) {
            let trimmed = trim_fraction(&out[start..]);
            out.truncate(start);
            out.put_slice(&trimmed);
        }
        Ok(written)
    }
}

/// `…:05.500000+00` → `…:05.5+00`, `…:05.000000` → `…:05`: PostgreSQL prints only the
/// significant digits of fractional seconds.
fn trim_fraction(text: &[u8]) -> Vec<u8> {
    let Some(dot) = text.iter().position(|b| *b == b'.') else {
        return text.to_vec();
    };
    let digits = text[dot + 1..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let end = dot + 1 + digits;
    let significant = text[dot + 1..end]
        .iter()
        .rposition(|b| *b != b'0')
        .map_or(0, |last| last + 1);
    let mut out = text[..dot].to_vec();
    if significant > 0 {
        out.extend_from_slice(&text[dot..dot + 1 + significant]);
    }
    out.extend_from_slice(&text[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::trim_fraction;

    #[test]
    fn fractions_keep_their_significant_digits() {
        let trim = |s: &str| String::from_utf8(trim_fraction(s.as_bytes())).unwrap();
        assert_eq!(trim("13:14:15.500000"), "13:14:15.5");
        assert_eq!(
            trim("2026-01-02 03:04:05.000000+00"),
            "2026-01-02 03:04:05+00"
        );
        assert_eq!(
            trim("2026-01-02 03:04:05.123456"),
            "2026-01-02 03:04:05.123456"
        );
        assert_eq!(trim("2026-01-02 03:04:05"), "2026-01-02 03:04:05");
    }
}
