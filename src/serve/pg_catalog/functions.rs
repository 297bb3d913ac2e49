//! The PostgreSQL functions clients call while introspecting: session facts (`version()`,
//! `current_schema()`, ...), privilege checks (all granted), and catalog lookups answered
//! from the live snapshot (`obj_description`, `col_description`, `pg_table_is_visible`).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, ListArray, ListBuilder,
    StringArray, StringBuilder, StructArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::live::{Live, OWNER_OID, PG_CATALOG, Snapshot, relation_oid};
use super::session::PgSession;
use super::types;

/// What `version()` says: SQLAlchemy, pgjdbc and Metabase parse the PostgreSQL version out
/// of it, so it starts like PostgreSQL's own.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "PostgreSQL 16.0 (Strata {}) on {}-{}, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    )
});

/// When the server started, for `pg_postmaster_start_time()`.
static STARTED_MICROS: LazyLock<i64> = LazyLock::new(|| chrono::Utc::now().timestamp_micros());

/// `txid_current()`: transactions are not numbered; a counter is monotonic, as clients
/// expect.
static TXID: AtomicI64 = AtomicI64::new(1000);

type Body = dyn Fn(&Call) -> Result<ColumnarValue> + Send + Sync;

type Returns = dyn Fn(&[DataType]) -> Result<DataType> + Send + Sync;

/// The arguments of one call, as arrays, and the session's options.
struct Call<'a> {
    args: Vec<ArrayRef>,
    /// The arguments' fields (their types, and Arrow extension types in the metadata).
    fields: &'a [FieldRef],
    /// The value of each argument that is one for all rows (a constant).
    constants: Vec<Option<ScalarValue>>,
    rows: usize,
    options: &'a ConfigOptions,
}

impl Call<'_> {
    fn int(&self, arg: usize, row: usize) -> Result<Option<i64>> {
        let Some(array) = self.args.get(arg) else {
            return Ok(None);
        };
        let ints = cast(array, &DataType::Int64)?;
        let ints = ints
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("cast to Int64");
        Ok((!ints.is_null(row)).then(|| ints.value(row)))
    }

    fn text(&self, arg: usize, row: usize) -> Result<Option<String>> {
        let Some(array) = self.args.get(arg) else {
            return Ok(None);
        };
        let strings = cast(array, &DataType::Utf8)?;
        let strings = strings
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        Ok((!strings.is_null(row)).then(|| strings.value(row).to_string()))
    }

    fn session(&self) -> PgSession {
        self.options
            .extensions
            .get::<PgSession>()
            .cloned()
            .unwrap_or_default()
    }

    fn default_schema(&self) -> String {
        self.options.catalog.default_schema.clone()
    }

    /// The schemas searched for an unqualified name, in order: `pg_catalog` first unless
    /// the search path places it, as in PostgreSQL.
    fn searched_schemas(&self) -> Vec<String> {
        let path = self.session().search_path();
        let mut searched = Vec::new();
        if !path.schemas().iter().any(|s| s == PG_CATALOG) {
            searched.push(PG_CATALOG.to_string());
        }
        searched.extend(path.schemas().iter().cloned());
        searched
    }

    /// One text value per row.
    fn texts(&self, f: impl Fn(usize) -> Result<Option<String>>) -> Result<ColumnarValue> {
        let values = (0..self.rows).map(f).collect::<Result<Vec<_>>>()?;
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(values))))
    }

    fn bools(&self, f: impl Fn(usize) -> Result<Option<bool>>) -> Result<ColumnarValue> {
        let values = (0..self.rows).map(f).collect::<Result<Vec<_>>>()?;
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(values))))
    }
}

/// A scalar function defined by a closure.
struct PgFunction {
    name: &'static str,
    signature: Signature,
    returns: Box<Returns>,
    body: Box<Body>,
}

impl fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgFunction")
            .field("name", &self.name)
            .finish()
    }
}

// A session registers each name once, so the name identifies the function.
impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for PgFunction {}

impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        (self.returns)(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let constants = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(value) => Some(value.clone()),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let call = Call {
            args: ColumnarValue::values_to_arrays(&args.args)?,
            fields: &args.arg_fields,
            constants,
            rows: args.number_rows,
            options: &args.config_options,
        };
        (self.body)(&call)
    }
}

fn function(
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: impl Fn(&Call) -> Result<ColumnarValue> + Send + Sync + 'static,
) -> ScalarUDF {
    typed_function(name, signature, move |_| Ok(returns.clone()), body)
}

/// A function whose result type depends on its argument types.
fn typed_function(
    name: &'static str,
    signature: Signature,
    returns: impl Fn(&[DataType]) -> Result<DataType> + Send + Sync + 'static,
    body: impl Fn(&Call) -> Result<ColumnarValue> + Send + Sync + 'static,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(PgFunction {
        name,
        signature,
        returns: Box::new(returns),
        body: Box::new(body),
    })
}

fn constant(value: ScalarValue) -> impl Fn(&Call) -> Result<ColumnarValue> {
    move |_| Ok(ColumnarValue::Scalar(value.clone()))
}

fn text(value: Option<&str>) -> ScalarValue {
    ScalarValue::Utf8(value.map(str::to_string))
}

/// Registers the functions in `ctx`; catalog lookups read `live`.
pub fn register(ctx: &SessionContext, live: &Arc<Live>) {
    let stable = Volatility::Stable;
    let any = || Signature::variadic_any(stable);
    let none = || Signature::nullary(stable);
    let version = text(Some(VERSION.as_str()));
    let database = text(Some(crate::session::CATALOG));
    let functions = vec![
        function("version", none(), DataType::Utf8, constant(version)),
        function(
            "current_database",
            none(),
            DataType::Utf8,
            constant(database),
        ),
        function("current_schema", none(), DataType::Utf8, |c| {
            Ok(ColumnarValue::Scalar(text(Some(&c.default_schema()))))
        }),
        function(
            "current_schemas",
            Signature::any(1, stable),
            DataType::new_list(DataType::Utf8, true),
            current_schemas,
        ),
        function("current_user", none(), DataType::Utf8, session_user),
        function("session_user", none(), DataType::Utf8, session_user),
        function("user", none(), DataType::Utf8, session_user),
        function("pg_get_userbyid", any(), DataType::Utf8, |c| {
            c.texts(|row| Ok(c.int(0, row)?.map(role_name)))
        }),
        // Strata keeps no expression trees: an expression column holds SQL text, or NULL
        // (pgjdbc reads column defaults through a LEFT JOIN to the empty pg_attrdef).
        function("pg_get_expr", any(), DataType::Utf8, |c| {
            c.texts(|row| c.text(0, row))
        }),
        function("format_type", any(), DataType::Utf8, |c| {
            c.texts(|row| {
                let Some(oid) = c.int(0, row)? else {
                    return Ok(None);
                };
                let typmod = c.int(1, row)?.unwrap_or(-1) as i32;
                Ok(Some(
                    types::format_type(oid as u32, typmod).unwrap_or_else(|| "???".into()),
                ))
            })
        }),
        relation_function(live, "obj_description", |c, snapshot, row| {
            let kind = c.text(1, row)?;
            if kind.as_deref().is_some_and(|k| k != "pg_class") {
                return Ok(None);
            }
            Ok(relation_of(c, snapshot, row)?.and_then(|r| r.description.clone()))
        }),
        relation_function(live, "col_description", |c, snapshot, row| {
            let (Some(relation), Some(attnum)) = (relation_of(c, snapshot, row)?, c.int(1, row)?)
            else {
                return Ok(None);
            };
            Ok(usize::try_from(attnum - 1)
                .ok()
                .and_then(|i| relation.column_descriptions.get(i).cloned().flatten()))
        }),
        function("pg_table_is_visible", any(), DataType::Boolean, {
            let live = Arc::clone(live);
            move |c| {
                let snapshot = live.latest().unwrap_or_default();
                let searched = c.searched_schemas();
                c.bools(|row| {
                    Ok(relation_of(c, &snapshot, row)?
                        .map(|r| first_found(&snapshot, &searched, &r.name) == Some(&r.schema)))
                })
            }
        }),
        function(
            "pg_postmaster_start_time",
            none(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            |_| {
                let at =
                    TimestampMicrosecondArray::from(vec![*STARTED_MICROS]).with_timezone("UTC");
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&at, 0)?))
            },
        ),
        function("txid_current", none(), DataType::Int64, |_| {
            let id = TXID.fetch_add(1, Ordering::Relaxed);
            Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(id))))
        }),
        function(
            "pg_typeof",
            Signature::any(1, stable),
            DataType::Utf8,
            pg_typeof,
        ),
        function(
            "to_regtype",
            Signature::any(1, stable),
            DataType::Int32,
            |c| {
                let oids = (0..c.rows)
                    .map(|row| Ok(c.text(0, row)?.and_then(|name| type_oid(&name))))
                    .collect::<Result<Int32Array>>()?;
                Ok(ColumnarValue::Array(Arc::new(oids)))
            },
        ),
        typed_function(
            "_pg_expandarray",
            Signature::any(1, Volatility::Immutable),
            |args| Ok(DataType::new_list(expanded(&args[0])?, true)),
            pg_expandarray,
        ),
    ];
    for f in functions {
        ctx.register_udf(f);
    }
    for name in [
        "has_table_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_column_privilege",
        "has_any_column_privilege",
        "has_function_privilege",
        "has_sequence_privilege",
        "has_type_privilege",
        "pg_has_role",
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
    ] {
        ctx.register_udf(function(
            name,
            any(),
            DataType::Boolean,
            constant(ScalarValue::Boolean(Some(true))),
        ));
    }
    ctx.register_udf(function(
        "pg_is_in_recovery",
        none(),
        DataType::Boolean,
        constant(ScalarValue::Boolean(Some(false))),
    ));
    // Nothing in the lake has these: no sequences, indexes, tablespaces or addresses (like
    // PostgreSQL over a Unix socket); sizes are not tracked per relation.
    for name in [
        "pg_get_serial_sequence",
        "pg_get_indexdef",
        "pg_get_function_result",
        "pg_get_function_arguments",
        "pg_get_function_identity_arguments",
        "pg_get_viewdef",
        "pg_get_triggerdef",
        "pg_get_ruledef",
        "shobj_description",
        "pg_tablespace_location",
        "inet_server_addr",
        "inet_client_addr",
        "pg_size_pretty",
    ] {
        ctx.register_udf(function(name, any(), DataType::Utf8, constant(text(None))));
    }
    for name in ["inet_server_port", "inet_client_port"] {
        ctx.register_udf(function(
            name,
            any(),
            DataType::Int32,
            constant(ScalarValue::Int32(None)),
        ));
    }
    for name in ["pg_table_size", "pg_indexes_size"] {
        ctx.register_udf(function(
            name,
            any(),
            DataType::Int64,
            constant(ScalarValue::Int64(None)),
        ));
    }
    ctx.register_udf(function(
        "json_build_object",
        any(),
        DataType::Utf8,
        json_build_object,
    ));
    ctx.register_udf(function(
        "affix_each",
        Signature::any(3, stable),
        DataType::new_list(DataType::Utf8, true),
        affix_each,
    ));
    ctx.register_udf(function("like_escape", any(), DataType::Utf8, |c| {
        c.texts(|row| {
            let (Some(pattern), Some(escape)) = (c.text(0, row)?, c.text(1, row)?) else {
                return Ok(None);
            };
            Ok(Some(like_escape(&pattern, escape.chars().next())))
        })
    }));
}

/// A text function of a relation oid (argument 0), answered from the latest snapshot.
fn relation_function(
    live: &Arc<Live>,
    name: &'static str,
    f: fn(&Call, &Snapshot, usize) -> Result<Option<String>>,
) -> ScalarUDF {
    let live = Arc::clone(live);
    function(
        name,
        Signature::variadic_any(Volatility::Stable),
        DataType::Utf8,
        move |c| {
            let snapshot = live.latest().unwrap_or_default();
            c.texts(|row| f(c, &snapshot, row))
        },
    )
}

/// The first of `searched` holding a relation named `name`: the one an unqualified `name`
/// reads (`pg_table_is_visible`).
fn first_found<'p>(snapshot: &Snapshot, searched: &'p [String], name: &str) -> Option<&'p String> {
    searched.iter().find(|schema| {
        snapshot
            .relation(relation_oid(schema, name))
            .is_some_and(|r| r.schema == **schema && r.name == name)
    })
}

fn relation_of<'s>(
    c: &Call,
    snapshot: &'s Snapshot,
    row: usize,
) -> Result<Option<&'s super::live::LiveRelation>> {
    Ok(c.int(0, row)?
        .and_then(|oid| i32::try_from(oid).ok())
        .and_then(|oid| snapshot.relation(oid)))
}

fn role_name(oid: i64) -> String {
    if oid == i64::from(OWNER_OID) {
        super::session::OWNER.to_string()
    } else {
        format!("unknown (OID={oid})")
    }
}

fn session_user(c: &Call) -> Result<ColumnarValue> {
    Ok(ColumnarValue::Scalar(text(Some(&c.session().user))))
}

/// `pg_typeof(value)`: the PostgreSQL name of the value's type (PostgreSQL returns a
/// `regtype`, which shows as this name).
fn pg_typeof(c: &Call) -> Result<ColumnarValue> {
    let name = match (&c.constants[..], c.fields) {
        // DataFusion types every integer constant `bigint`; PostgreSQL presumes `integer`
        // for one that fits.
        ([Some(ScalarValue::Int64(Some(v)))], _) if i32::try_from(*v).is_ok() => {
            "integer".to_string()
        }
        (_, [field]) if field.data_type() == &DataType::Null => "unknown".to_string(),
        (_, [field]) => {
            let ty = types::pg_field_type(field);
            types::format_type(ty.oid(), -1).unwrap_or_else(|| ty.name().to_string())
        }
        _ => return exec_err!("pg_typeof takes one argument"),
    };
    Ok(ColumnarValue::Scalar(text(Some(&name))))
}

/// PostgreSQL's types (`pg_catalog.pg_type`): oid and array type oid by name.
static TYPES_BY_NAME: LazyLock<HashMap<String, (i32, i32)>> = LazyLock::new(|| {
    let mut types = HashMap::new();
    let Ok(upstream) = super::fixed(&super::FIXED_UPSTREAM) else {
        return types;
    };
    for batch in upstream.pg_type.data() {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| cast(c, &DataType::Utf8).ok())
        };
        let (Some(oid), Some(name), Some(namespace), Some(array)) = (
            column("oid"),
            column("typname"),
            column("typnamespace"),
            column("typarray"),
        ) else {
            continue;
        };
        let rows = oid
            .as_string::<i32>()
            .iter()
            .zip(name.as_string::<i32>().iter())
            .zip(namespace.as_string::<i32>().iter())
            .zip(array.as_string::<i32>().iter());
        for (((oid, name), namespace), array) in rows {
            // Only pg_catalog's types: the information_schema ones need a qualifier.
            if namespace != Some("11") {
                continue;
            }
            if let (Some(oid), Some(name), Some(array)) = (oid, name, array)
                && let (Ok(oid), Ok(array)) = (oid.parse(), array.parse())
            {
                types.insert(name.to_string(), (oid, array));
            }
        }
    }
    types
});

/// `to_regtype(name)`: the oid of the named type (a `regtype` is an oid; clients compare it
/// with `pg_type.oid`), NULL when there is none.
fn type_oid(name: &str) -> Option<i32> {
    let (typname, array) = types::parse_type_name(name)?;
    let &(oid, array_oid) = TYPES_BY_NAME.get(&typname)?;
    match array {
        false => Some(oid),
        true if array_oid != 0 => Some(array_oid),
        true => None,
    }
}

/// The element of `_pg_expandarray`'s result for an array of `arg`: the record `(x, n)`
/// of an element and its 1-based position.
fn expanded(arg: &DataType) -> Result<DataType> {
    let element = match arg {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.data_type().clone()
        }
        DataType::Null => DataType::Null,
        other => return plan_err!("function _pg_expandarray({other}) does not exist"),
    };
    Ok(DataType::Struct(Fields::from(vec![
        Field::new("x", element, true),
        Field::new("n", DataType::Int32, false),
    ])))
}

/// `information_schema._pg_expandarray(array)`, which pgjdbc's `getPrimaryKeys` calls: the
/// set of `(x, n)` records of the array's elements, as a list per row (a set-returning
/// function is an `unnest` of it in DataFusion); a NULL array has none.
fn pg_expandarray(c: &Call) -> Result<ColumnarValue> {
    let DataType::Struct(fields) = expanded(c.fields[0].data_type())? else {
        unreachable!("expanded() is a struct");
    };
    let element = fields[0].data_type().clone();
    let lists = cast(&c.args[0], &DataType::new_list(element, true))?;
    let lists = lists.as_list::<i32>();
    let (mut indices, mut positions, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
    for row in 0..c.rows {
        let (start, end) = if lists.is_valid(row) {
            let offsets = lists.value_offsets();
            (offsets[row] as usize, offsets[row + 1] as usize)
        } else {
            (0, 0)
        };
        indices.extend((start..end).map(|i| i as u32));
        positions.extend(1..=(end - start) as i32);
        lengths.push(end - start);
    }
    let x = take(lists.values(), &UInt32Array::from(indices), None)?;
    let n: ArrayRef = Arc::new(Int32Array::from(positions));
    let records = StructArray::try_new(fields.clone(), vec![x, n], None)?;
    let list = ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(records),
        None,
    )?;
    Ok(ColumnarValue::Array(Arc::new(list)))
}

/// `current_schemas(include_implicit)`: the search path, `pg_catalog` first when asked.
fn current_schemas(c: &Call) -> Result<ColumnarValue> {
    let mut list = ListBuilder::new(StringBuilder::new())
        .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    for row in 0..c.rows {
        let implicit = c.text(0, row)?.is_some_and(|v| v == "true");
        let schemas = if implicit {
            c.searched_schemas()
        } else {
            c.session().search_path().schemas().to_vec()
        };
        for schema in schemas {
            list.values().append_value(schema);
        }
        list.append(true);
    }
    Ok(ColumnarValue::Array(Arc::new(list.finish())))
}

/// `affix_each(list, prefix, suffix)`: each element as `prefix || element || suffix`, a
/// NULL list as an empty one (what the dialect layer makes of `ARRAY(SELECT 'p' || x FROM
/// unnest(list) x)`).
fn affix_each(c: &Call) -> Result<ColumnarValue> {
    let lists = cast(&c.args[0], &DataType::new_list(DataType::Utf8, true))?;
    let lists = lists
        .as_any()
        .downcast_ref::<arrow::array::ListArray>()
        .expect("cast to a list of Utf8");
    let mut out = ListBuilder::new(StringBuilder::new())
        .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    for row in 0..c.rows {
        if lists.is_valid(row) {
            let (prefix, suffix) = (c.text(1, row)?, c.text(2, row)?);
            let values = lists.value(row);
            let values = values
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to a list of Utf8");
            for value in values.iter() {
                let affixed = match (&prefix, value, &suffix) {
                    (Some(p), Some(v), Some(s)) => Some(format!("{p}{v}{s}")),
                    _ => None,
                };
                out.values().append_option(affixed);
            }
        }
        out.append(true);
    }
    Ok(ColumnarValue::Array(Arc::new(out.finish())))
}

/// `json_build_object(k1, v1, ...)` as JSON text.
fn json_build_object(c: &Call) -> Result<ColumnarValue> {
    c.texts(|row| {
        let mut object = serde_json::Map::new();
        for pair in c.args.chunks(2) {
            let key = ScalarValue::try_from_array(&pair[0], row)?.to_string();
            let value = match pair.get(1) {
                Some(v) => json_value(&ScalarValue::try_from_array(v, row)?),
                None => serde_json::Value::Null,
            };
            object.insert(key, value);
        }
        Ok(Some(serde_json::Value::Object(object).to_string()))
    })
}

fn json_value(value: &ScalarValue) -> serde_json::Value {
    match value {
        v if v.is_null() => serde_json::Value::Null,
        ScalarValue::Boolean(Some(b)) => serde_json::Value::Bool(*b),
        v if v.data_type().is_numeric() => {
            serde_json::from_str(&v.to_string()).unwrap_or_else(|_| v.to_string().into())
        }
        v => serde_json::Value::String(v.to_string()),
    }
}

/// PostgreSQL's `like_escape(pattern, escape)`: the pattern with `escape` as its escape
/// character rewritten to use backslash, the only one DataFusion's LIKE knows.
fn like_escape(pattern: &str, escape: Option<char>) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(escaped) = chars.next() {
                // Only the wildcards and backslash need escaping; others stand for themselves.
                if matches!(escaped, '%' | '_' | '\\') {
                    out.push('\\');
                }
                out.push(escaped);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_escape_moves_to_backslash() {
        assert_eq!(like_escape("pg/_%", Some('/')), "pg\\_%");
        assert_eq!(like_escape("a\\b//", Some('/')), "a\\\\b/");
        assert_eq!(like_escape("a\\b", None), "a\\\\b");
    }

    #[test]
    fn to_regtype_finds_postgres_types() {
        assert_eq!(type_oid("integer"), Some(23));
        assert_eq!(type_oid("pg_catalog.varchar(10)"), Some(1043));
        assert_eq!(type_oid("text[]"), Some(1009));
        assert_eq!(type_oid("no_such_type"), None);
    }

    #[test]
    fn pg_expandarray_numbers_elements() {
        let lists = arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Int16Type, _, _>(
            vec![Some(vec![Some(3), Some(1)]), None, Some(vec![Some(2)])],
        );
        let fields = [Arc::new(Field::new("a", lists.data_type().clone(), true))];
        let options = ConfigOptions::default();
        let call = Call {
            args: vec![Arc::new(lists)],
            fields: &fields,
            constants: vec![None],
            rows: 3,
            options: &options,
        };
        let ColumnarValue::Array(out) = pg_expandarray(&call).unwrap() else {
            panic!("an array");
        };
        let out = out.as_list::<i32>();
        let records: Vec<Vec<String>> = (0..3)
            .map(|row| {
                let value = out.value(row);
                let records = value.as_struct();
                (0..records.len())
                    .map(|i| ScalarValue::try_from_array(records, i).unwrap().to_string())
                    .collect()
            })
            .collect();
        assert_eq!(
            records,
            vec![vec!["{x:3,n:1}", "{x:1,n:2}"], vec![], vec!["{x:2,n:1}"]]
        );
    }

    #[test]
    fn version_parses_like_postgres() {
        assert!(VERSION.starts_with("PostgreSQL 16.0 "));
    }
}
