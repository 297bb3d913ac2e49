//! Compile-time queries: `run_query(sql)`, `{% call statement(name, fetch_result=True) %}`
//! and `load_result(name)`. At parse time they do nothing (dbt's `execute` is false then);
//! when compiling, the SQL goes to the frame's warehouse and the result reads like dbt's
//! agate table: `.rows`, `.columns[0].values()`, `.column_names`, `row['name']`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State};

use super::Shared;
use super::adapter::ask;
use super::frame::current;
use super::functions::split_args;
use super::warehouse::QueryResult;

pub(super) fn add_globals(env: &mut Environment<'static>, _shared: &Arc<Shared>) {
    env.add_function("run_query", run_query);
    env.add_function("statement", statement);
    env.add_function("load_result", |name: String| -> Result<Value, Error> {
        Ok(current()?
            .results
            .borrow()
            .get(&name)
            .cloned()
            .unwrap_or(Value::from(())))
    });
}

fn run_query(sql: Value) -> Result<Value, Error> {
    let frame = current()?;
    if frame.is_parse() {
        return Ok(Value::from(()));
    }
    let sql = sql.to_string();
    let result = ask(&frame, |w| w.query(&sql))?;
    Ok(Value::from_object(Table(Arc::new(result))))
}

/// `{% call statement(name, fetch_result=False) %}SQL{% endcall %}`: runs the body when
/// compiling and keeps its result for `load_result(name)`.
fn statement(state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
    let frame = current()?;
    let (positional, kwargs) = split_args(args);
    let mut name = positional
        .first()
        .and_then(|v| v.as_str().map(str::to_string));
    let mut caller = None;
    if let Some(kwargs) = &kwargs {
        if kwargs.has("name") {
            name = kwargs.get::<Option<String>>("name")?;
        }
        if kwargs.has("caller") {
            caller = Some(kwargs.get::<Value>("caller")?);
        }
        for used in ["fetch_result", "auto_begin", "language"] {
            if kwargs.has(used) {
                let _: Value = kwargs.get(used)?;
            }
        }
    }
    if frame.is_parse() {
        return Ok(Value::from(""));
    }
    let Some(caller) = caller else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "statement() is called with {% call statement(...) %}SQL{% endcall %}",
        ));
    };
    let sql = caller.call(state, &[])?.to_string();
    if sql.trim().is_empty() {
        return Ok(Value::from(""));
    }
    let result = Arc::new(ask(&frame, |w| w.query(&sql))?);
    if let Some(name) = name {
        let data: Vec<Value> = result
            .rows
            .iter()
            .map(|row| Value::from(row.iter().map(Value::from_serialize).collect::<Vec<_>>()))
            .collect();
        let response = Value::from_iter([
            ("code", Value::from("SELECT")),
            ("rows_affected", Value::from(result.rows.len())),
            (
                "_message",
                Value::from(format!("SELECT {}", result.rows.len())),
            ),
        ]);
        let loaded: BTreeMap<&str, Value> = BTreeMap::from([
            ("response", response),
            ("data", Value::from(data)),
            ("table", Value::from_object(Table(result))),
        ]);
        frame
            .results
            .borrow_mut()
            .insert(name, Value::from_iter(loaded));
    }
    Ok(Value::from(""))
}

/// A query result as an agate table: a sequence of rows, with `rows`, `columns`,
/// `column_names` and `column_types`.
#[derive(Debug)]
struct Table(Arc<QueryResult>);

impl Object for Table {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_i64() {
            return row_at(&self.0, i);
        }
        Some(match key.as_str()? {
            "rows" => Value::from_object(Rows(Arc::clone(&self.0))),
            "columns" => Value::from_object(Columns(Arc::clone(&self.0))),
            "column_names" => Value::from(
                self.0
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>(),
            ),
            "column_types" => Value::from(
                self.0
                    .columns
                    .iter()
                    .map(|c| c.data_type.clone())
                    .collect::<Vec<_>>(),
            ),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "print_table" => Ok(Value::from("")),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

fn row_at(result: &Arc<QueryResult>, i: i64) -> Option<Value> {
    let len = result.rows.len() as i64;
    let i = if i < 0 { len + i } else { i };
    (0..len).contains(&i).then(|| {
        Value::from_object(Row {
            result: Arc::clone(result),
            index: i as usize,
        })
    })
}

#[derive(Debug)]
struct Rows(Arc<QueryResult>);

impl Object for Rows {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        row_at(&self.0, key.as_i64()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows.len())
    }
}

/// One row: its values by position or by column name.
#[derive(Debug)]
struct Row {
    result: Arc<QueryResult>,
    index: usize,
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let row = &self.result.rows[self.index];
        let at = match key.as_i64() {
            Some(i) if i < 0 => (row.len() as i64 + i) as usize,
            Some(i) => i as usize,
            None => {
                let name = key.as_str()?;
                self.result.columns.iter().position(|c| c.name == name)?
            }
        };
        row.get(at).map(Value::from_serialize)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.result.rows[self.index].len())
    }
}

#[derive(Debug)]
struct Columns(Arc<QueryResult>);

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let at = match key.as_i64() {
            Some(i) => usize::try_from(i).ok()?,
            None => {
                let name = key.as_str()?;
                self.0.columns.iter().position(|c| c.name == name)?
            }
        };
        (at < self.0.columns.len()).then(|| {
            Value::from_object(Column {
                result: Arc::clone(&self.0),
                index: at,
            })
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.columns.len())
    }
}

/// One column of a result: `name`, `data_type` and `values()`.
#[derive(Debug)]
struct Column {
    result: Arc<QueryResult>,
    index: usize,
}

impl Object for Column {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let column = &self.result.columns[self.index];
        Some(match key.as_str()? {
            "name" => Value::from(column.name.clone()),
            "data_type" => Value::from(column.data_type.clone()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" | "values_distinct" | "values_without_nulls" => {
                let () = from_args(args)?;
                let mut values: Vec<Value> = Vec::new();
                for row in &self.result.rows {
                    let v = row.get(self.index).cloned().unwrap_or_default();
                    if method == "values_without_nulls" && v.is_null() {
                        continue;
                    }
                    let v = Value::from_serialize(&v);
                    if method == "values_distinct" && values.contains(&v) {
                        continue;
                    }
                    values.push(v);
                }
                Ok(Value::from(values))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Column {}>", self.result.columns[self.index].name)
    }
}
