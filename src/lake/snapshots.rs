//! Delta tables loaded once per version and shared by every session over a lake. A query asks
//! for a table's latest version, which costs one listing of its log; the table's snapshot
//! (its schema and files, with their statistics) is read only when a commit has happened
//! since, and then only the new commits are applied. So a build's commit is seen by the next
//! query, and a server's point lookups do not re-read the log each time.

use std::collections::HashMap;

use deltalake::DeltaTableError;
use object_store::path::Path;
use parking_lot::Mutex;

use super::Lake;
use super::delta::{self, Commit};
use super::delta_files::TableVersion;

/// The last loaded version of each Delta table asked for, by lake-relative path, with the
/// commit file it was loaded at.
#[derive(Debug, Default)]
pub struct Snapshots {
    tables: Mutex<HashMap<Path, (Commit, TableVersion)>>,
}

impl Snapshots {
    /// The Delta table at `path` in `lake` at its latest version, with the commit that made
    /// it, or `None` before its first commit.
    pub async fn latest(
        &self,
        lake: &Lake,
        path: &Path,
    ) -> Result<Option<(Commit, TableVersion)>, DeltaTableError> {
        let commits = delta::commits(lake, path).await?;
        let Some(latest) = commits.iter().max_by_key(|c| c.version).cloned() else {
            self.tables.lock().remove(path);
            return Ok(None);
        };
        let cached = self.tables.lock().get(path).cloned();
        let table = match cached {
            Some((seen, version)) if seen == latest => return Ok(Some((seen, version))),
            // The log still holds the commit the table was loaded at: only the new commits
            // are read. Otherwise (a table re-created since, or a log cleaned up) it is
            // loaded anew.
            Some((seen, version)) if commits.contains(&seen) => {
                let mut table = version.table().clone();
                table.update_incremental(Some(latest.version)).await?;
                table
            }
            _ => match delta::open(lake, path).await? {
                Some(table) => table,
                None => return Ok(None),
            },
        };
        let version = TableVersion::new(table);
        // A commit landing between the listing and the load is left for the next query.
        if version.table().version() == Some(latest.version) {
            self.tables
                .lock()
                .insert(path.clone(), (latest.clone(), version.clone()));
        }
        Ok(Some((latest, version)))
    }
}
