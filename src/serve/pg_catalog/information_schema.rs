//! `information_schema` as PostgreSQL spells it: `schemata`, `tables`, `columns` and `views`
//! from the live snapshot with PostgreSQL type names; DataFusion's own tables
//! (`df_settings`, `routines`, ...) for the rest, so `SHOW` keeps working.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array};
use arrow::datatypes::{DataType, Field};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{CatalogProviderList, TableProvider};

use super::live::{Live, LiveRelation, Snapshot};
use super::live_table::{LiveTable, ints, repeat_text, texts};
use super::schema::Overlay;
use super::session::OWNER;
use super::types;
use crate::session::CATALOG;

/// The schema: PostgreSQL's tables over DataFusion's.
pub fn information_schema(live: &Arc<Live>, catalogs: Arc<dyn CatalogProviderList>) -> Overlay {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let table = |names: &[&str], extra: Vec<Field>, rows| {
        let mut fields: Vec<Field> = names.iter().map(|n| text(n)).collect();
        fields.extend(extra);
        Arc::new(LiveTable::new(fields, live, rows)) as Arc<dyn TableProvider>
    };
    let int = |name: &str| Field::new(name, DataType::Int32, true);
    let own = BTreeMap::from([
        (
            "schemata",
            table(
                &[
                    "catalog_name",
                    "schema_name",
                    "schema_owner",
                    "default_character_set_catalog",
                    "default_character_set_schema",
                    "default_character_set_name",
                    "sql_path",
                ],
                vec![],
                schemata,
            ),
        ),
        (
            "tables",
            table(
                &[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "table_type",
                    "self_referencing_column_name",
                    "reference_generation",
                    "user_defined_type_catalog",
                    "user_defined_type_schema",
                    "user_defined_type_name",
                    "is_insertable_into",
                    "is_typed",
                    "commit_action",
                ],
                vec![],
                tables,
            ),
        ),
        (
            "views",
            table(
                &[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "view_definition",
                    "check_option",
                    "is_updatable",
                    "is_insertable_into",
                    "is_trigger_updatable",
                    "is_trigger_deletable",
                    "is_trigger_insertable_into",
                ],
                vec![],
                views,
            ),
        ),
        (
            "columns",
            table(
                &["table_catalog", "table_schema", "table_name", "column_name"],
                vec![
                    int("ordinal_position"),
                    text("column_default"),
                    text("is_nullable"),
                    text("data_type"),
                    int("character_maximum_length"),
                    int("character_octet_length"),
                    int("numeric_precision"),
                    int("numeric_precision_radix"),
                    int("numeric_scale"),
                    int("datetime_precision"),
                    text("interval_type"),
                    text("udt_catalog"),
                    text("udt_schema"),
                    text("udt_name"),
                    text("is_identity"),
                    text("is_generated"),
                    text("is_updatable"),
                ],
                columns,
            ),
        ),
    ]);
    Overlay::new(own, Arc::new(InformationSchemaProvider::new(catalogs)))
}

fn schemata(s: &Snapshot) -> Vec<ArrayRef> {
    let n = s.namespaces.len();
    vec![
        repeat_text(Some(CATALOG), n),
        texts(s.namespaces.iter().map(|ns| Some(ns.name.as_str()))),
        repeat_text(Some(OWNER), n),
        repeat_text(None, n),
        repeat_text(None, n),
        repeat_text(None, n),
        repeat_text(None, n),
    ]
}

fn tables(s: &Snapshot) -> Vec<ArrayRef> {
    let r = &s.relations;
    let n = r.len();
    vec![
        repeat_text(Some(CATALOG), n),
        texts(r.iter().map(|r| Some(r.schema.as_str()))),
        texts(r.iter().map(|r| Some(r.name.as_str()))),
        texts(
            r.iter()
                .map(|r| Some(if r.view { "VIEW" } else { "BASE TABLE" })),
        ),
        repeat_text(None, n),
        repeat_text(None, n),
        repeat_text(None, n),
        repeat_text(None, n),
        repeat_text(None, n),
        texts(r.iter().map(|r| Some(if r.view { "NO" } else { "YES" }))),
        repeat_text(Some("NO"), n),
        repeat_text(None, n),
    ]
}

fn views(s: &Snapshot) -> Vec<ArrayRef> {
    let v: Vec<&LiveRelation> = s.relations.iter().filter(|r| r.view).collect();
    let n = v.len();
    vec![
        repeat_text(Some(CATALOG), n),
        texts(v.iter().map(|r| Some(r.schema.as_str()))),
        texts(v.iter().map(|r| Some(r.name.as_str()))),
        texts(v.iter().map(|r| r.definition.as_deref())),
        repeat_text(Some("NONE"), n),
        repeat_text(Some("NO"), n),
        repeat_text(Some("NO"), n),
        repeat_text(Some("NO"), n),
        repeat_text(Some("NO"), n),
        repeat_text(Some("NO"), n),
    ]
}

/// What `information_schema.columns` says about one column's type.
struct ColumnType {
    data_type: String,
    udt_name: String,
    numeric_precision: Option<i32>,
    numeric_precision_radix: Option<i32>,
    numeric_scale: Option<i32>,
    datetime_precision: Option<i32>,
}

fn column_type(field: &Field) -> ColumnType {
    let ty = types::pg_field_type(field);
    let (precision, radix, scale) = match field.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => (Some(16), Some(2), Some(0)),
        DataType::Int32 | DataType::UInt16 => (Some(32), Some(2), Some(0)),
        DataType::Int64 | DataType::UInt32 => (Some(64), Some(2), Some(0)),
        DataType::Float16 | DataType::Float32 => (Some(24), Some(2), None),
        DataType::Float64 => (Some(53), Some(2), None),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => (Some(i32::from(*p)), Some(10), Some(i32::from(*s))),
        _ => (None, None, None),
    };
    let datetime_precision = match field.data_type() {
        DataType::Date32 | DataType::Date64 => Some(0),
        DataType::Timestamp(..) | DataType::Time32(_) | DataType::Time64(_) => Some(6),
        _ => None,
    };
    ColumnType {
        data_type: types::information_schema_name(&ty),
        udt_name: ty.name().to_string(),
        numeric_precision: precision,
        numeric_precision_radix: radix,
        numeric_scale: scale,
        datetime_precision,
    }
}

fn columns(s: &Snapshot) -> Vec<ArrayRef> {
    let rows: Vec<(&LiveRelation, usize, &Field, ColumnType)> = s
        .relations
        .iter()
        .flat_map(|r| {
            r.columns
                .iter()
                .enumerate()
                .map(move |(i, f)| (r, i + 1, f.as_ref(), column_type(f)))
        })
        .collect();
    let n = rows.len();
    let optional = |f: fn(&ColumnType) -> Option<i32>| -> ArrayRef {
        Arc::new(Int32Array::from_iter(rows.iter().map(|r| f(&r.3))))
    };
    vec![
        repeat_text(Some(CATALOG), n),
        texts(rows.iter().map(|r| Some(r.0.schema.as_str()))),
        texts(rows.iter().map(|r| Some(r.0.name.as_str()))),
        texts(rows.iter().map(|r| Some(r.2.name().as_str()))),
        ints(rows.iter().map(|r| r.1 as i32)),
        repeat_text(None, n),
        texts(
            rows.iter()
                .map(|r| Some(if r.2.is_nullable() { "YES" } else { "NO" })),
        ),
        texts(rows.iter().map(|r| Some(r.3.data_type.as_str()))),
        // Strings are unbounded text.
        Arc::new(Int32Array::new_null(n)),
        Arc::new(Int32Array::new_null(n)),
        optional(|t| t.numeric_precision),
        optional(|t| t.numeric_precision_radix),
        optional(|t| t.numeric_scale),
        optional(|t| t.datetime_precision),
        repeat_text(None, n),
        repeat_text(Some(CATALOG), n),
        repeat_text(Some("pg_catalog"), n),
        texts(rows.iter().map(|r| Some(r.3.udt_name.as_str()))),
        repeat_text(Some("NO"), n),
        repeat_text(Some("NEVER"), n),
        texts(
            rows.iter()
                .map(|r| Some(if r.0.view { "NO" } else { "YES" })),
        ),
    ]
}
