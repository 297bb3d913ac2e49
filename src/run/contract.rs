//! dbt's model contracts: with `contract: {enforced: true}` the planned output's columns must
//! be the ones the properties file declares, each of its `data_type` (PostgreSQL's and dbt's
//! type names, read as Arrow types), before anything is written; the output then has the
//! declared column order. The `not_null` and `check` constraints are enforced on the rows as
//! they are written: a violating row fails the write, so nothing is committed; `check`
//! constraints are then kept on the Delta table too, for every other writer, replaced when
//! the contract changes them and dropped when it no longer declares them.

use std::collections::HashMap;
use std::fmt;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{DataType, Schema};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value as Json;

use crate::project::Node;
use crate::sql::ident::ident;

/// The function the constraint filter calls: fails the query at the first row breaking one.
pub const CONSTRAINT_FUNCTION: &str = "strata_enforce_constraint";

/// The prefix of a Delta check constraint's table property.
const DELTA_CONSTRAINT: &str = "delta.constraints.";

/// Why a contract does not hold.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(
        "{}: {node}: this model has an enforced contract that failed; the name, data_type and number of columns in the contract must match the model's columns:\n{table}",
        .path.display()
    )]
    Mismatch {
        path: std::path::PathBuf,
        node: String,
        table: MismatchTable,
    },
    #[error("{}: {node}: column '{column}': {message}", .path.display())]
    Declaration {
        path: std::path::PathBuf,
        node: String,
        column: String,
        message: String,
    },
}

/// dbt's table of the columns that differ.
#[derive(Debug)]
pub struct MismatchTable(Vec<[String; 4]>);

impl fmt::Display for MismatchTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = [
            "column_name",
            "definition_type",
            "contract_type",
            "mismatch_reason",
        ];
        let mut widths = header.map(str::len);
        for row in &self.0 {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: [&str; 4]| {
            let cells: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("| {} |", cells.join(" | "))
        };
        writeln!(f, "{}", line(header))?;
        write!(
            f,
            "{}",
            line(widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str))
        )?;
        for row in &self.0 {
            write!(f, "\n{}", line(row.each_ref().map(String::as_str)))?;
        }
        Ok(())
    }
}

/// A declared type, as Arrow types that satisfy it.
#[derive(Debug, Clone, PartialEq)]
enum Declared {
    Exact(DataType),
    Text,
    /// `numeric` without precision: any decimal.
    AnyDecimal,
    Timestamp {
        zoned: bool,
    },
    Time,
}

impl Declared {
    fn accepts(&self, actual: &DataType) -> bool {
        match (self, actual) {
            (Declared::Exact(expected), actual) => expected == actual,
            (Declared::Text, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => true,
            (Declared::AnyDecimal, DataType::Decimal128(..) | DataType::Decimal256(..)) => true,
            (Declared::Timestamp { zoned }, DataType::Timestamp(_, tz)) => *zoned == tz.is_some(),
            (Declared::Time, DataType::Time32(_) | DataType::Time64(_)) => true,
            _ => false,
        }
    }
}

/// A PostgreSQL or dbt type name (`integer`, `varchar(20)`, `numeric(10,2)`, `timestamp`) as
/// the Arrow types it is written as.
fn declared(name: &str) -> Option<Declared> {
    let lower = name.trim().to_ascii_lowercase();
    let (base, args) = match lower.split_once('(') {
        Some((base, rest)) => (base.trim(), Some(rest.trim_end_matches(')'))),
        None => (lower.as_str(), None),
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(match base.as_str() {
        "smallint" | "int2" => Declared::Exact(DataType::Int16),
        "integer" | "int" | "int4" => Declared::Exact(DataType::Int32),
        "bigint" | "int8" => Declared::Exact(DataType::Int64),
        "real" | "float4" => Declared::Exact(DataType::Float32),
        "double precision" | "double" | "float8" | "float" => Declared::Exact(DataType::Float64),
        "boolean" | "bool" => Declared::Exact(DataType::Boolean),
        "date" => Declared::Exact(DataType::Date32),
        "bytea" | "binary" => Declared::Exact(DataType::Binary),
        "text" | "varchar" | "character varying" | "char" | "character" | "string" | "bpchar" => {
            Declared::Text
        }
        "numeric" | "decimal" => match args {
            None => Declared::AnyDecimal,
            Some(args) => {
                let mut parts = args.split(',').map(|p| p.trim().parse::<i64>());
                let precision = u8::try_from(parts.next()?.ok()?).ok()?;
                let scale = match parts.next() {
                    Some(s) => i8::try_from(s.ok()?).ok()?,
                    None => 0,
                };
                Declared::Exact(DataType::Decimal128(precision, scale))
            }
        },
        "timestamp" | "timestamp without time zone" | "datetime" => {
            Declared::Timestamp { zoned: false }
        }
        "timestamptz" | "timestamp with time zone" => Declared::Timestamp { zoned: true },
        "time" | "time without time zone" => Declared::Time,
        _ => return None,
    })
}

/// Checks `schema` (the model's planned output) against the model's declared columns.
pub fn check(node: &Node, schema: &Schema) -> Result<(), ContractError> {
    let mut mismatches = Vec::new();
    for column in &node.columns {
        let Some(type_name) = column.data_type.as_deref() else {
            return Err(ContractError::Declaration {
                path: node.patch_path.clone().unwrap_or_else(|| node.path.clone()),
                node: node.unique_id.clone(),
                column: column.name.clone(),
                message: "a model with an enforced contract needs a data_type for every column"
                    .into(),
            });
        };
        let Some(expected) = declared(type_name) else {
            return Err(ContractError::Declaration {
                path: node.patch_path.clone().unwrap_or_else(|| node.path.clone()),
                node: node.unique_id.clone(),
                column: column.name.clone(),
                message: format!("data_type '{type_name}' is not a type Strata knows"),
            });
        };
        match schema.field_with_name(&column.name) {
            Ok(field) if expected.accepts(field.data_type()) => {}
            Ok(field) => mismatches.push([
                column.name.clone(),
                field.data_type().to_string(),
                type_name.to_string(),
                "data type mismatch".to_string(),
            ]),
            Err(_) => mismatches.push([
                column.name.clone(),
                String::new(),
                type_name.to_string(),
                "missing in definition".to_string(),
            ]),
        }
    }
    for field in schema.fields() {
        if !node.columns.iter().any(|c| &c.name == field.name()) {
            mismatches.push([
                field.name().clone(),
                field.data_type().to_string(),
                String::new(),
                "missing in contract".to_string(),
            ]);
        }
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    Err(ContractError::Mismatch {
        path: node.patch_path.clone().unwrap_or_else(|| node.path.clone()),
        node: node.unique_id.clone(),
        table: MismatchTable(mismatches),
    })
}

/// The model's SQL with its columns in the contract's order and, `with_constraints` (a table,
/// not a view), every row checked against the `not_null` and `check` constraints
/// (column-level and model-level).
pub fn guarded_sql(node: &Node, sql: &str, with_constraints: bool) -> String {
    let columns: Vec<String> = node.columns.iter().map(|c| ident(&c.name)).collect();
    let mut conditions = Vec::new();
    for column in &node.columns {
        for constraint in &column.constraints {
            match kind(constraint).as_deref() {
                Some("not_null") => conditions.push((
                    format!("{} is not null", ident(&column.name)),
                    format!("not_null constraint on column '{}'", column.name),
                )),
                Some("check") => {
                    if let Some(expression) = expression(constraint) {
                        conditions.push(check_condition(&expression, &name_of(constraint)));
                    }
                }
                _ => {}
            }
        }
    }
    for constraint in &node.constraints {
        match kind(constraint).as_deref() {
            Some("check") => {
                if let Some(expression) = expression(constraint) {
                    conditions.push(check_condition(&expression, &name_of(constraint)));
                }
            }
            Some("not_null") => {
                for column in constraint_columns(constraint) {
                    conditions.push((
                        format!("{} is not null", ident(&column)),
                        format!("not_null constraint on column '{column}'"),
                    ));
                }
            }
            _ => {}
        }
    }
    let filter = conditions
        .iter()
        .map(|(condition, what)| {
            let message = format!("{}: {what} is violated by a row", node.unique_id);
            format!(
                "{CONSTRAINT_FUNCTION}({condition}, '{}')",
                message.replace('\'', "''")
            )
        })
        .collect::<Vec<_>>();
    let mut guarded = format!(
        "select {} from (\n{sql}\n) as dbt_contract",
        columns.join(", ")
    );
    if with_constraints && !filter.is_empty() {
        guarded.push_str(&format!("\nwhere {}", filter.join(" and ")));
    }
    guarded
}

/// The model's `check` constraints as Delta table constraints (name to expression). A
/// constraint without a `name` is named `<column>_check_<n>` or `<model>_check_<n>`.
fn table_constraints(node: &Node) -> HashMap<String, String> {
    let declared = node
        .columns
        .iter()
        .flat_map(|c| c.constraints.iter().map(move |k| (c.name.as_str(), k)))
        .chain(node.constraints.iter().map(|k| (node.name.as_str(), k)));
    let mut wanted = HashMap::new();
    for (n, (owner, constraint)) in declared
        .filter(|(_, k)| kind(k).as_deref() == Some("check"))
        .enumerate()
    {
        let Some(expression) = expression(constraint) else {
            continue;
        };
        let name = constraint
            .get("name")
            .and_then(Json::as_str)
            .map_or_else(|| format!("{owner}_check_{}", n + 1), str::to_string);
        wanted.insert(name, expression);
    }
    wanted
}

/// The table's Delta check constraints (name to expression).
fn existing_constraints(table: &DeltaTable) -> Result<HashMap<String, String>, DeltaTableError> {
    Ok(table
        .snapshot()?
        .metadata()
        .configuration()
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix(DELTA_CONSTRAINT)?;
            Some((name.to_string(), value.clone()))
        })
        .collect())
}

/// Drops the table's Delta check constraints the contract no longer declares, or declares
/// with another expression, before the model's write: rows meeting the new contract must
/// not be refused by the old one. What it dropped (name and expression), to be added back
/// should the write fail.
pub async fn drop_stale_constraints(
    table: DeltaTable,
    node: &Node,
) -> Result<HashMap<String, String>, DeltaTableError> {
    let wanted = table_constraints(node);
    let stale: HashMap<String, String> = existing_constraints(&table)?
        .into_iter()
        .filter(|(name, existing)| {
            wanted
                .get(name)
                .is_none_or(|declared| !same_expression(declared, existing))
        })
        .collect();
    let mut names: Vec<&String> = stale.keys().collect();
    names.sort();
    let mut table = table;
    for name in names {
        table = table.drop_constraints().with_constraint(name).await?;
    }
    Ok(stale)
}

/// Adds the contract's check constraints the table lacks as Delta table constraints
/// (`delta.constraints.<name>`), so that every Delta writer enforces them too; the table as
/// it is then.
pub async fn add_table_constraints(
    table: DeltaTable,
    node: &Node,
) -> Result<DeltaTable, DeltaTableError> {
    let existing = existing_constraints(&table)?;
    let mut wanted = table_constraints(node);
    wanted.retain(|name, _| !existing.contains_key(name));
    if wanted.is_empty() {
        return Ok(table);
    }
    table.add_constraint().with_constraints(wanted).await
}

/// Whether a declared expression is the one Delta stored (which delta-rs wrote back from its
/// parse: spacing and keyword case may differ).
fn same_expression(declared: &str, stored: &str) -> bool {
    let normal = |sql: &str| {
        Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_expr())
            .map(|e| e.to_string().to_ascii_lowercase())
            .unwrap_or_else(|_| sql.trim().to_ascii_lowercase())
    };
    normal(declared) == normal(stored)
}

/// A check constraint's condition: a row passes unless the expression is false (SQL's CHECK).
fn check_condition(expression: &str, name: &str) -> (String, String) {
    (
        format!("coalesce(({expression}), true)"),
        format!("check constraint {name}({expression})"),
    )
}

fn kind(constraint: &Json) -> Option<String> {
    Some(
        constraint
            .get("type")?
            .as_str()?
            .trim()
            .to_ascii_lowercase(),
    )
}

fn expression(constraint: &Json) -> Option<String> {
    Some(constraint.get("expression")?.as_str()?.to_string())
}

fn name_of(constraint: &Json) -> String {
    constraint
        .get("name")
        .and_then(Json::as_str)
        .map(|n| format!("'{n}' "))
        .unwrap_or_default()
}

fn constraint_columns(constraint: &Json) -> Vec<String> {
    match constraint.get("columns") {
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect(),
        Some(Json::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// `strata_enforce_constraint(condition, message)`: true, or an error carrying `message` at the
/// first row whose condition is false.
pub fn constraint_function() -> ScalarUDF {
    ScalarUDF::new_from_impl(EnforceConstraint {
        signature: Signature::exact(
            vec![DataType::Boolean, DataType::Utf8],
            Volatility::Volatile,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct EnforceConstraint {
    signature: Signature,
}

impl ScalarUDFImpl for EnforceConstraint {
    fn name(&self) -> &str {
        CONSTRAINT_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let message = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(m))) => m.clone(),
            _ => "a constraint is violated".to_string(),
        };
        let conditions = args.args[0].to_array(args.number_rows)?;
        let conditions: &BooleanArray = conditions.as_boolean();
        if conditions.false_count() > 0 || conditions.null_count() > 0 {
            return exec_err!("{message}");
        }
        Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
    }
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::TimeUnit;

    use super::*;

    #[test]
    fn type_names_read_as_arrow_types() {
        let accepts = |name: &str, t: DataType| declared(name).unwrap().accepts(&t);
        assert!(accepts("integer", DataType::Int32));
        assert!(!accepts("integer", DataType::Int64));
        assert!(accepts("BIGINT", DataType::Int64));
        assert!(accepts("varchar(20)", DataType::Utf8View));
        assert!(accepts("text", DataType::Utf8));
        assert!(accepts("numeric(10, 2)", DataType::Decimal128(10, 2)));
        assert!(!accepts("numeric(10,2)", DataType::Decimal128(12, 2)));
        assert!(accepts("numeric", DataType::Decimal128(38, 4)));
        assert!(accepts(
            "timestamp",
            DataType::Timestamp(TimeUnit::Nanosecond, None)
        ));
        assert!(!accepts(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        ));
        assert!(accepts("double precision", DataType::Float64));
        assert!(accepts("date", DataType::Date32));
        assert!(declared("geometry").is_none());
    }

    #[test]
    fn stored_expressions_compare_as_parsed() {
        assert!(same_expression("id>0", "id > 0"));
        assert!(same_expression(
            "score BETWEEN 0 AND 10",
            "score between 0 and 10"
        ));
        assert!(!same_expression("id > 0", "id > 1"));
    }
}
