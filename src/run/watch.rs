//! `strata build --watch` and `run --watch`: which models to rebuild when `strata land` (or
//! `land --watch`, in another process) commits new files to bronze. The ingest log says what
//! landed; the models reading those bronze tables, and everything downstream of them, are
//! rebuilt (incremental models take just the new rows).

use std::collections::{BTreeSet, HashSet};

use crate::lake::{Lake, delta, layout};
use crate::land::LandError;
use crate::meta::{IngestLog, ingest_log};
use crate::project::Project;
use crate::warehouse::catalog::BRONZE;

/// A bronze table: (land source, table) as in `catalog/sources.yml`.
pub type BronzeTable = (String, String);

/// Follows the ingest log: each call of [`IngestWatch::landed`] tells what landed since the
/// previous one.
pub struct IngestWatch {
    log: IngestLog,
    version: Option<u64>,
    seen: HashSet<String>,
}

impl IngestWatch {
    /// Starts after everything committed so far.
    pub async fn start(lake: &Lake) -> Result<Self, LandError> {
        let mut watch = Self {
            log: IngestLog::new(),
            version: None,
            seen: HashSet::new(),
        };
        watch.landed(lake).await?;
        Ok(watch)
    }

    /// Bronze tables that received files since the last call. Reads the log only when its
    /// Delta version moved, so polling an idle lake costs one listing.
    pub async fn landed(&mut self, lake: &Lake) -> Result<BTreeSet<BronzeTable>, LandError> {
        let path = layout::meta_table(ingest_log::TABLE);
        let version = delta::latest_version(lake, &path)
            .await
            .map_err(|e| LandError::lake(lake, &path, e))?;
        if version == self.version {
            return Ok(BTreeSet::new());
        }
        self.version = version;
        let mut landed = BTreeSet::new();
        for record in self.log.records(lake).await? {
            if self.seen.insert(record.bronze_path) {
                landed.insert((record.source, record.table_name));
            }
        }
        Ok(landed)
    }
}

/// The selection to rebuild after `landed`: every dbt source reading one of those bronze
/// tables, with its descendants (`source:x.y+`), within the user's own `select` (each
/// criterion intersected, dbt's comma). Empty when no model reads what landed.
pub fn rebuild_selection(
    project: &Project,
    landed: &BTreeSet<BronzeTable>,
    select: &[String],
) -> Vec<String> {
    let bronze_names: HashSet<String> = landed
        .iter()
        .map(|(source, table)| crate::bronze::catalog::table_name(source, table))
        .collect();
    let readers = project.sources.values().filter(|s| {
        s.schema == BRONZE
            && s.external_location.is_none()
            && bronze_names.contains(&crate::bronze::catalog::table_name(
                &s.source_name,
                &s.identifier,
            ))
    });
    let mut selection = Vec::new();
    for source in readers {
        let criterion = format!("source:{}.{}+", source.source_name, source.name);
        if select.is_empty() {
            selection.push(criterion);
        } else {
            selection.extend(select.iter().map(|user| format!("{criterion},{user}")));
        }
    }
    selection
}
