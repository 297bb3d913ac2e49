//! `strata serve` and `strata passwd`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::lake::Lake;
use crate::serve;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (default from strata.toml [server] listen, else 127.0.0.1:5433;
    /// port 0 picks a free one)
    #[arg(long)]
    pub listen: Option<String>,
    /// Address of the Prometheus /metrics endpoint (default: [server] metrics_listen, else off)
    #[arg(long)]
    pub metrics_listen: Option<String>,
}

pub async fn serve(config: &Config, args: &ServeArgs) -> Result<()> {
    let mut config = config.clone();
    if let Some(listen) = &args.listen {
        config.server.listen = listen.clone();
    }
    if let Some(metrics) = &args.metrics_listen {
        config.server.metrics_listen = Some(metrics.clone());
    }
    let lake = Lake::open(config.lake.clone())
        .with_context(|| format!("opening the lake at {}", config.lake))?;
    let ready = |at: serve::Listening| {
        // Tests and scripts wait for these lines (and read the port from them).
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", at.postgres);
        if let Some(metrics) = at.metrics {
            let _ = writeln!(out, "metrics on {metrics}");
        }
        let _ = out.flush();
        eprintln!(
            "Strata serves the lake at {} — connect with: psql -h {} -p {} -d {}",
            config.lake,
            at.postgres.ip(),
            at.postgres.port(),
            serve::DATABASE
        );
    };
    serve::run(&config, lake, ready, stop_signal())
        .await
        .context("strata serve")
}

/// SIGTERM or Ctrl-C.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("strata serve: stopping (finishing running queries)");
}

/// Reads a password (one line on stdin) and prints its SCRAM-SHA-256 verifier.
pub fn passwd() -> Result<()> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("reading the password")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("empty password");
    }
    println!("{}", serve::auth::hash_password(password));
    Ok(())
}
