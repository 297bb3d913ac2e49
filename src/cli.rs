//! The command line: argument parsing and human-readable output. Library errors get their
//! context here, at the edge.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::generate::{self, GenerateArgs};
use crate::lake::Lake;
use crate::land::{self, LandOptions, LandReport};

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "A SQL-first lakehouse: generate, land, explore, transform and serve"
)]
pub struct Cli {
    /// The project directory (holding strata.toml)
    #[arg(long, global = true, env = "STRATA_PROJECT_DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// Lake root for this command: a local directory or hdfs://host:port/path (overrides
    /// strata.toml and STRATA_LAKE)
    #[arg(long, global = true)]
    pub lake: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate dirty synthetic raw files for an online shop (the "source systems")
    Generate(GenerateArgs),
    /// Copy raw files from the declared sources into the bronze layer, unchanged
    Land(LandArgs),
}

#[derive(Debug, clap::Args)]
pub struct LandArgs {
    /// Land only these sources or tables (`source` or `source.table`); repeatable
    #[arg(short = 's', long = "select")]
    pub select: Vec<String>,
    /// Files copied at once (default from strata.toml, else 8)
    #[arg(long)]
    pub concurrency: Option<usize>,
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(args) => run_generate(&args),
        Command::Land(args) => {
            let config = load_config(&cli.project_dir, cli.lake.as_deref())?;
            run_land(&config, &args).await
        }
    }
}

fn load_config(project_dir: &std::path::Path, lake: Option<&str>) -> Result<Config> {
    let dir = std::path::absolute(project_dir)
        .with_context(|| format!("project directory {}", project_dir.display()))?;
    Ok(Config::load(&dir, lake)?)
}

fn run_generate(args: &GenerateArgs) -> Result<()> {
    let manifest = generate::generate(args)
        .with_context(|| format!("generating into {}", args.out.display()))?;
    let records: u64 = manifest.files.iter().map(|f| f.records).sum();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "Generated {} files, {records} records, {} in {} (manifest.json lists each file's rows and dirt)",
        manifest.files.len(),
        human_bytes(bytes),
        args.out.display()
    );
    Ok(())
}

async fn run_land(config: &Config, args: &LandArgs) -> Result<()> {
    let lake = Lake::open(config.lake.clone())?;
    let opts = LandOptions {
        selectors: args.select.clone(),
        concurrency: args.concurrency.unwrap_or(config.land.concurrency),
        show_progress: std::io::stderr().is_terminal(),
    };
    println!("Landing into {}", config.lake);
    let report = land::land(config, &lake, &opts)
        .await
        .with_context(|| format!("landing into {}", config.lake))?;
    print_land_report(&report);
    if !report.failures.is_empty() {
        bail!(
            "{} file(s) or source(s) failed to land",
            report.failures.len()
        );
    }
    Ok(())
}

fn print_land_report(report: &LandReport) {
    if report.orphans_removed > 0 {
        println!(
            "Removed {} file(s) an interrupted earlier run left unlogged; they land again now",
            report.orphans_removed
        );
    }
    let width = report
        .tables
        .iter()
        .map(|t| t.source.len() + t.table.len() + 1)
        .max()
        .unwrap_or(0);
    for t in &report.tables {
        let name = format!("{}.{}", t.source, t.table);
        println!(
            "  {name:<width$}  {:>5} offered  {:>5} landed  {:>5} already landed  {:>10}",
            t.offered,
            t.landed,
            t.skipped,
            human_bytes(t.bytes)
        );
    }
    for f in &report.failures {
        eprintln!("ERROR {}.{}: {}", f.source, f.table, f.error);
    }
    let landed: usize = report.tables.iter().map(|t| t.landed).sum();
    let skipped: usize = report.tables.iter().map(|t| t.skipped).sum();
    println!(
        "Done (batch {}): {landed} landed, {skipped} already landed, {} failed",
        report.batch_id,
        report.failures.len()
    );
}

fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}
