//! Synthetic raw data for an online shop, with the dirt real sources have.
//!
//! `generate` writes `<out>/<entity>/<entity>_<YYYY-MM-DD>.<ext>`, one file per entity per
//! daily batch, and `<out>/manifest.json`, which says exactly how many records each file holds
//! and how many of them show each kind of dirt. Output is a pure function of the arguments:
//! the same seed gives byte-identical files.
//!
//! How it fits together: `plan` fixes ids and dates per batch, `facts` derives the clean
//! truth per key (shared by all entities), each `entity` turns facts into rows with dirt
//! decided from its own random stream, and `dirt::pump` adds duplicates and malformed records
//! while a `text` or Parquet sink writes them through a hashing `output` file.

mod calendar;
mod dirt;
mod entity;
mod facts;
mod manifest;
mod options;
mod output;
mod plan;
mod publish;
mod text;
mod vocab;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

pub use manifest::{DirtCounts, EntityTotals, FileEntry, Manifest};
pub use options::{GenerateArgs, Rates};
pub use publish::publish_events;

use entity::Entity;
use output::OutFile;
use plan::Plan;

/// Why a run failed; messages name the file involved.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid generate options: {0}")]
    InvalidArgs(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a valid manifest: {source}", path.display())]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("publishing events to {target}: {source}")]
    Publish {
        target: String,
        source: crate::land::stream::nats::PublishError,
    },
}

/// Writes every selected entity's files and the manifest under `args.out`.
pub fn generate(args: &GenerateArgs) -> Result<Manifest, GenerateError> {
    args.validate().map_err(GenerateError::InvalidArgs)?;
    let plan = Plan::new(args);
    let formats = args.selected_formats();
    let entities: Vec<Entity> = Entity::ALL
        .into_iter()
        .filter(|entity| formats.contains(&entity.format()))
        .collect();
    for entity in &entities {
        let dir = args.out.join(entity.name());
        std::fs::create_dir_all(&dir).map_err(|source| GenerateError::Io { path: dir, source })?;
    }

    let progress = ProgressBar::new(entities.iter().map(|e| e.expected_records(&plan)).sum());
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} generating [{bar:30}] {human_pos}/{human_len} rows ({per_sec}, {eta})",
        )
        .expect("the template is valid"),
    );
    let files = write_all(&plan, &args.out, &entities, &progress);
    progress.finish_and_clear();
    let mut files = files?;
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let manifest = Manifest {
        generator: "strata generate".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        seed: args.seed,
        scale: args.scale,
        batches: args.batches,
        start_date: calendar::iso_date(plan.day(0)),
        formats,
        drift: plan.drift,
        rates: plan.rates,
        totals: Manifest::sum_totals(&files),
        files,
    };
    let path = args.out.join(Manifest::FILE_NAME);
    let mut json =
        serde_json::to_vec_pretty(&manifest).map_err(|source| GenerateError::Manifest {
            path: path.clone(),
            source,
        })?;
    json.push(b'\n');
    std::fs::write(&path, json).map_err(|source| GenerateError::Io { path, source })?;
    Ok(manifest)
}

/// Writes one file per (entity, batch) on a few worker threads. Every file depends only on
/// the plan, so the output is the same whichever thread writes what.
fn write_all(
    plan: &Plan,
    out: &Path,
    entities: &[Entity],
    progress: &ProgressBar,
) -> Result<Vec<FileEntry>, GenerateError> {
    let mut jobs: Vec<(Entity, u32)> = entities
        .iter()
        .flat_map(|&entity| (0..plan.batches).map(move |batch| (entity, batch)))
        .collect();
    // Biggest first, so no worker starts the events feed last and finishes alone.
    jobs.sort_by_key(|&(entity, batch)| (std::cmp::Reverse(entity.expected_records(plan)), batch));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(entity, batch)) = jobs.get(i) else {
                        break;
                    };
                    let result = write_file(plan, out, entity, batch, progress);
                    results
                        .lock()
                        .expect("no worker panics holding the lock")
                        .push((i, result));
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .expect("no worker panicked holding the lock");
    // Report the first failure in job order, not in the order threads happened to hit it.
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

fn write_file(
    plan: &Plan,
    out: &Path,
    entity: Entity,
    batch: u32,
    progress: &ProgressBar,
) -> Result<FileEntry, GenerateError> {
    let name = entity.name();
    let format = entity.format();
    let date = calendar::iso_date(plan.day(batch));
    let relative = format!("{name}/{name}_{date}.{}", format.extension());
    let path = out.join(&relative);
    let io_error = |source| GenerateError::Io {
        path: path.clone(),
        source,
    };
    let file = OutFile::create(&path).map_err(io_error)?;
    let (tally, written) = entity
        .write(plan, batch, file, progress)
        .map_err(io_error)?;
    Ok(FileEntry {
        path: relative,
        entity: name.into(),
        format,
        batch: batch + 1,
        date,
        columns: tally.columns.iter().map(|&c| c.into()).collect(),
        records: tally.records,
        valid_records: tally.records - tally.dirt.malformed,
        bytes: written.bytes,
        sha256: written.sha256,
        dirt: tally.dirt,
    })
}
