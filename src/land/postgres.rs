//! The `postgres` source kind: rows of PostgreSQL tables or queries, extracted into Parquet
//! files in bronze.
//!
//! A table lands either as a full **snapshot** each run (all its files committed to the ingest
//! log at once, so a half snapshot is never visible) or **incrementally** by a cursor column:
//! rows with `cursor > high-water mark`, in cursor order. The high-water mark is kept in the
//! ingest log row of each file (`source_state`), so a file and the watermark it implies commit
//! in one Delta transaction: a run that dies midway leaves no half file visible and no
//! watermark advanced past what is in bronze, and the next run resumes from the last commit.
//!
//! Ties: the comparison is a strict `>` on the cursor alone, which is exact as long as no file
//! ends in the middle of a group of rows sharing one cursor value; files are therefore closed
//! only between distinct cursor values. Rows are read from one `REPEATABLE READ` snapshot
//! through a portal, a bounded number at a time, and written as Parquet in bounded memory.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::kernels::cast_utils::parse_decimal;
use arrow::datatypes::{DataType, Decimal128Type, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::{Client, NoTls, Row};

use super::LandError;
use super::copy::{self, Digested, Hasher};
use super::declaration::{ExtractMode, TableDecl};
use super::source::{Landing, Source, TableFailure, TableOutcome};
use crate::lake::{Lake, layout};
use crate::meta::IngestRecord;

/// Rows fetched from the portal per round trip.
const FETCH_ROWS: i32 = 8192;
/// Rows per Arrow batch and Parquet row group: bounds the memory held per table.
const BATCH_ROWS: usize = 65_536;
/// Rows per Parquet file unless the table says otherwise.
const DEFAULT_ROWS_PER_FILE: usize = 1_000_000;
/// Connecting gives up after this long when the connection string does not say.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Days from 1970-01-01 (Arrow's epoch) to 2000-01-01 (PostgreSQL's).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * 86_400_000_000;
/// Name of the extra column carrying the cursor's text form (never written to Parquet).
const CURSOR_TEXT: &str = "__strata_cursor";

pub struct PostgresSource {
    source: String,
    connection: Option<String>,
    connection_env: Option<String>,
}

/// What a committed incremental file implies: every row with `cursor` at most `value` (the
/// PostgreSQL text form of the cursor's type) has landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Watermark {
    cursor: String,
    value: String,
}

impl PostgresSource {
    pub fn new(source: &str, connection: Option<String>, connection_env: Option<String>) -> Self {
        Self {
            source: source.to_string(),
            connection,
            connection_env,
        }
    }

    fn error(&self, table: &TableDecl, message: impl Into<String>) -> LandError {
        LandError::Postgres {
            source_name: self.source.clone(),
            table: table.name.clone(),
            message: message.into(),
        }
    }

    /// The connection settings, named after the source in `application_name` (so an operator
    /// can see and stop a landing) unless the string names the application itself.
    fn config(&self, table: &TableDecl) -> Result<tokio_postgres::Config, LandError> {
        let text = match (&self.connection, &self.connection_env) {
            (Some(text), _) => text.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| LandError::MissingEnv {
                source_name: self.source.clone(),
                var: var.clone(),
            })?,
            (None, None) => unreachable!("the declaration check requires a connection"),
        };
        // Parse errors name the bad option, never echo the string (it may hold a password).
        let mut config: tokio_postgres::Config = text
            .parse()
            .map_err(|e| self.error(table, format!("bad connection string: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name(format!("strata-land {}.{}", self.source, table.name));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(config)
    }

    async fn land_rows(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        let config = self.config(table).map_err(TableFailure::Source)?;
        let peer = peer_of(&config);
        let pg =
            |e: tokio_postgres::Error| TableFailure::Source(self.error(table, describe(&peer, &e)));
        let (mut client, connection) = config.connect(NoTls).await.map_err(pg)?;
        // The connection task ends with the client; its error, if any, surfaces in the query.
        let connection = tokio::spawn(connection);
        let landed = self
            .extract(&mut client, table, landing, outcome, &peer)
            .await;
        drop(client);
        let _ = connection.await;
        landed
    }

    async fn extract(
        &self,
        client: &mut Client,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
        peer: &str,
    ) -> Result<(), TableFailure> {
        let pg =
            |e: tokio_postgres::Error| TableFailure::Source(self.error(table, describe(peer, &e)));
        // Fixed settings make text forms (the watermark) stable across runs and servers.
        client
            .batch_execute(
                "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; \
                 SET extra_float_digits = 3",
            )
            .await
            .map_err(pg)?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg)?;
        let relation = match (&table.table, &table.query) {
            (Some(name), _) => name.split('.').map(quote).collect::<Vec<_>>().join("."),
            (None, Some(query)) => format!("({query})"),
            (None, None) => unreachable!("the declaration check requires a table or a query"),
        };
        let described = tx
            .prepare(&format!("SELECT * FROM {relation} AS s"))
            .await
            .map_err(pg)?;
        let columns: Vec<ColumnPlan> = described.columns().iter().map(ColumnPlan::of).collect();
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let mut select: Vec<String> = columns.iter().map(|c| c.select.clone()).collect();
        let mut filter = String::new();
        let mut params: Vec<String> = Vec::new();
        let cursor = match (table.mode, &table.cursor) {
            (ExtractMode::Incremental, Some(cursor)) => {
                let column = described
                    .columns()
                    .iter()
                    .find(|c| c.name() == cursor)
                    .ok_or_else(|| {
                        TableFailure::Source(self.error(
                            table,
                            format!("cursor column {cursor:?} is not among the columns {relation} returns"),
                        ))
                    })?;
                let quoted = format!("s.{}", quote(cursor));
                select.push(format!("{quoted}::text AS {CURSOR_TEXT}"));
                filter = format!("WHERE {quoted} IS NOT NULL");
                if let Some(mark) = watermark(landing, table, cursor) {
                    let ty = column.type_();
                    filter.push_str(&format!(
                        " AND {quoted} > CAST($1::text AS {}.{})",
                        quote(ty.schema()),
                        quote(ty.name())
                    ));
                    params.push(mark.value);
                }
                filter.push_str(&format!(" ORDER BY {quoted}"));
                Some(cursor.clone())
            }
            _ => None,
        };
        let sql = format!("SELECT {} FROM {relation} AS s {filter}", select.join(", "));
        let statement = tx.prepare(&sql).await.map_err(pg)?;
        let portal = tx.bind(&statement, &params_of(&params)).await.map_err(pg)?;

        let mut file: Option<ParquetFile> = None;
        let extract = Extract {
            table,
            landing,
            schema: &schema,
            cursor: cursor.as_deref(),
            source_path: source_path(peer, &relation, table),
            peer,
        };
        let result = self
            .copy_rows(&extract, &columns, &tx, &portal, &mut file, outcome)
            .await;
        if let Some(open) = file {
            // The scratch file was never visible; aborting frees its upload at once.
            open.abort().await;
        }
        result
    }

    /// Moves the portal's rows into Parquet files. Incremental files commit one by one, each
    /// with its watermark; a snapshot's files commit together at the end.
    async fn copy_rows(
        &self,
        x: &Extract<'_>,
        columns: &[ColumnPlan],
        tx: &tokio_postgres::Transaction<'_>,
        portal: &tokio_postgres::Portal,
        file: &mut Option<ParquetFile>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        let table = x.table;
        // The read-only transaction is rolled back when dropped: it only pins the snapshot.
        let pg = |e: tokio_postgres::Error| {
            TableFailure::Source(self.error(table, describe(x.peer, &e)))
        };
        let rows_per_file = table.rows_per_file.unwrap_or(DEFAULT_ROWS_PER_FILE);
        let mut batch = Batch::new(columns);
        let mut files = 0;
        // The cursor text of the last row taken: an incremental file ends only where it changes.
        let mut last_cursor: Option<String> = None;
        let mut pending = Vec::new();
        loop {
            let rows = tx.query_portal(portal, FETCH_ROWS).await.map_err(pg)?;
            let done = rows.len() < FETCH_ROWS as usize;
            for row in &rows {
                let row_cursor = x.cursor.map(|_| row.get::<_, String>(columns.len()));
                let full = file.as_ref().is_some_and(|f| f.rows >= rows_per_file);
                if full && (row_cursor.is_none() || row_cursor != last_cursor) {
                    let open = file.take().expect("a full file is open");
                    let record = self
                        .close(x, open, &mut batch, files, last_cursor.as_deref())
                        .await?;
                    files += 1;
                    outcome.report.landed += 1;
                    outcome.report.bytes += record.bytes;
                    if x.cursor.is_some() {
                        x.landing
                            .commit(&[record])
                            .await
                            .map_err(TableFailure::Abort)?;
                    } else {
                        pending.push(record);
                    }
                }
                let open = match file {
                    Some(open) => open,
                    None => file.insert(self.create(x)?),
                };
                batch
                    .push(row)
                    .map_err(|e| TableFailure::Source(self.error(table, e)))?;
                open.rows += 1;
                if batch.len() >= BATCH_ROWS {
                    open.write(&mut batch, x.schema)
                        .await
                        .map_err(|e| self.file_error(x, e))?;
                }
                last_cursor = row_cursor;
            }
            if done {
                break;
            }
        }
        // A snapshot of an empty table is one empty file: the latest snapshot says "no rows".
        if file.is_none() && x.cursor.is_none() {
            *file = Some(self.create(x)?);
        }
        if let Some(open) = file.take() {
            let record = self
                .close(x, open, &mut batch, files, last_cursor.as_deref())
                .await?;
            outcome.report.landed += 1;
            outcome.report.bytes += record.bytes;
            pending.push(record);
        }
        x.landing
            .commit(&pending)
            .await
            .map_err(TableFailure::Abort)
    }

    fn create(&self, x: &Extract<'_>) -> Result<ParquetFile, TableFailure> {
        ParquetFile::create(x.landing.lake, x.schema).map_err(|e| self.file_error(x, e))
    }

    /// Finishes `open`, renames it into bronze as this run's `n`th file of the table and
    /// returns its log record (not yet committed), whose state is the watermark `last_cursor`.
    async fn close(
        &self,
        x: &Extract<'_>,
        open: ParquetFile,
        batch: &mut Batch,
        n: usize,
        last_cursor: Option<&str>,
    ) -> Result<IngestRecord, TableFailure> {
        let (tmp, written) = open
            .finish(batch, x.schema)
            .await
            .map_err(|e| self.file_error(x, e))?;
        let dest = x.landing.bronze_path(x.table, n, "parquet");
        copy::publish(x.landing.lake, &tmp, &dest)
            .await
            .map_err(TableFailure::Abort)?;
        let state = watermark_state(x.cursor, last_cursor);
        Ok(x.landing
            .record(x.table, &x.source_path, &dest, &written, state))
    }

    fn file_error(&self, x: &Extract<'_>, e: parquet::errors::ParquetError) -> TableFailure {
        TableFailure::Abort(self.error(
            x.table,
            format!(
                "writing Parquet under {}: {e}",
                x.landing.lake.url_of(&layout::tmp_dir())
            ),
        ))
    }
}

/// What one table's extraction writes with.
struct Extract<'a> {
    table: &'a TableDecl,
    landing: &'a Landing<'a>,
    schema: &'a SchemaRef,
    /// The cursor column in incremental mode.
    cursor: Option<&'a str>,
    source_path: String,
    /// `host:port/dbname`, for messages.
    peer: &'a str,
}

#[async_trait]
impl Source for PostgresSource {
    async fn land_table(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        let result = self.land_rows(table, landing, outcome).await;
        // A table offers the rows it had to land: all of them, or what landed before a failure.
        outcome.report.offered = outcome.report.landed;
        result
    }
}

/// The high-water mark of `table` for `cursor`: the state of its last committed file.
fn watermark(landing: &Landing<'_>, table: &TableDecl, cursor: &str) -> Option<Watermark> {
    landing
        .history_of(table)
        .filter_map(|r| serde_json::from_str::<Watermark>(r.source_state.as_deref()?).ok())
        .filter(|w| w.cursor == cursor)
        .last()
}

fn watermark_state(cursor: Option<&str>, value: Option<&str>) -> Option<String> {
    let (cursor, value) = (cursor?, value?);
    let mark = Watermark {
        cursor: cursor.to_string(),
        value: value.to_string(),
    };
    Some(serde_json::to_string(&mark).expect("a watermark serializes"))
}

fn params_of(params: &[String]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

/// A double-quoted SQL identifier.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `host:port/dbname` of a connection (never its user or password), for messages and logs.
fn peer_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(dir)) => dir.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    // Without a database name PostgreSQL uses the user's name; without either, the server's.
    match config.get_dbname().or(config.get_user()) {
        Some(db) => format!("{host}:{port}/{db}"),
        None => format!("{host}:{port}"),
    }
}

/// Where a table's rows came from, as logged: `postgresql://host:port/db/<relation>`.
fn source_path(peer: &str, relation: &str, table: &TableDecl) -> String {
    match &table.table {
        Some(name) => format!("postgresql://{peer}/{name}"),
        None => format!("postgresql://{peer}/query:{relation}"),
    }
}

/// A PostgreSQL error with its server-side message and the peer it came from.
fn describe(peer: &str, e: &tokio_postgres::Error) -> String {
    format!("PostgreSQL at {peer}: {}", describe_plain(e))
}

/// A PostgreSQL error's server-side message, or its chain of causes.
fn describe_plain(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                message.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            message
        }
    }
}

/// How one result column is selected, typed in Arrow and decoded.
struct ColumnPlan {
    name: String,
    /// The select-list expression over the relation aliased `s`.
    select: String,
    data_type: DataType,
    decode: Decode,
}

#[derive(Debug, Clone, Copy)]
enum Decode {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// Text parsed at the column's precision and scale.
    Decimal(u8, i8),
    Text,
    Bytes,
    /// Microseconds since 2000-01-01 (PostgreSQL's binary timestamp).
    Timestamp,
    /// Days since 2000-01-01.
    Date,
    /// Microseconds since midnight.
    Time,
}

impl ColumnPlan {
    /// The faithful Arrow type of a PostgreSQL column: native where Arrow has one, numeric at
    /// its declared precision when it fits Decimal128, arrays as JSON text (any dimension or
    /// element type), and every other type as its PostgreSQL text form.
    fn of(column: &tokio_postgres::Column) -> Self {
        let name = column.name().to_string();
        let expr = format!("s.{}", quote(&name));
        let native = |data_type, decode| (expr.clone(), data_type, decode);
        let as_text = || (format!("{expr}::text"), DataType::Utf8, Decode::Text);
        let ty = column.type_();
        let (select, data_type, decode) = match *ty {
            Type::BOOL => native(DataType::Boolean, Decode::Bool),
            Type::INT2 => native(DataType::Int16, Decode::Int16),
            Type::INT4 => native(DataType::Int32, Decode::Int32),
            Type::INT8 => native(DataType::Int64, Decode::Int64),
            Type::FLOAT4 => native(DataType::Float32, Decode::Float32),
            Type::FLOAT8 => native(DataType::Float64, Decode::Float64),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                native(DataType::Utf8, Decode::Text)
            }
            Type::BYTEA => native(DataType::Binary, Decode::Bytes),
            Type::TIMESTAMPTZ => native(
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                Decode::Timestamp,
            ),
            Type::TIMESTAMP => native(
                DataType::Timestamp(TimeUnit::Microsecond, None),
                Decode::Timestamp,
            ),
            Type::DATE => native(DataType::Date32, Decode::Date),
            Type::TIME => native(DataType::Time64(TimeUnit::Microsecond), Decode::Time),
            Type::NUMERIC => match numeric_typmod(column.type_modifier()) {
                Some((p, s)) => (
                    format!("{expr}::text"),
                    DataType::Decimal128(p, s),
                    Decode::Decimal(p, s),
                ),
                None => as_text(),
            },
            _ if matches!(ty.kind(), Kind::Array(_)) => (
                format!("array_to_json({expr})::text"),
                DataType::Utf8,
                Decode::Text,
            ),
            _ => as_text(),
        };
        Self {
            name,
            select,
            data_type,
            decode,
        }
    }
}

/// Precision and scale of `numeric(p, s)` when Decimal128 holds it; unconstrained numeric
/// (any scale per value) and wider ones stay text.
fn numeric_typmod(typmod: i32) -> Option<(u8, i8)> {
    if typmod < 4 {
        return None;
    }
    let packed = typmod - 4;
    let precision = (packed >> 16) & 0xffff;
    // The scale is an 11-bit signed field (negative scales exist since PostgreSQL 15).
    let scale = ((packed & 0x7ff) ^ 1024) - 1024;
    let fits = (1..=38).contains(&precision) && (0..=precision).contains(&scale);
    fits.then_some((precision as u8, scale as i8))
}

/// A value in PostgreSQL's binary form, for the types decoded here by hand.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::DATE | Type::TIME
        )
    }
}

impl Raw<'_> {
    fn i64(&self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.0.try_into().map_err(|_| "bad 8-byte value")?,
        ))
    }

    fn i32(&self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(
            self.0.try_into().map_err(|_| "bad 4-byte value")?,
        ))
    }
}

/// Builders of the Arrow batch being filled, one per column.
struct Batch {
    builders: Vec<(Decode, Box<dyn ArrayBuilder>)>,
    rows: usize,
}

impl Batch {
    fn new(columns: &[ColumnPlan]) -> Self {
        let builders = columns
            .iter()
            .map(|c| {
                let builder: Box<dyn ArrayBuilder> = match c.decode {
                    Decode::Bool => Box::new(BooleanBuilder::new()),
                    Decode::Int16 => Box::new(Int16Builder::new()),
                    Decode::Int32 => Box::new(Int32Builder::new()),
                    Decode::Int64 => Box::new(Int64Builder::new()),
                    Decode::Float32 => Box::new(Float32Builder::new()),
                    Decode::Float64 => Box::new(Float64Builder::new()),
                    Decode::Decimal(p, s) => Box::new(
                        Decimal128Builder::new()
                            .with_precision_and_scale(p, s)
                            .expect("precision and scale were checked"),
                    ),
                    Decode::Text => Box::new(StringBuilder::new()),
                    Decode::Bytes => Box::new(BinaryBuilder::new()),
                    Decode::Timestamp => match &c.data_type {
                        DataType::Timestamp(_, tz) => Box::new(
                            TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()),
                        ),
                        _ => unreachable!("timestamp columns have a timestamp type"),
                    },
                    Decode::Date => Box::new(Date32Builder::new()),
                    Decode::Time => Box::new(Time64MicrosecondBuilder::new()),
                };
                (c.decode, builder)
            })
            .collect();
        Self { builders, rows: 0 }
    }

    fn len(&self) -> usize {
        self.rows
    }

    /// Appends one row (its leading columns; a trailing cursor text column is not data).
    fn push(&mut self, row: &Row) -> Result<(), String> {
        for (i, (decode, builder)) in self.builders.iter_mut().enumerate() {
            let bad =
                |e: &dyn std::fmt::Display| format!("column {:?}: {e}", row.columns()[i].name());
            let any = builder.as_any_mut();
            macro_rules! put {
                ($builder:ty, $value:ty) => {{
                    let value: Option<$value> = row.try_get(i).map_err(|e| bad(&e))?;
                    any.downcast_mut::<$builder>()
                        .expect("builder matches decode")
                        .append_option(value);
                }};
            }
            match decode {
                Decode::Bool => put!(BooleanBuilder, bool),
                Decode::Int16 => put!(Int16Builder, i16),
                Decode::Int32 => put!(Int32Builder, i32),
                Decode::Int64 => put!(Int64Builder, i64),
                Decode::Float32 => put!(Float32Builder, f32),
                Decode::Float64 => put!(Float64Builder, f64),
                Decode::Text => put!(StringBuilder, &str),
                Decode::Bytes => put!(BinaryBuilder, &[u8]),
                Decode::Decimal(p, s) => {
                    let text: Option<&str> = row.try_get(i).map_err(|e| bad(&e))?;
                    // NaN has no Decimal128 form; it is the one value that lands as null.
                    let value = text
                        .filter(|t| *t != "NaN")
                        .map(|t| parse_decimal::<Decimal128Type>(t, *p, *s))
                        .transpose()
                        .map_err(|e| bad(&e))?;
                    any.downcast_mut::<Decimal128Builder>()
                        .expect("builder matches decode")
                        .append_option(value);
                }
                Decode::Timestamp => {
                    let raw: Option<Raw> = row.try_get(i).map_err(|e| bad(&e))?;
                    // ±infinity (i64::MAX/MIN) has no Arrow timestamp: it lands as null.
                    let value = raw
                        .map(|r| r.i64())
                        .transpose()
                        .map_err(|e| bad(&e))?
                        .filter(|v| *v != i64::MAX && *v != i64::MIN)
                        .map(|v| v + PG_EPOCH_MICROS);
                    any.downcast_mut::<TimestampMicrosecondBuilder>()
                        .expect("builder matches decode")
                        .append_option(value);
                }
                Decode::Date => {
                    let raw: Option<Raw> = row.try_get(i).map_err(|e| bad(&e))?;
                    let value = raw
                        .map(|r| r.i32())
                        .transpose()
                        .map_err(|e| bad(&e))?
                        .filter(|v| *v != i32::MAX && *v != i32::MIN)
                        .map(|v| v + PG_EPOCH_DAYS);
                    any.downcast_mut::<Date32Builder>()
                        .expect("builder matches decode")
                        .append_option(value);
                }
                Decode::Time => {
                    let raw: Option<Raw> = row.try_get(i).map_err(|e| bad(&e))?;
                    let value = raw.map(|r| r.i64()).transpose().map_err(|e| bad(&e))?;
                    any.downcast_mut::<Time64MicrosecondBuilder>()
                        .expect("builder matches decode")
                        .append_option(value);
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows so far as a batch, leaving the builders empty.
    fn take(&mut self, schema: &SchemaRef) -> RecordBatch {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|(_, b)| b.finish()).collect();
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(schema), columns).expect("builders follow the schema")
    }
}

/// A Parquet file being written under a scratch name, hashed as its bytes go out.
struct ParquetFile {
    tmp: Path,
    writer: AsyncArrowWriter<Hashing>,
    rows: usize,
}

impl ParquetFile {
    fn create(lake: &Lake, schema: &SchemaRef) -> Result<Self, parquet::errors::ParquetError> {
        let tmp = super::scratch::file();
        let sink = Hashing {
            inner: BufWriter::new(Arc::clone(lake.store()), tmp.clone()),
            hasher: Hasher::default(),
        };
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(BATCH_ROWS))
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let writer = AsyncArrowWriter::try_new(sink, Arc::clone(schema), Some(props))?;
        Ok(Self {
            tmp,
            writer,
            rows: 0,
        })
    }

    /// Writes what `batch` holds as one row group.
    async fn write(
        &mut self,
        batch: &mut Batch,
        schema: &SchemaRef,
    ) -> Result<(), parquet::errors::ParquetError> {
        if batch.len() > 0 {
            self.writer.write(&batch.take(schema)).await?;
        }
        Ok(())
    }

    /// Writes the rest of `batch`, closes the file and returns its scratch path and digest.
    async fn finish(
        mut self,
        batch: &mut Batch,
        schema: &SchemaRef,
    ) -> Result<(Path, Digested), parquet::errors::ParquetError> {
        self.write(batch, schema).await?;
        self.writer.finish().await?;
        Ok((self.tmp, self.writer.into_inner().hasher.finish()))
    }

    /// Drops an unfinished file, freeing its scratch upload.
    async fn abort(self) {
        let _ = self.writer.into_inner().inner.abort().await;
    }
}

/// An object-store Parquet sink that hashes what passes through it (for the ingest log).
struct Hashing {
    inner: BufWriter,
    hasher: Hasher,
}

impl AsyncFileWriter for Hashing {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.hasher.update(&bs);
        self.inner.write(bs)
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        self.inner.complete()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_typmods_decode_to_precision_and_scale() {
        let typmod = |p: i32, s: i32| ((p << 16) | (s & 0x7ff)) + 4;
        assert_eq!(numeric_typmod(typmod(12, 2)), Some((12, 2)));
        assert_eq!(numeric_typmod(typmod(38, 0)), Some((38, 0)));
        assert_eq!(
            numeric_typmod(typmod(39, 2)),
            None,
            "too wide for Decimal128"
        );
        assert_eq!(numeric_typmod(typmod(5, -2)), None, "negative scale");
        assert_eq!(numeric_typmod(-1), None, "unconstrained numeric");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("Order \"x\""), "\"Order \"\"x\"\"\"");
    }

    #[test]
    fn peers_never_show_the_password() {
        let config: tokio_postgres::Config = "host=db port=6543 dbname=shop user=u password=sekrit"
            .parse()
            .unwrap();
        assert_eq!(peer_of(&config), "db:6543/shop");
    }
}
