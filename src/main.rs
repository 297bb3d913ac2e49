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
        // With `STRATA_LOG=strata=debug`, each phase of a query (planning, table lookups,
        // physical planning, execution) logs its time when it closes.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated as anyhow's `{:#}` prints them, leaving out a
/// cause whose text the message already holds: DataFusion's wrappers (`External error: …`)
/// repeat their source's text in their own.
fn chain_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}
