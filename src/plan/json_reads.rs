//! Several `->>` reads of one JSON column in a SELECT list parse each row's text once.
//!
//! datafusion-functions-json reads `j ->> 'a'` with `json_as_text`, which parses `j` from its
//! start up to key `a`; a model that reads six keys of an event's properties parses every event
//! six times. This analyzer rule gives such a projection one parse: a projection below it
//! computes `strata_json_fields(j, 'a', 'b', ...)`, the text of every key read, found in one
//! pass, and each read becomes `strata_json_field(<those fields>, 'a')`. Neither function is one
//! DataFusion moves towards the scan (`get_field` is, and moving it would inline the parse back
//! into every read), and the fields column is read more than once, so DataFusion keeps the
//! projection below instead of merging it back.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, Projection, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, col, lit,
};
use datafusion::optimizer::AnalyzerRule;
use jiter::{Jiter, JiterError, Peek};

/// The analyzer rule; see the module documentation.
#[derive(Debug, Default)]
pub struct SharedJsonReads;

impl AnalyzerRule for SharedJsonReads {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Projection(projection) => share_reads(projection),
            other => Ok(Transformed::no(other)),
        })
        .map(|rewritten| rewritten.data)
    }

    fn name(&self) -> &str {
        "shared_json_reads"
    }
}

static FIELDS: LazyLock<Arc<ScalarUDF>> =
    LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(JsonFields::default())));
static FIELD: LazyLock<Arc<ScalarUDF>> =
    LazyLock::new(|| Arc::new(ScalarUDF::new_from_impl(JsonField::default())));

/// The functions the rule plans (without registering them in the session).
pub fn functions() -> [Arc<ScalarUDF>; 2] {
    [Arc::clone(&FIELDS), Arc::clone(&FIELD)]
}

/// The function the rule plans under `name`, for a process that decodes a plan it made.
pub fn function(name: &str) -> Option<Arc<ScalarUDF>> {
    functions().into_iter().find(|f| f.name() == name)
}

/// The keys a projection reads from each JSON column, in the order the columns first occur.
type Reads = Vec<(Expr, BTreeSet<String>)>;

fn share_reads(projection: Projection) -> Result<Transformed<LogicalPlan>> {
    let schema = Arc::clone(projection.input.schema());
    let schema = schema.as_ref();
    let mut reads = Reads::new();
    for expr in &projection.expr {
        expr.apply(|e| {
            if let Some((json, key)) = json_read(e, schema) {
                match reads.iter_mut().find(|(read, _)| read == json) {
                    Some((_, keys)) => {
                        keys.insert(key.to_string());
                    }
                    None => reads.push((json.clone(), BTreeSet::from([key.to_string()]))),
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    reads.retain(|(_, keys)| keys.len() > 1);
    if reads.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Projection(projection)));
    }

    // The names are the same for equal projections, so the copies of a CTE stay equal plans
    // (reuse.rs computes a repeated subplan once by finding its equal copies).
    let mut below: Vec<Expr> = schema.columns().into_iter().map(Expr::Column).collect();
    let mut names = Vec::with_capacity(reads.len());
    for (json, keys) in &reads {
        let name = unused_name(schema, names.len());
        let args = std::iter::once(json.clone()).chain(keys.iter().map(lit));
        below.push(FIELDS.call(args.collect()).alias(&name));
        names.push(name);
    }
    let below = LogicalPlan::Projection(Projection::try_new(below, projection.input)?);

    let preserver = NamePreserver::new_for_projection();
    let exprs = projection
        .expr
        .into_iter()
        .map(|expr| {
            let name = preserver.save(&expr);
            let rewritten = expr.transform_up(|e| {
                let shared = json_read(&e, schema).and_then(|(json, key)| {
                    let index = reads.iter().position(|(read, _)| read == json)?;
                    Some(FIELD.call(vec![col(names[index].as_str()), lit(key)]))
                });
                Ok(shared.map_or(Transformed::no(e), Transformed::yes))
            })?;
            Ok(name.restore(rewritten.data))
        })
        .collect::<Result<Vec<_>>>()?;
    // The output is the same columns of the same types, so the parents' schemas still hold.
    let projection = Projection::try_new_with_schema(exprs, Arc::new(below), projection.schema)?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// `json ->> 'key'` on a text column: the column and the key.
fn json_read<'e>(expr: &'e Expr, schema: &DFSchema) -> Option<(&'e Expr, &'e str)> {
    let Expr::ScalarFunction(call) = expr else {
        return None;
    };
    if call.func.name() != "json_as_text" {
        return None;
    }
    let [
        json @ Expr::Column(column),
        Expr::Literal(ScalarValue::Utf8(Some(key)), _),
    ] = call.args.as_slice()
    else {
        return None;
    };
    let (_, field) = schema.qualified_field_from_column(column).ok()?;
    matches!(
        field.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
    .then_some((json, key.as_str()))
}

fn unused_name(schema: &DFSchema, from: usize) -> String {
    (from..)
        .map(|n| format!("__strata_json_{n}"))
        .find(|name| !schema.has_column_with_unqualified_name(name))
        .expect("some index is unused")
}

/// `strata_json_fields(json, 'a', 'b', ...)`: a struct of text fields `a`, `b`, ..., each what
/// `json ->> 'a'` gives, read in one pass over each row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFields {
    signature: Signature,
}

impl Default for JsonFields {
    fn default() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonFields {
    fn name(&self) -> &str {
        "strata_json_fields"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("{} types its result from its arguments", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let keys = args.scalar_arguments.iter().skip(1).map(|key| match key {
            Some(ScalarValue::Utf8(Some(key))) => Ok(Field::new(key, DataType::Utf8, true)),
            _ => plan_err!("{}: keys must be text literals", self.name()),
        });
        let fields = keys.collect::<Result<Fields>>()?;
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Struct(fields),
            false,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Struct(fields) = args.return_field.data_type() else {
            return exec_err!("{}: the result is not a struct", self.name());
        };
        let keys: Vec<&str> = fields.iter().map(|field| field.name().as_str()).collect();
        let json = args.args[0].to_array(args.number_rows)?;
        let columns = match json.data_type() {
            DataType::Utf8 => read_members(json.as_string::<i32>().iter(), &keys, json.len()),
            DataType::LargeUtf8 => read_members(json.as_string::<i64>().iter(), &keys, json.len()),
            DataType::Utf8View => read_members(json.as_string_view().iter(), &keys, json.len()),
            other => return exec_err!("{}: JSON text expected, got {other}", self.name()),
        };
        let fields = StructArray::try_new(fields.clone(), columns, None)?;
        Ok(ColumnarValue::Array(Arc::new(fields)))
    }
}

/// One text column per key: each row's member `key` as `->>` reads it, NULL where the row has
/// none.
fn read_members<'a>(
    rows: impl Iterator<Item = Option<&'a str>>,
    keys: &[&str],
    capacity: usize,
) -> Vec<ArrayRef> {
    let mut columns: Vec<StringBuilder> = keys
        .iter()
        .map(|_| StringBuilder::with_capacity(capacity, capacity * 8))
        .collect();
    let mut found = vec![false; keys.len()];
    for row in rows {
        found.fill(false);
        if let Some(json) = row {
            // A parse error ends the row: the members before it are read, as `->>` reads them,
            // and those after it are NULL, as `->>` cannot reach them either.
            let _ = read_row(json, keys, &mut columns, &mut found);
        }
        for (column, found) in columns.iter_mut().zip(&found) {
            if !found {
                column.append_null();
            }
        }
    }
    columns
        .iter_mut()
        .map(|column| Arc::new(column.finish()) as ArrayRef)
        .collect()
}

/// Appends to `columns[i]` the text of the first member `keys[i]` of the object `json`, for each
/// key it holds, and marks it `found`.
fn read_row(
    json: &str,
    keys: &[&str],
    columns: &mut [StringBuilder],
    found: &mut [bool],
) -> Result<(), JiterError> {
    let mut jiter = Jiter::new(json.as_bytes());
    if jiter.peek()? != Peek::Object {
        return Ok(());
    }
    let mut missing = keys.len();
    let mut key = jiter.known_object()?;
    while let Some(name) = key {
        match keys.iter().position(|wanted| *wanted == name) {
            Some(i) if !found[i] => {
                found[i] = true;
                missing -= 1;
                match member_text(json, &mut jiter) {
                    Ok(text) => columns[i].append_option(text),
                    Err(error) => {
                        columns[i].append_null();
                        return Err(error);
                    }
                }
                if missing == 0 {
                    return Ok(());
                }
            }
            _ => jiter.next_skip()?,
        }
        key = jiter.next_key()?;
    }
    Ok(())
}

/// The member value `jiter` is at, as `->>` gives it: a string decoded, JSON null as NULL, any
/// other value as its JSON text.
fn member_text<'a, 'j: 'a>(
    json: &'j str,
    jiter: &'a mut Jiter<'j>,
) -> Result<Option<&'a str>, JiterError> {
    Ok(match jiter.peek()? {
        Peek::Null => {
            jiter.known_null()?;
            None
        }
        Peek::String => Some(jiter.known_str()?),
        peek => {
            let start = jiter.current_index();
            jiter.known_skip(peek)?;
            // jiter stops on ASCII bytes, so the range is on character boundaries.
            json.get(start..jiter.current_index())
        }
    })
}

/// `strata_json_field(fields, 'a')`: member `a` of `strata_json_fields`' struct.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonField {
    signature: Signature,
}

impl Default for JsonField {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl JsonField {
    fn key<'a>(&self, key: Option<&'a ScalarValue>) -> Result<&'a str> {
        match key {
            Some(ScalarValue::Utf8(Some(key))) => Ok(key),
            _ => plan_err!("{}: the key must be a text literal", self.name()),
        }
    }
}

impl ScalarUDFImpl for JsonField {
    fn name(&self) -> &str {
        "strata_json_field"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("{} types its result from its arguments", self.name())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let key = self.key(args.scalar_arguments.get(1).copied().flatten())?;
        let DataType::Struct(fields) = args.arg_fields[0].data_type() else {
            return plan_err!("{}: {} is not a struct", self.name(), args.arg_fields[0]);
        };
        match fields.find(key) {
            Some((_, field)) => Ok(Arc::new(Field::new(
                self.name(),
                field.data_type().clone(),
                true,
            ))),
            None => plan_err!("{}: no field {key}", self.name()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let key = match &args.args[1] {
            ColumnarValue::Scalar(key) => self.key(Some(key))?,
            ColumnarValue::Array(_) => {
                return exec_err!("{}: the key is not a literal", self.name());
            }
        };
        let fields = args.args[0].to_array(args.number_rows)?;
        let Some(member) = fields.as_struct().column_by_name(key) else {
            return exec_err!("{}: no field {key}", self.name());
        };
        Ok(ColumnarValue::Array(Arc::clone(member)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{RecordBatch, StringArray, StringViewArray};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    const ROWS: [Option<&str>; 12] = [
        Some(r#"{"a":"line\nbreak","b":null,"c":[1,{"x":true}],"d":1.50}"#),
        Some(r#"{"b":true,"a":42}"#),
        Some(r#"{"a":null,"a":"second","b":"x"}"#),
        Some(r#"{"c":{"a":1},"a":"outer"}"#),
        Some(r#"{"a\u0062":"escaped key","b":2}"#),
        Some(r#"{"a":1,"b":[1,2"#),
        Some(r#"{"c":x,"a":1}"#),
        Some(r#"["a","b"]"#),
        Some(r#""a""#),
        Some("{}"),
        Some("not json"),
        None,
    ];

    fn context(shared: bool) -> SessionContext {
        let mut builder = SessionStateBuilder::new().with_default_features();
        if shared {
            builder = builder.with_analyzer_rule(Arc::new(SharedJsonReads));
        }
        let mut state = builder.build();
        datafusion_functions_json::register_all(&mut state).unwrap();
        let ctx = SessionContext::new_with_state(state);
        let utf8: ArrayRef = Arc::new(StringArray::from(ROWS.to_vec()));
        let view: ArrayRef = Arc::new(StringViewArray::from(ROWS.to_vec()));
        let ids: ArrayRef = Arc::new(arrow::array::Int64Array::from_iter_values(0..12));
        let batch = RecordBatch::try_from_iter([("id", ids), ("j", utf8), ("v", view)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    async fn physical_plan(ctx: &SessionContext, sql: &str) -> String {
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await;
        displayable(plan.unwrap().as_ref()).indent(true).to_string()
    }

    #[tokio::test]
    async fn shared_reads_give_what_each_read_gives_alone() {
        for column in ["j", "v"] {
            let sql = format!(
                "SELECT id, {column} ->> 'a' AS a, {column} ->> 'b', \
                 upper({column} ->> 'c') AS c, {column} ->> 'd' AS d, {column} ->> 'ab' AS ab \
                 FROM t ORDER BY id"
            );
            let shared = context(true);
            assert_eq!(rows(&shared, &sql).await, rows(&context(false), &sql).await);
            let plan = physical_plan(&shared, &sql).await;
            assert_eq!(plan.matches("strata_json_fields(").count(), 1, "{plan}");
            assert!(!plan.contains("json_as_text"), "{plan}");
        }
    }

    #[tokio::test]
    async fn a_single_read_is_left_as_it_is() {
        let plan = physical_plan(&context(true), "SELECT j ->> 'a', v ->> 'b' FROM t").await;
        assert!(!plan.contains("strata_json"), "{plan}");
    }

    #[tokio::test]
    async fn copies_of_a_cte_stay_equal_plans() {
        let ctx = context(true);
        let sql = "WITH p AS (SELECT id, j ->> 'a' AS a, j ->> 'b' AS b FROM t) \
                   SELECT * FROM p UNION ALL SELECT * FROM p";
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let state = ctx.state();
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .unwrap();
        let LogicalPlan::Union(union) = &plan else {
            panic!("{plan}");
        };
        assert_eq!(union.inputs[0], union.inputs[1]);
        assert!(
            plan.display_indent()
                .to_string()
                .contains("strata_json_fields")
        );
    }
}
