//! Moving raw bytes into the lake: hashed on the way, written under a scratch name, and made
//! visible by one rename, so a reader never sees a half-written file.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use super::LandError;
use super::scratch;
use super::source::ByteStream;
use crate::lake::Lake;

/// Parts of 8 MiB keep memory bounded per file while HDFS and S3 see large writes.
const PART_SIZE: usize = 8 << 20;
/// Parts in flight per file.
const PARTS_IN_FLIGHT: usize = 2;

/// What a pass over a file's bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub sha256: String,
    pub bytes: u64,
}

/// Hashes and counts bytes as they pass.
#[derive(Default)]
pub struct Hasher {
    sha: Sha256,
    bytes: u64,
}

impl Hasher {
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha.update(chunk);
        self.bytes += chunk.len() as u64;
    }

    pub fn finish(self) -> Digested {
        Digested {
            sha256: hex::encode(self.sha.finalize()),
            bytes: self.bytes,
        }
    }
}

/// Reads a stream to its end, returning its hash and length.
pub async fn digest(mut stream: ByteStream) -> Result<Digested, LandError> {
    let mut hasher = Hasher::default();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    Ok(hasher.finish())
}

/// Why a write did not make its file visible.
#[derive(Debug)]
pub enum WriteError {
    /// The bytes did not hash to what was expected: the source changed under us.
    Changed,
    Land(LandError),
}

impl From<LandError> for WriteError {
    fn from(e: LandError) -> Self {
        Self::Land(e)
    }
}

/// Writes `stream` to `dest` (lake-relative) atomically if its bytes hash to `expected`,
/// calling `progress` with each chunk's length. Fails rather than overwrite an existing file.
/// A stream that fails midway leaves nothing at `dest`.
pub async fn write_atomically(
    lake: &Lake,
    stream: ByteStream,
    dest: &Path,
    expected: &Digested,
    progress: impl Fn(u64),
) -> Result<Digested, WriteError> {
    let (tmp, written) = write_scratch(lake, stream, progress).await?;
    if &written != expected {
        let _ = lake.store().delete(&tmp).await;
        return Err(WriteError::Changed);
    }
    publish(lake, &tmp, dest).await?;
    Ok(written)
}

/// Writes `stream` to a fresh scratch file (never read as data), returning its path and what
/// was written; [`publish`] makes it visible. A stream that fails midway leaves no scratch file.
pub async fn write_scratch(
    lake: &Lake,
    mut stream: ByteStream,
    progress: impl Fn(u64),
) -> Result<(Path, Digested), LandError> {
    let store = lake.store();
    let tmp = scratch::file();
    let upload = store
        .put_multipart(&tmp)
        .await
        .map_err(|e| LandError::lake(lake, &tmp, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut hasher = Hasher::default();
    let copied: Result<(), LandError> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            progress(chunk.len() as u64);
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| LandError::lake(lake, &tmp, e))?;
            writer.put(chunk);
        }
        Ok(())
    }
    .await;
    if let Err(e) = copied {
        // The scratch file was never visible; aborting just frees it early.
        let _ = writer.abort().await;
        return Err(e);
    }
    writer
        .finish()
        .await
        .map_err(|e| LandError::lake(lake, &tmp, e))?;
    Ok((tmp, hasher.finish()))
}

/// Makes the finished scratch file `tmp` visible at `dest` with one rename (never overwriting),
/// removing the scratch file if that fails.
pub async fn publish(lake: &Lake, tmp: &Path, dest: &Path) -> Result<(), LandError> {
    let store = lake.store();
    if let Err(e) = store.rename_if_not_exists(tmp, dest).await {
        let _ = store.delete(tmp).await;
        return Err(LandError::lake(lake, dest, e));
    }
    Ok(())
}
