//! The PostgreSQL functions clients call while introspecting: session facts (`version()`,
//! `current_schema()`, ...), privilege checks (all granted), and catalog lookups answered
//! from the live snapshot (`obj_description`, `col_description`, `pg_table_is_visible`).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, ListBuilder, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::live::{Live, OWNER_OID, PG_CATALOG, Snapshot};
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

/// The arguments of one call, as arrays, and the session's options.
struct Call<'a> {
    args: Vec<ArrayRef>,
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
    returns: DataType,
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

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let call = Call {
            args: ColumnarValue::values_to_arrays(&args.args)?,
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
    ScalarUDF::new_from_impl(PgFunction {
        name,
        signature,
        returns,
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
        function("current_database", none(), DataType::Utf8, constant(database)),
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
                let default_schema = c.default_schema();
                c.bools(|row| {
                    let visible = relation_of(c, &snapshot, row)?.map(|r| {
                        r.schema == default_schema || r.schema == PG_CATALOG
                    });
                    Ok(visible)
                })
            }
        }),
        function(
            "pg_postmaster_start_time",
            none(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            |_| {
                let at = TimestampMicrosecondArray::from(vec![*STARTED_MICROS]).with_timezone("UTC");
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&at, 0)?))
            },
        ),
        function("txid_current", none(), DataType::Int64, |_| {
            let id = TXID.fetch_add(1, Ordering::Relaxed);
            Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(id))))
        }),
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
        ctx.register_udf(function(name, any(), DataType::Int32, constant(ScalarValue::Int32(None))));
    }
    for name in ["pg_table_size", "pg_indexes_size"] {
        ctx.register_udf(function(name, any(), DataType::Int64, constant(ScalarValue::Int64(None))));
    }
    ctx.register_udf(function("json_build_object", any(), DataType::Utf8, json_build_object));
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
    function(name, Signature::variadic_any(Volatility::Stable), DataType::Utf8, move |c| {
        let snapshot = live.latest().unwrap_or_default();
        c.texts(|row| f(c, &snapshot, row))
    })
}

fn relation_of<'s>(
    c: &Call,
    snapshot: &'s Snapshot,
    row: usize,
) -> Result<Option<&'s super::live::Relation>> {
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

/// `current_schemas(include_implicit)`: the search path, `pg_catalog` first when asked.
fn current_schemas(c: &Call) -> Result<ColumnarValue> {
    let mut list = ListBuilder::new(StringBuilder::new())
        .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    for row in 0..c.rows {
        let implicit = c.text(0, row)?.is_some_and(|v| v == "true");
        if implicit {
            list.values().append_value(PG_CATALOG);
        }
        list.values().append_value(c.default_schema());
        list.append(true);
    }
    Ok(ColumnarValue::Array(Arc::new(list.finish())))
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
                out.push('\\');
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
    fn version_parses_like_postgres() {
        assert!(VERSION.starts_with("PostgreSQL 16.0 "));
    }
}
