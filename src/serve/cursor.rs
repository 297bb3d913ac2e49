//! SQL cursors (`DECLARE … CURSOR FOR`, `FETCH`, `CLOSE`), which psycopg's named cursors and
//! other drivers use to read a large result in pieces: the query keeps running between
//! fetches, holding only the batch it is in the middle of.

use std::collections::HashMap;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use pgwire::error::PgWireError;
use tokio::sync::Mutex;

use super::errors::{from_datafusion, user_error};

const DUPLICATE_CURSOR: &str = "42P03";
const INVALID_CURSOR_NAME: &str = "34000";

struct Cursor {
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    /// Rows of the last batch not fetched yet.
    pending: Option<RecordBatch>,
}

/// A connection's open cursors.
#[derive(Default)]
pub struct Cursors(Mutex<HashMap<String, Cursor>>);

impl Cursors {
    pub async fn declare(
        &self,
        name: &str,
        stream: SendableRecordBatchStream,
    ) -> Result<(), PgWireError> {
        let mut cursors = self.0.lock().await;
        if cursors.contains_key(name) {
            return Err(user_error(
                DUPLICATE_CURSOR,
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let cursor = Cursor {
            schema: stream.schema(),
            stream,
            pending: None,
        };
        cursors.insert(name.to_string(), cursor);
        Ok(())
    }

    pub async fn schema(&self, name: &str) -> Result<SchemaRef, PgWireError> {
        self.0
            .lock()
            .await
            .get(name)
            .map(|c| c.schema.clone())
            .ok_or_else(|| missing(name))
    }

    /// The next `count` rows (all that are left for `None`).
    pub async fn fetch(
        &self,
        name: &str,
        count: Option<u64>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), PgWireError> {
        let mut cursors = self.0.lock().await;
        let cursor = cursors.get_mut(name).ok_or_else(|| missing(name))?;
        let mut wanted = count.map_or(usize::MAX, |c| c as usize);
        let mut batches = Vec::new();
        while wanted > 0 {
            let batch = match cursor.pending.take() {
                Some(batch) => batch,
                None => match cursor.stream.next().await {
                    Some(batch) => batch.map_err(from_datafusion)?,
                    None => break,
                },
            };
            if batch.num_rows() > wanted {
                cursor.pending = Some(batch.slice(wanted, batch.num_rows() - wanted));
                batches.push(batch.slice(0, wanted));
                wanted = 0;
            } else {
                wanted -= batch.num_rows();
                batches.push(batch);
            }
        }
        Ok((cursor.schema.clone(), batches))
    }

    /// Closes one cursor, or all of them.
    pub async fn close(&self, name: Option<&str>) -> Result<(), PgWireError> {
        let mut cursors = self.0.lock().await;
        match name {
            Some(name) => cursors.remove(name).map(drop).ok_or_else(|| missing(name)),
            None => {
                cursors.clear();
                Ok(())
            }
        }
    }
}

fn missing(name: &str) -> PgWireError {
    user_error(
        INVALID_CURSOR_NAME,
        format!("cursor \"{name}\" does not exist"),
    )
}
