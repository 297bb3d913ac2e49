//! The warehouse templates query while compiling (`run_query`, `statement`,
//! `adapter.get_columns_in_relation`), over a DataFusion session. While checking a run before
//! it starts, a relation the run builds has no data yet: its columns are answered from its
//! planned schema, and a query reading it defers the node, which is then rendered and checked
//! right after its inputs are built.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use parking_lot::RwLock;
use serde_json::Value as Json;

use crate::jinja::warehouse::WarehouseError;
use crate::jinja::{QueryResult, Warehouse, WarehouseColumn};

/// Planned output schemas of the models a check has planned, by (schema, name).
pub type Planned = Arc<RwLock<HashMap<(String, String), SchemaRef>>>;

/// A warehouse over a session.
pub struct SessionWarehouse {
    ctx: SessionContext,
    /// Relations the run builds that are not built yet (checking only): (schema, name).
    unbuilt: HashSet<(String, String)>,
    /// Their planned schemas, as far as planned.
    planned: Option<Planned>,
}

impl std::fmt::Debug for SessionWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWarehouse")
            .field("session", &self.ctx.session_id())
            .field("unbuilt", &self.unbuilt)
            .finish_non_exhaustive()
    }
}

impl SessionWarehouse {
    /// Queries run on `ctx` as they come (while running: inputs are built by then).
    pub fn new(ctx: SessionContext) -> Self {
        Self {
            ctx,
            unbuilt: HashSet::new(),
            planned: None,
        }
    }

    /// While checking: `unbuilt` relations are answered from `planned` or defer the node.
    pub fn checking(
        ctx: SessionContext,
        unbuilt: HashSet<(String, String)>,
        planned: Planned,
    ) -> Self {
        Self {
            ctx,
            unbuilt,
            planned: Some(planned),
        }
    }

    fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        // Templates render synchronously inside the async runner; its runtime has threads.
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
    }

    fn unbuilt_key(&self, schema: Option<&str>, name: &str) -> Option<(String, String)> {
        let key = (schema?.to_string(), name.to_string());
        self.unbuilt.contains(&key).then_some(key)
    }
}

impl Warehouse for SessionWarehouse {
    fn query(&self, sql: &str) -> Result<QueryResult, WarehouseError> {
        let failed = |e: datafusion::error::DataFusionError| WarehouseError::Failed(e.to_string());
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect).map_err(failed)?;
        for table in state.resolve_table_references(&statement).map_err(failed)? {
            if let Some((schema, name)) = self.unbuilt_key(table.schema(), table.table()) {
                return Err(WarehouseError::NotBuiltYet(format!(
                    "a compile-time query reads {schema}.{name}, which this run builds"
                )));
            }
        }
        let batches = self
            .block_on(async {
                let frame = self.ctx.sql(sql).await?;
                frame.collect().await
            })
            .map_err(failed)?;
        let mut result = QueryResult::default();
        let Some(first) = batches.first() else {
            return Ok(result);
        };
        result.columns = first
            .schema()
            .fields()
            .iter()
            .map(|f| WarehouseColumn {
                name: f.name().clone(),
                data_type: sql_type(f.data_type()),
            })
            .collect();
        for batch in &batches {
            let columns: Vec<Vec<Json>> = batch
                .columns()
                .iter()
                .map(values)
                .collect::<Result<_, _>>()
                .map_err(|e| WarehouseError::Failed(e.to_string()))?;
            for row in 0..batch.num_rows() {
                result
                    .rows
                    .push(columns.iter().map(|c| c[row].clone()).collect());
            }
        }
        Ok(result)
    }

    fn columns(
        &self,
        schema: Option<&str>,
        name: &str,
    ) -> Result<Option<Vec<WarehouseColumn>>, WarehouseError> {
        if let Some(key) = self.unbuilt_key(schema, name) {
            let planned = self
                .planned
                .as_ref()
                .and_then(|p| p.read().get(&key).cloned());
            return match planned {
                Some(schema) => Ok(Some(columns_of(&schema))),
                None => Err(WarehouseError::NotBuiltYet(format!(
                    "its columns come from {}.{}, which this run builds",
                    key.0, key.1
                ))),
            };
        }
        let reference = match schema {
            Some(schema) => TableReference::partial(schema, name),
            None => TableReference::bare(name),
        };
        let provider = self.block_on(self.ctx.table_provider(reference));
        Ok(provider.ok().map(|p| columns_of(&p.schema())))
    }
}

fn columns_of(schema: &SchemaRef) -> Vec<WarehouseColumn> {
    schema
        .fields()
        .iter()
        .map(|f| WarehouseColumn {
            name: f.name().clone(),
            data_type: sql_type(f.data_type()),
        })
        .collect()
}

/// A type as SQL spells it.
pub(crate) fn sql_type(t: &DataType) -> String {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "varchar".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// A column's values as templates see them: numbers, booleans, text, nulls.
fn values(array: &ArrayRef) -> Result<Vec<Json>, arrow::error::ArrowError> {
    let t = array.data_type();
    if t.is_integer() {
        let ints = cast(array, &DataType::Int64)?;
        let ints = ints.as_primitive::<Int64Type>();
        return Ok(cells(ints, |i| Json::from(ints.value(i))));
    }
    if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        let floats = cast(array, &DataType::Float64)?;
        let floats = floats.as_primitive::<Float64Type>();
        return Ok(cells(floats, |i| Json::from(floats.value(i))));
    }
    if t == &DataType::Boolean {
        let bools = array.as_boolean();
        return Ok(cells(bools, |i| Json::from(bools.value(i))));
    }
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    Ok(cells(array.as_ref(), |i| {
        Json::from(formatter.value(i).to_string())
    }))
}

/// Each row's `value`, or null.
fn cells(array: &dyn Array, value: impl Fn(usize) -> Json) -> Vec<Json> {
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                Json::Null
            } else {
                value(i)
            }
        })
        .collect()
}
