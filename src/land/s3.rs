//! The `s3` source kind: objects under `s3://bucket/prefix` on AWS S3 or an S3-compatible
//! service, whose keys (relative to the prefix) match a table's glob.
//!
//! The listing gives each object's ETag, and each landed object's ETag is kept in its
//! ingest-log row: an object whose ETag is unchanged since it landed is not downloaded again.
//! Any other object is streamed into a scratch file while it is hashed (bounded memory whatever
//! its size); content the table already holds is dropped, the rest renamed into bronze and
//! committed at once. A transfer cut short is resumed by the S3 client (a ranged GET pinned to
//! the same ETag) a few times, then fails that object alone, leaving nothing behind.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use globset::Glob;
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig};
use serde::{Deserialize, Serialize};

use super::copy;
use super::declaration::TableDecl;
use super::source::{Landing, ScratchFile, Source, TableFailure, TableOutcome, extension_of};
use super::{LandError, progress_bar};
use crate::lake::s3::{self, S3Location, S3Settings};

/// Retries per request (a cut body resumes as a retry). Fewer than the client's default of
/// ten, so a service that is gone fails the run in seconds rather than minutes.
const RETRIES: usize = 4;
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct S3Source {
    location: S3Location,
    settings: S3Settings,
}

/// A landed object's ETag, kept in its ingest-log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ObjectState {
    etag: String,
}

impl S3Source {
    pub fn new(location: S3Location, settings: S3Settings) -> Self {
        Self { location, settings }
    }

    fn store(&self) -> Result<AmazonS3, LandError> {
        let retry = RetryConfig {
            max_retries: RETRIES,
            retry_timeout: RETRY_TIMEOUT,
            ..RetryConfig::default()
        };
        s3::store(&self.location, &self.settings, retry).map_err(|e| self.error(None, e))
    }

    /// An error naming the source's location, or the object `key` in its bucket.
    fn error(&self, key: Option<&Path>, source: object_store::Error) -> LandError {
        LandError::S3 {
            url: key.map_or_else(|| self.location.to_string(), |k| self.url_of(k)),
            source,
        }
    }

    fn url_of(&self, key: &Path) -> String {
        format!("s3://{}/{key}", self.location.url().authority())
    }

    /// The objects whose keys, relative to the prefix, match `table`'s glob, in key order.
    async fn discover(
        &self,
        store: &AmazonS3,
        table: &TableDecl,
    ) -> Result<Vec<ObjectMeta>, LandError> {
        let matcher = Glob::new(table.file_pattern())
            .expect("patterns are validated when the declaration loads")
            .compile_matcher();
        let prefix = self.location.prefix();
        let listed: Vec<ObjectMeta> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(None, e))?;
        let mut objects: Vec<ObjectMeta> = listed
            .into_iter()
            .filter(|o| {
                let relative = o.location.prefix_match(&prefix).map(|parts| {
                    parts
                        .map(|p| p.as_ref().to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                });
                relative.is_some_and(|r| matcher.is_match(r))
            })
            .collect();
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// Streams one object into a scratch file of the lake.
    async fn fetch(
        &self,
        store: &AmazonS3,
        landing: &Landing<'_>,
        key: &Path,
        progress: &indicatif::ProgressBar,
    ) -> Result<ScratchFile, LandError> {
        let result = store.get(key).await.map_err(|e| self.error(Some(key), e))?;
        let etag = result.meta.e_tag.clone();
        let url = self.url_of(key);
        let owned = url.clone();
        let body = result
            .into_stream()
            .map_err(move |source| LandError::S3 {
                url: owned.clone(),
                source,
            })
            .boxed();
        let (tmp, written) = copy::write_scratch(landing.lake, body, |n| progress.inc(n)).await?;
        Ok(ScratchFile {
            extension: extension_of(key.as_ref()),
            location: url,
            tmp,
            written,
            state: etag.map(|etag| {
                serde_json::to_string(&ObjectState { etag }).expect("the state serializes")
            }),
        })
    }
}

#[async_trait]
impl Source for S3Source {
    async fn land_table(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        let store = self.store().map_err(TableFailure::Source)?;
        let objects = self
            .discover(&store, table)
            .await
            .map_err(TableFailure::Source)?;
        outcome.report.offered = objects.len();
        // The ETag each object had when it last landed (later rows win).
        let landed: HashMap<&str, String> = landing
            .history_of(table)
            .filter_map(|r| {
                let state: ObjectState = serde_json::from_str(r.source_state.as_deref()?).ok()?;
                Some((r.source_path.as_str(), state.etag))
            })
            .collect();
        let (unchanged, changed): (Vec<ObjectMeta>, Vec<ObjectMeta>) =
            objects.into_iter().partition(|o| {
                o.e_tag.is_some()
                    && landed.get(self.url_of(&o.location).as_str()) == o.e_tag.as_ref()
            });
        outcome.report.skipped += unchanged.len();

        let progress = progress_bar(landing.show_progress, changed.iter().map(|o| o.size).sum());
        let fetched: Vec<Result<ScratchFile, LandError>> = stream::iter(changed)
            .map(|object| {
                let (store, progress) = (&store, &progress);
                async move { self.fetch(store, landing, &object.location, progress).await }
            })
            .buffered(landing.concurrency)
            .collect()
            .await;
        progress.finish_and_clear();
        let mut scratch = Vec::new();
        for result in fetched {
            match result {
                Ok(file) => scratch.push(file),
                Err(error) => outcome.failures.push(error),
            }
        }
        landing
            .publish(table, scratch, &mut outcome.report)
            .await
            .map_err(TableFailure::Abort)
    }
}
