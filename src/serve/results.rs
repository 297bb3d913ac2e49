//! Query results on the wire: Arrow batches encoded as rows (text or binary, per column, by
//! arrow-pg) or as COPY data, streamed batch by batch so a large result never sits in server
//! memory, and cut short the moment the query is cancelled.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use arrow_pg::encoder::{Encoder, encode_value};
use bytes::Bytes;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::{
    CopyCsvOptions, CopyEncoder, CopyResponse, CopyTextOptions, FieldInfo, QueryResponse,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::types::format::FormatOptions;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::errors::from_datafusion;
use super::interrupt::{Guard, Reason};
use super::log::QueryLog;
use super::settings::Settings;

/// How values are spelled in text results, from the session's parameters.
pub fn format_options(settings: &Settings) -> Arc<FormatOptions> {
    let mut options = FormatOptions::default();
    let get = |name: &str| settings.get(name).map(str::to_string);
    if let Some(v) = get("DateStyle") {
        options.date_style = v;
    }
    if let Some(v) = get("IntervalStyle") {
        options.interval_style = v;
    }
    if let Some(v) = get("bytea_output") {
        options.bytea_output = v;
    }
    if let Some(v) = get("TimeZone") {
        options.time_zone = v;
    }
    if let Some(v) = settings
        .get("extra_float_digits")
        .and_then(|v| v.parse().ok())
    {
        options.extra_float_digits = v;
    }
    Arc::new(options)
}

/// The row description of a result.
pub fn fields(
    schema: &Schema,
    format: &Format,
    options: Arc<FormatOptions>,
) -> PgWireResult<Vec<FieldInfo>> {
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, Some(options))
}

/// Rows of a running query, as a response whose stream holds the query's guard and log.
pub fn query_response(
    batches: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    guard: Guard,
    log: QueryLog,
) -> QueryResponse {
    let encode_fields = Arc::clone(&fields);
    let rows = batches
        .map(move |batch| match batch {
            Ok(batch) => {
                let rows: Vec<_> =
                    arrow_pg::datatypes::encode_recordbatch(Arc::clone(&encode_fields), batch)
                        .collect();
                stream::iter(rows)
            }
            Err(e) => stream::iter(vec![Err(from_datafusion(e))]),
        })
        .flatten();
    QueryResponse::new(fields, Watched::new(rows, guard, log))
}

/// `COPY (query) TO STDOUT`, in PostgreSQL's text format or as CSV.
pub fn copy_response(
    batches: SendableRecordBatchStream,
    fields: Arc<Vec<FieldInfo>>,
    csv: bool,
    header: bool,
    guard: Guard,
    log: QueryLog,
) -> CopyResponse {
    let columns = fields.len();
    let mut encoder = if csv {
        CopyEncoder::new_csv(Arc::clone(&fields), CopyCsvOptions::default())
    } else {
        CopyEncoder::new_text(Arc::clone(&fields), CopyTextOptions::default())
    };
    let mut pending_header = (csv && header).then(|| csv_header(&fields));
    let copy_fields = Arc::clone(&fields);
    let rows = batches
        .map(move |batch| match batch {
            Ok(batch) => {
                let mut rows = copy_rows(&mut encoder, &batch, &copy_fields);
                if let (Some(header), Some(Ok(first))) = (pending_header.take(), rows.first_mut())
                {
                    let mut data = header.into_bytes();
                    data.extend_from_slice(&first.data);
                    *first = CopyData::new(Bytes::from(data));
                }
                stream::iter(rows)
            }
            Err(e) => stream::iter(vec![Err(from_datafusion(e))]),
        })
        .flatten();
    CopyResponse::new(0, columns, Watched::new(rows, guard, log))
}

fn copy_rows(
    encoder: &mut CopyEncoder,
    batch: &RecordBatch,
    fields: &[FieldInfo],
) -> Vec<PgWireResult<CopyData>> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            for (col, field) in fields.iter().enumerate() {
                encode_value(
                    encoder,
                    batch.column(col),
                    row,
                    schema.field(col),
                    field,
                )?;
            }
            Ok(Encoder::take_row(encoder))
        })
        .collect()
}

/// The CSV header line: column names, quoted where CSV needs it.
fn csv_header(fields: &[FieldInfo]) -> String {
    let names: Vec<String> = fields
        .iter()
        .map(|f| {
            let name = f.name();
            if name.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", name.replace('"', "\"\""))
            } else {
                name.to_string()
            }
        })
        .collect();
    format!("{}\n", names.join(","))
}

/// A result stream that stops with the cancel error as soon as its query is cancelled,
/// counts what it sends, and records the query when it ends (or is dropped unfinished).
struct Watched<S> {
    inner: Pin<Box<S>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    guard: Option<Guard>,
    log: QueryLog,
}

impl<S> Watched<S> {
    fn new(inner: S, guard: Guard, log: QueryLog) -> Self {
        Self {
            inner: Box::pin(inner),
            cancelled: Box::pin(guard.cancelled_owned()),
            guard: Some(guard),
            log,
        }
    }

    fn finish(&mut self, error: Option<&PgWireError>) {
        self.guard = None;
        self.log.finish(error);
    }
}

impl<S, T> Stream for Watched<S>
where
    S: Stream<Item = Result<T, PgWireError>>,
{
    type Item = Result<T, PgWireError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.guard.is_none() {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            let reason = self.guard.as_ref().and_then(Guard::reason);
            let error = reason.unwrap_or(Reason::Canceled).error();
            self.finish(Some(&error));
            return Poll::Ready(Some(Err(error)));
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(None) => {
                self.finish(None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                self.finish(Some(&error));
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Some(Ok(row))) => {
                self.log.row();
                Poll::Ready(Some(Ok(row)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
