//! Values on the wire as PostgreSQL spells them, where arrow-pg's encoding differs: the
//! types Arrow lacks (`json`, `jsonb`, `uuid`, held as text and marked by the session's type
//! planner, like `varchar`), and fractional seconds without trailing zeros (`13:14:15.5`, not
//! `13:14:15.500000`). Everything else is arrow-pg's.

use std::error::Error;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Decimal128Type, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow_pg::encoder::{Encoder, encode_value};
use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use tokio_postgres::types::{IsNull, ToSql, to_sql_checked};

use super::pg_catalog::marked_type;

type BoxError = Box<dyn Error + Sync + Send>;

/// The PostgreSQL type a field is reported as.
fn pg_type(field: &Field) -> PgWireResult<Type> {
    match marked_type(field) {
        Some(ty) => Ok(ty),
        None => arrow_pg::datatypes::field_into_pg_type(&Arc::new(field.clone())),
    }
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

/// Types whose binary parameters are turned into text before decoding.
pub fn sent_as_text(ty: &Type) -> bool {
    [Type::UUID, Type::JSONB, Type::NUMERIC].contains(ty)
}

/// The type a parameter is decoded as: Strata holds uuid and json as text, and oids as
/// int4 (an `oid[]` in binary is an `int4[]` but for its element type).
pub fn read_as(ty: &Type) -> Type {
    if [Type::UUID, Type::JSON, Type::JSONB].contains(ty) {
        Type::TEXT
    } else if *ty == Type::OID_ARRAY {
        Type::INT4_ARRAY
    } else {
        ty.clone()
    }
}

/// A parameter sent in binary as uuid (16 bytes), jsonb (a version byte, then text) or
/// numeric (base-10000 digits), as the text it stands for.
pub fn binary_to_text(ty: &Type, bytes: &[u8]) -> PgWireResult<bytes::Bytes> {
    let invalid = || {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".to_string(),
            "22P03".to_string(),
            format!("invalid binary {ty} parameter"),
        )))
    };
    let text = match *ty {
        Type::UUID => uuid::Uuid::from_slice(bytes)
            .map_err(|_| invalid())?
            .hyphenated()
            .to_string(),
        Type::NUMERIC => numeric_text(bytes).ok_or_else(invalid)?,
        _ => match bytes.split_first() {
            Some((1, json)) => String::from_utf8(json.to_vec()).map_err(|_| invalid())?,
            _ => return Err(invalid()),
        },
    };
    Ok(text.into_bytes().into())
}

/// PostgreSQL's binary numeric (ndigits, weight, sign, dscale, then base-10000 digits) as
/// decimal text with `dscale` fraction digits.
fn numeric_text(bytes: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<u16> {
        Some(u16::from_be_bytes(bytes.get(i..i + 2)?.try_into().ok()?))
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(2)? as i16, word(4)?, word(6)?);
    let digits: Vec<u16> = (0..usize::from(ndigits))
        .map(|k| word(8 + 2 * k))
        .collect::<Option<_>>()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Some("NaN".to_string()),
        _ => return None,
    }
    // Digit groups from the highest (10000^weight) down to the last fraction group.
    let group = |power: i32| -> u16 {
        usize::try_from(i32::from(weight) - power)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut integer = String::new();
    for power in (0..=i32::from(weight).max(0)).rev() {
        integer.push_str(&format!("{:04}", group(power)));
    }
    let integer = integer.trim_start_matches('0');
    let fraction_groups = i32::from(dscale.div_ceil(4));
    let fraction: String = (1..=fraction_groups)
        .map(|k| format!("{:04}", group(-k)))
        .collect();
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    text.push_str(if integer.is_empty() { "0" } else { integer });
    if dscale > 0 {
        text.push('.');
        text.push_str(&fraction[..usize::from(dscale)]);
    }
    Some(text)
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
        let array = batch.column(column);
        if let DataType::Decimal128(_, scale) = array.data_type() {
            // arrow-pg goes through rust_decimal, which holds 28 digits; Decimal128 has 38.
            let decimals = array.as_primitive::<Decimal128Type>();
            let value = decimals.is_valid(row).then(|| Numeric {
                value: decimals.value(row),
                scale: *scale,
            });
            encoder.0.encode_field(&value, pg_field)?;
            continue;
        }
        encode_value(encoder, array, row, schema.field(column), pg_field)?;
    }
    Ok(())
}

/// A Decimal128 value as PostgreSQL's numeric.
#[derive(Debug)]
struct Numeric {
    value: i128,
    scale: i8,
}

impl Numeric {
    /// The digits before and after the point (the scale's count of them), and the sign.
    fn parts(&self) -> (String, String, bool) {
        let digits = self.value.unsigned_abs().to_string();
        let (digits, scale) = match usize::try_from(self.scale) {
            Ok(scale) => (digits, scale),
            // A negative scale counts zeros to append.
            Err(_) => (
                format!(
                    "{digits}{}",
                    "0".repeat(usize::from(self.scale.unsigned_abs()))
                ),
                0,
            ),
        };
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (integer, fraction) = padded.split_at(padded.len() - scale);
        (integer.to_string(), fraction.to_string(), self.value < 0)
    }
}

impl ToSqlText for Numeric {
    fn to_sql_text(
        &self,
        _: &Type,
        out: &mut BytesMut,
        _: &FormatOptions,
    ) -> Result<IsNull, BoxError> {
        let (integer, fraction, negative) = self.parts();
        if negative {
            out.put_u8(b'-');
        }
        out.put_slice(integer.as_bytes());
        if !fraction.is_empty() {
            out.put_u8(b'.');
            out.put_slice(fraction.as_bytes());
        }
        Ok(IsNull::No)
    }
}

impl ToSql for Numeric {
    /// ndigits, weight, sign, dscale, then base-10000 digits from the highest.
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let (integer, fraction, negative) = self.parts();
        let integer = integer.trim_start_matches('0');
        let integer = format!("{integer:0>width$}", width = integer.len().div_ceil(4) * 4);
        let fraction_width = fraction.len().div_ceil(4) * 4;
        let fraction_padded = format!("{fraction:0<fraction_width$}");
        let group =
            |chunk: &[u8]| -> i16 { chunk.iter().fold(0, |n, d| n * 10 + i16::from(d - b'0')) };
        let integer_groups: Vec<i16> = integer.as_bytes().chunks(4).map(group).collect();
        let mut groups: Vec<i16> = integer_groups
            .iter()
            .copied()
            .chain(fraction_padded.as_bytes().chunks(4).map(group))
            .collect();
        let mut weight = i16::try_from(integer_groups.len())? - 1;
        let leading = groups.iter().take_while(|g| **g == 0).count();
        groups.drain(..leading);
        weight -= i16::try_from(leading)?;
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            weight = 0;
        }
        out.put_i16(i16::try_from(groups.len())?);
        out.put_i16(weight);
        out.put_u16(if negative { 0x4000 } else { 0 });
        out.put_u16(u16::try_from(fraction.len())?);
        for g in groups {
            out.put_i16(g);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
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
    use super::{Numeric, numeric_text, trim_fraction};

    #[test]
    fn decimals_beyond_28_digits_encode_exactly() {
        use bytes::BytesMut;
        use pgwire::api::Type;
        use pgwire::types::ToSqlText;
        use pgwire::types::format::FormatOptions;
        use tokio_postgres::types::ToSql;

        let value = Numeric {
            value: -123_456_789_012_345_678_901_250_000_000,
            scale: 10,
        };
        let mut text = BytesMut::new();
        value
            .to_sql_text(&Type::NUMERIC, &mut text, &FormatOptions::default())
            .unwrap();
        assert_eq!(&text[..], b"-12345678901234567890.1250000000");
        let mut binary = BytesMut::new();
        value.to_sql(&Type::NUMERIC, &mut binary).unwrap();
        assert_eq!(
            numeric_text(&binary).as_deref(),
            Some("-12345678901234567890.1250000000")
        );
        let small = Numeric { value: 5, scale: 4 };
        let mut binary = BytesMut::new();
        small.to_sql(&Type::NUMERIC, &mut binary).unwrap();
        assert_eq!(numeric_text(&binary).as_deref(), Some("0.0005"));
    }

    #[test]
    fn binary_numerics_read_as_text() {
        // -12345678901234567890.125: 6 groups, weight 4, negative, dscale 3.
        let mut bytes = Vec::new();
        for word in [6u16, 4, 0x4000, 3, 1234, 5678, 9012, 3456, 7890, 1250] {
            bytes.extend(word.to_be_bytes());
        }
        assert_eq!(
            numeric_text(&bytes).as_deref(),
            Some("-12345678901234567890.125")
        );
        // 0.0005: 1 group, weight -1, dscale 4.
        let mut bytes = Vec::new();
        for word in [1u16, 0xFFFF, 0, 4, 5] {
            bytes.extend(word.to_be_bytes());
        }
        assert_eq!(numeric_text(&bytes).as_deref(), Some("0.0005"));
        // 7 (no fraction).
        let mut bytes = Vec::new();
        for word in [1u16, 0, 0, 0, 7] {
            bytes.extend(word.to_be_bytes());
        }
        assert_eq!(numeric_text(&bytes).as_deref(), Some("7"));
    }

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
