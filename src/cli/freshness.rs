//! `strata source freshness`: one dbt-like line per checked source table, dbt's
//! `sources.json`, and a failing exit when a table is stale past `error_after` or unreadable.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::models::{load_project, warn_unmatched};
use super::{SelectArgs, open_lake_session};
use crate::config::Config;
use crate::run::freshness::{self, Checked, Status, artifact};

#[derive(Debug, clap::Subcommand)]
pub enum SourceCommand {
    /// Check when each source table with `freshness:` last loaded, against its warn_after
    /// and error_after (dbt's source freshness); writes target/sources.json
    Freshness(FreshnessArgs),
}

#[derive(Debug, clap::Args)]
pub struct FreshnessArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    /// Where the results go (default: <target-path>/sources.json)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

/// `strata source ...`.
pub async fn source(config: &Config, command: &SourceCommand) -> Result<()> {
    match command {
        SourceCommand::Freshness(args) => check(config, args).await,
    }
}

async fn check(config: &Config, args: &FreshnessArgs) -> Result<()> {
    let project = load_project(config, &args.selection, "freshness", false, 1)?;
    let selection = &args.selection;
    let (tables, unmatched) = freshness::selected(&project, &selection.select, &selection.exclude)?;
    warn_unmatched(&unmatched);
    for warning in tables.iter().filter_map(|t| freshness::unapplied_filter(t)) {
        eprintln!("warning: {warning}");
    }
    let (ctx, lake) = open_lake_session(config).await?;
    let clock = std::time::Instant::now();
    println!(
        "Checking the freshness of {} source table(s) on {}",
        tables.len(),
        config.lake
    );
    let total = tables.len();
    let mut done = 0;
    let checked = freshness::check_all(&ctx, &lake, &tables, |c| {
        done += 1;
        println!("{}", line(done, total, c));
    })
    .await;
    let elapsed = clock.elapsed().as_secs_f64();
    let invocation = &project.target.invocation;
    let json = artifact::sources_json(&checked, &invocation.id, invocation.started_at, elapsed);
    let path = match &args.output {
        Some(path) => path.clone(),
        None => project.root.join(&project.target_path).join("sources.json"),
    };
    artifact::write(&path, &json)?;
    for c in &checked {
        if let Err(message) = &c.loaded {
            println!("\nRuntime error in freshness of {}:\n  {message}", name(c));
        }
    }
    let count = |s: Status| checked.iter().filter(|c| c.status == s).count();
    println!(
        "\nFinished in {elapsed:.2}s. PASS={} WARN={} ERROR={} RUNTIME ERROR={} TOTAL={total}; \
         results in {}",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Error),
        count(Status::RuntimeError),
        path.display()
    );
    let failed = count(Status::Error) + count(Status::RuntimeError);
    if failed > 0 {
        bail!("{failed} source table(s) are stale past error_after or could not be read");
    }
    Ok(())
}

/// `shop.orders`, as dbt names a source table in its output.
fn name(c: &Checked) -> String {
    format!("{}.{}", c.source.source_name, c.source.name)
}

/// One dbt-like line per checked table.
fn line(index: usize, total: usize, c: &Checked) -> String {
    let label = match c.status {
        Status::Pass => "PASS",
        Status::Warn => "WARN",
        Status::Error => "ERROR STALE",
        Status::RuntimeError => "ERROR",
    };
    let detail = match &c.loaded {
        Ok(loaded) => format!(
            "[loaded {} ago, at {}; {:.2}s]",
            humantime::format_duration(std::time::Duration::from_secs(
                loaded.age_seconds().max(0.0) as u64
            )),
            loaded.max_loaded_at.format("%Y-%m-%d %H:%M:%S UTC"),
            c.seconds
        ),
        Err(_) => format!("[{:.2}s]", c.seconds),
    };
    let what = format!("freshness of {}", name(c));
    format!("{index:>4} of {total} {label:<11} {what:<50} {detail}")
}
