use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use strata::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| {
                // Delta stores microseconds: delta-rs warns on every write of DataFusion's
                // nanosecond timestamps, which says nothing a user can act on.
                "warn,strata::serve=info,deltalake_core::operations::merge=error,\
                 deltalake_core::kernel::schema::cast=error"
                    .into()
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
