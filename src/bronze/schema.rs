//! Table schemas from file schemas: files of one bronze table drift (columns added, renamed,
//! widened), and the table reads as the union of their columns by name, each at the widest
//! type that holds every file's values.

use std::collections::HashMap;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// The widest of two column types: the type both sides' values convert to without loss of
/// meaning (text being the type that holds anything). On the raw formats' type set this is the
/// contract's widening (Null → anything, Int64 → Float64, Date32 → Timestamp, anything → Utf8),
/// so the same function widens a column's votes during schema inference
/// (`formats::values::widen`) and files' schemas into a table's.
pub fn widen(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (Null, other) | (other, Null) => other.clone(),
        (x, y) if x.is_integer() && y.is_integer() => Int64,
        (x, y) if x.is_numeric() && y.is_numeric() => Float64,
        (Date32, Timestamp(unit, tz)) | (Timestamp(unit, tz), Date32) => {
            Timestamp(*unit, tz.clone())
        }
        (Timestamp(_, tz1), Timestamp(_, tz2)) if tz1 == tz2 => {
            Timestamp(TimeUnit::Microsecond, tz1.clone())
        }
        _ => Utf8,
    }
}

/// The union by name of `files`' schemas: columns in first-seen order, types widened, all
/// nullable (a column one file lacks is null in that file's rows). A column no sample showed
/// a value in is text: it holds whatever the unsampled rest of the files contains.
pub fn union<'a>(files: impl IntoIterator<Item = &'a Schema>) -> Schema {
    let mut order: Vec<String> = Vec::new();
    let mut types: HashMap<String, DataType> = HashMap::new();
    for schema in files {
        for field in schema.fields() {
            match types.get_mut(field.name()) {
                Some(existing) => *existing = widen(existing, field.data_type()),
                None => {
                    order.push(field.name().clone());
                    types.insert(field.name().clone(), field.data_type().clone());
                }
            }
        }
    }
    Schema::new(
        order
            .into_iter()
            .map(|name| {
                let data_type = match types.remove(&name).expect("every ordered name has a type") {
                    DataType::Null => DataType::Utf8,
                    other => other,
                };
                Field::new(name, data_type, true)
            })
            .collect::<Vec<_>>(),
    )
}

/// `file` with each column's type replaced by the table's (so a decoder produces values that
/// union without a second conversion), keeping the file's own column order.
pub fn widened_to(file: &Schema, table: &Schema) -> Schema {
    Schema::new(
        file.fields()
            .iter()
            .map(|f| {
                let data_type = table
                    .field_with_name(f.name())
                    .map(|t| t.data_type().clone())
                    .unwrap_or_else(|_| f.data_type().clone());
                Field::new(f.name(), data_type, true)
            })
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType::*;

    fn schema(cols: &[(&str, DataType)]) -> Schema {
        Schema::new(
            cols.iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn widening_prefers_the_type_that_holds_both() {
        assert_eq!(widen(&Int32, &Int64), Int64);
        assert_eq!(widen(&Int64, &Float64), Float64);
        assert_eq!(widen(&Float32, &Float64), Float64);
        assert_eq!(widen(&Null, &Date32), Date32);
        assert_eq!(widen(&Boolean, &Int64), Utf8);
        assert_eq!(widen(&Date32, &Utf8), Utf8);
        let ts = Timestamp(TimeUnit::Microsecond, None);
        assert_eq!(widen(&Date32, &ts), ts);
        // The raw formats' inference votes (the contract's type set), either way round.
        for (a, b, want) in [
            (Int64, Float64, Float64),
            (Null, Int64, Int64),
            (Null, Utf8, Utf8),
            (Date32, ts.clone(), ts.clone()),
            (Int64, Boolean, Utf8),
            (Date32, Int64, Utf8),
            (Boolean, ts.clone(), Utf8),
            (Boolean, Boolean, Boolean),
        ] {
            assert_eq!(widen(&a, &b), want, "{a} + {b}");
            assert_eq!(widen(&b, &a), want, "{b} + {a}");
        }
    }

    #[test]
    fn drifting_files_union_by_name() {
        let b1 = schema(&[("id", Int64), ("total_amount", Utf8), ("qty", Int32)]);
        let b2 = schema(&[
            ("id", Int64),
            ("order_total", Float64),
            ("qty", Int64),
            ("fee", Null),
        ]);
        let u = union([&b1, &b2]);
        let cols: Vec<(&str, &DataType)> = u
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("id", &Int64),
                ("total_amount", &Utf8),
                ("qty", &Int64),
                ("order_total", &Float64),
                ("fee", &Utf8)
            ]
        );
        let w = widened_to(&b1, &u);
        assert_eq!(w.field(2).data_type(), &Int64);
    }
}
