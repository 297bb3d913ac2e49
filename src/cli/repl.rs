//! `strata repl` (and `strata` alone in a terminal): the interactive shell.

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::lake::Lake;
use crate::repl::{self, Backend, Embedded, Format, Remote};
use crate::session;

#[derive(Debug, Default, clap::Args)]
pub struct ReplArgs {
    /// Run against a server instead of the embedded engine: a running `strata serve` or any
    /// PostgreSQL, e.g. postgres://user@host:5433/strata (no TLS)
    #[arg(long, value_name = "URL")]
    pub connect: Option<String>,
    /// How results are printed (`\pset format` changes it in the shell)
    #[arg(long, value_enum, default_value_t = Format::Aligned)]
    pub format: Format,
}

/// Opens the backend and runs the shell. With piped stdin, fails when any statement did.
pub async fn repl(config: &dyn Fn() -> Result<Config>, args: &ReplArgs) -> Result<()> {
    let (backend, dir): (Arc<dyn Backend>, _) = match &args.connect {
        Some(url) => (
            Arc::new(Remote::connect(url).await?),
            std::env::current_dir().context("the current directory")?,
        ),
        None => {
            let config = config()?;
            let lake = Lake::open(config.lake.clone())?;
            let ctx = session::context(&config, &lake)
                .await
                .with_context(|| format!("opening the lake at {}", config.lake))?;
            (
                Arc::new(Embedded::new(ctx, lake)),
                config.project_dir.clone(),
            )
        }
    };
    let options = repl::Options {
        format: args.format,
        dir,
    };
    let runtime = tokio::runtime::Handle::current();
    let all_ok = tokio::task::block_in_place(|| repl::run(backend, options, runtime))?;
    if !all_ok {
        bail!("some statements or commands failed (see above)");
    }
    Ok(())
}

/// `strata` with no command: the shell in a terminal, the usage otherwise.
pub async fn open_default(config: &dyn Fn() -> Result<Config>) -> Result<()> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        <super::Cli as clap::CommandFactory>::command().print_help()?;
        bail!("no command given (the REPL opens without one only in a terminal)");
    }
    repl(config, &ReplArgs::default()).await
}
