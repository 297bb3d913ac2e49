//! `strata show`: previews of the selected models' rows, or of an inline query's, printed as
//! dbt prints them (a table, or `{"node": .., "show": [..]}` with `--output json`).

use anyhow::{Context, Result, bail};

use super::models::{load_project, warn_unmatched};
use super::{SelectArgs, open_lake_session, print_result};
use crate::config::Config;
use crate::run::show::{self, Preview};
use crate::sql::render::Format;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    /// A query to preview instead of a model (Jinja and the project's macros apply:
    /// "select * from {{ ref('orders') }}")
    #[arg(long, conflicts_with = "select")]
    pub inline: Option<String>,
    /// Rows to preview; -1 for all
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub limit: i64,
    /// How the rows are printed
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// dbt's `--output` of `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table, as `strata sql` prints one
    Text,
    /// `{"node": <name>, "show": [<row>, ..]}`
    Json,
}

/// `strata show`.
pub async fn show(config: &Config, args: &ShowArgs) -> Result<()> {
    let limit = match args.limit {
        n if n < 0 => None,
        n => Some(n as usize),
    };
    let mut project = load_project(config, &args.selection, "show", false, 1)?;
    let ids = match &args.inline {
        Some(sql) => vec![show::add_inline(&mut project, sql)],
        None if args.selection.select.is_empty() => {
            bail!("give the model to preview with -s/--select, or a query with --inline")
        }
        None => {
            let selection = &args.selection;
            let (ids, unmatched) =
                show::selected_models(&project, &selection.select, &selection.exclude)?;
            warn_unmatched(&unmatched);
            if ids.is_empty() {
                bail!("the selection picks no model to preview");
            }
            ids
        }
    };
    let (ctx, lake) = open_lake_session(config).await?;
    let mut out = std::io::stdout().lock();
    for id in ids {
        let preview = show::preview(&ctx, &lake, &project, &id, limit)
            .await
            .with_context(|| format!("previewing {id}"))?;
        print_preview(&mut out, &preview, args.output)?;
    }
    Ok(())
}

fn print_preview(out: &mut dyn std::io::Write, preview: &Preview, output: Output) -> Result<()> {
    match output {
        Output::Text => {
            match preview.node.as_str() {
                show::INLINE => writeln!(out, "Previewing inline node:")?,
                name => writeln!(out, "Previewing node '{name}':")?,
            }
            print_result(out, &preview.schema, &preview.batches, Format::Aligned)
        }
        Output::Json => {
            // Each row as arrow writes it, keeping the columns' order (serde_json's maps sort).
            let mut writer = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(Vec::new());
            for batch in &preview.batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            let rows = String::from_utf8(writer.into_inner())?;
            let rows: Vec<&str> = rows.lines().collect();
            let node = serde_json::to_string(&preview.node)?;
            match rows.is_empty() {
                true => writeln!(out, "{{\n  \"node\": {node},\n  \"show\": []\n}}")?,
                false => writeln!(
                    out,
                    "{{\n  \"node\": {node},\n  \"show\": [\n    {}\n  ]\n}}",
                    rows.join(",\n    ")
                )?,
            }
            Ok(())
        }
    }
}
