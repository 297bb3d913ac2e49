//! Raw reads from SQL, as DuckDB users know them: `read_csv('drop/orders/*.csv')`,
//! `read_json`, `read_ndjson`, `read_parquet`, `read_xml('…', row_tag => 'shipment')`, and a
//! bare quoted path with a known extension (`SELECT * FROM 'drop/orders/x.csv'`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, UrlTableFactory};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;

use super::catalog::Bronze;
use crate::lake::RawFormat;

/// The table functions and the formats they read (DuckDB's `_auto` names too: Strata always
/// infers the schema).
const FUNCTIONS: [(&str, RawFormat); 8] = [
    ("read_csv", RawFormat::Csv),
    ("read_csv_auto", RawFormat::Csv),
    ("read_json", RawFormat::Json),
    ("read_json_auto", RawFormat::Json),
    ("read_ndjson", RawFormat::Ndjson),
    ("read_ndjson_auto", RawFormat::Ndjson),
    ("read_parquet", RawFormat::Parquet),
    ("read_xml", RawFormat::Xml),
];

/// Registers the raw-read table functions on `ctx`.
pub fn register(ctx: &SessionContext, bronze: &Arc<Bronze>) {
    for (name, format) in FUNCTIONS {
        ctx.register_udtf(
            name,
            Arc::new(ReadRaw {
                bronze: Arc::clone(bronze),
                name,
                format,
            }),
        );
    }
}

#[derive(Debug)]
struct ReadRaw {
    bronze: Arc<Bronze>,
    name: &'static str,
    format: RawFormat,
}

impl TableFunctionImpl for ReadRaw {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let Some(path) = exprs.first().and_then(literal_string) else {
            return plan_err!("{}(path, …) takes the path as a string first", self.name);
        };
        let mut options = BTreeMap::new();
        for (i, expr) in exprs.iter().enumerate().skip(1) {
            let Some(text) = literal_string(expr) else {
                return plan_err!("{}: argument {} must be a string", self.name, i + 1);
            };
            // `key => value` arrives as "key=value" (see `sql::named_args`); a bare second
            // argument of read_xml is its row tag.
            match text.split_once('=') {
                Some((k, v)) => match duckdb_option(k.trim(), v) {
                    Ok(Some(key)) => options.insert(key.to_string(), v.to_string()),
                    Ok(None) => None,
                    Err(e) => return plan_err!("{}: {e}", self.name),
                },
                None if self.format == RawFormat::Xml && i == 1 => {
                    options.insert("row_tag".to_string(), text)
                }
                None => return plan_err!("{}: option {text:?} is not key => value", self.name),
            };
        }
        let bronze = Arc::clone(&self.bronze);
        let format = self.format;
        // Planning is synchronous but the schema comes from the files: infer it on this
        // worker thread (the runtime is multi-threaded).
        let table = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(async move { bronze.at_path(&path, format, &options).await })
        })?;
        Ok(Arc::new(table))
    }
}

/// An option as Strata's readers name it, for DuckDB's names (`delim`, `sep`, `nullstr`);
/// `None` for one that asks for what Strata does anyway (`auto_detect = true`).
fn duckdb_option<'k>(key: &'k str, value: &str) -> Result<Option<&'k str>, String> {
    Ok(match key {
        "delim" | "sep" => Some("delimiter"),
        "nullstr" => Some("null"),
        "auto_detect" if value.trim().eq_ignore_ascii_case("true") => None,
        "auto_detect" => {
            return Err(
                "auto_detect = false is not supported: Strata always infers the schema".into(),
            );
        }
        other => Some(other),
    })
}

fn literal_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        _ => None,
    }
}

/// The format a file name's extension implies.
pub fn format_of(path: &str) -> Option<RawFormat> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let ext = name.rsplit('.').next()?;
    Some(match ext {
        "csv" | "tsv" => RawFormat::Csv,
        "json" => RawFormat::Json,
        "ndjson" | "jsonl" => RawFormat::Ndjson,
        "parquet" => RawFormat::Parquet,
        "xml" => RawFormat::Xml,
        _ => return None,
    })
}

/// Bare quoted paths in FROM: a table over the files when the extension is known.
#[derive(Debug)]
pub struct RawPathTables(pub Arc<Bronze>);

#[async_trait]
impl UrlTableFactory for RawPathTables {
    async fn try_new(&self, path: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(format) = format_of(path) else {
            return Ok(None);
        };
        let mut options = BTreeMap::new();
        if path.to_ascii_lowercase().ends_with(".tsv") {
            options.insert("delimiter".to_string(), "\t".to_string());
        }
        let table = self.0.at_path(path, format, &options).await?;
        Ok(Some(Arc::new(table) as Arc<dyn TableProvider>))
    }
}
