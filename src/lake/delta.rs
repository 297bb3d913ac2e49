//! Opening and writing Delta tables at lake URLs.

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::CommitInfo;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use url::Url;

use super::Lake;

/// Loads the Delta table at `path` in `lake`, or `None` when nothing has been committed there
/// yet (checked first: delta-rs logs an error for a table without commits).
pub async fn open(lake: &Lake, path: &Path) -> Result<Option<DeltaTable>, DeltaTableError> {
    let log = path.clone().join("_delta_log");
    let mut entries = lake.store().list(Some(&log));
    match entries.next().await {
        None | Some(Err(object_store::Error::NotFound { .. })) => return Ok(None),
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(_)) => {}
    }
    let table = DeltaTable::try_from_url(lake.url_of(path)).await?;
    Ok(table.version().is_some().then_some(table))
}

/// The latest committed version of the Delta table at `path`, read from its log's file names
/// (one listing, no file read); `None` before the first commit.
pub async fn latest_version(lake: &Lake, path: &Path) -> Result<Option<u64>, object_store::Error> {
    let commits = commits(lake, path).await?;
    Ok(commits.iter().map(|commit| commit.version).max())
}

/// A commit file of a Delta table's log: its version, and when it was written and how long it
/// is, which tell it from the same version of a table re-created since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub version: u64,
    pub written: chrono::DateTime<chrono::Utc>,
    pub size: u64,
}

/// The commit files in the log of the Delta table at `path`, in no order (one listing, no
/// file read); empty before the first commit.
pub async fn commits(lake: &Lake, path: &Path) -> Result<Vec<Commit>, object_store::Error> {
    let log = path.clone().join("_delta_log");
    let listing = match lake.store().list_with_delimiter(Some(&log)).await {
        Ok(listing) => listing,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(listing
        .objects
        .iter()
        .filter_map(|o| {
            let version = o.location.filename()?.strip_suffix(".json")?.parse().ok()?;
            Some(Commit {
                version,
                written: o.last_modified,
                size: o.size,
            })
        })
        .collect())
}

/// The commit info of version `version` of the Delta table at `path`, read from that commit's
/// own log file; `None` when the file is gone (log clean-up) or holds no commit info.
pub async fn commit_info(
    lake: &Lake,
    path: &Path,
    version: u64,
) -> Result<Option<CommitInfo>, DeltaTableError> {
    let file = path
        .clone()
        .join("_delta_log")
        .join(format!("{version:020}.json"));
    let bytes = match lake.store().get(&file).await {
        Ok(got) => got.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for line in bytes.split(|b| *b == b'\n') {
        let action: serde_json::Value = match serde_json::from_slice(line) {
            Ok(action) => action,
            Err(_) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(info) = action.get("commitInfo") {
            return Ok(Some(serde_json::from_value(info.clone())?));
        }
    }
    Ok(None)
}

/// Appends `batches` to the Delta table at `path`, creating it on first use: one commit, so
/// readers see all of the rows or none of them. New columns are merged into the table's schema,
/// so a metadata table written by an older Strata gains the columns a newer one adds.
pub async fn append(
    lake: &Lake,
    path: &Path,
    name: &str,
    batches: Vec<RecordBatch>,
) -> Result<DeltaTable, DeltaTableError> {
    let table = match open(lake, path).await? {
        Some(table) => table,
        None => {
            let url = lake.url_of(path);
            prepare_local_dir(&url)?;
            DeltaTableBuilder::from_url(url)?.build()?
        }
    };
    table
        .write(batches)
        .with_save_mode(SaveMode::Append)
        .with_schema_mode(SchemaMode::Merge)
        .with_table_name(name)
        .await
}

/// delta-rs resolves `file://` tables by canonical path, so the directory must exist first.
fn prepare_local_dir(url: &Url) -> Result<(), DeltaTableError> {
    if let Ok(path) = url.to_file_path() {
        std::fs::create_dir_all(&path).map_err(|e| {
            DeltaTableError::Generic(format!("cannot create {}: {e}", path.display()))
        })?;
    }
    Ok(())
}
