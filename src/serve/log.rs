//! One line of log per query (client, user, duration, rows, outcome) and the same facts for
//! the metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use pgwire::error::{ErrorInfo, PgWireError};

use datafusion::physical_plan::ExecutionPlan;

use super::errors::sqlstate;
use super::metrics::{Metrics, Outcome};

/// A query being answered; [`QueryLog::finish`] writes its line once.
#[derive(Debug)]
pub struct QueryLog {
    client: SocketAddr,
    user: String,
    sql: String,
    started: Instant,
    rows: u64,
    metrics: Arc<Metrics>,
    /// The running plan, whose scans report the bytes they read.
    plan: Option<Arc<dyn ExecutionPlan>>,
    done: bool,
}

impl QueryLog {
    pub fn start(client: SocketAddr, user: &str, sql: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            client,
            user: user.to_string(),
            sql: one_line(sql),
            started: Instant::now(),
            rows: 0,
            metrics,
            plan: None,
            done: false,
        }
    }

    pub fn running(&mut self, plan: Arc<dyn ExecutionPlan>) {
        self.plan = Some(plan);
    }

    pub fn row(&mut self) {
        self.rows += 1;
    }

    pub fn finish(&mut self, error: Option<&PgWireError>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.started.elapsed();
        let millis = elapsed.as_secs_f64() * 1000.0;
        let code = error.map(sqlstate);
        let outcome = match code.as_deref() {
            None => Outcome::Ok,
            Some(sqlstate::QUERY_CANCELED) => Outcome::Canceled,
            Some(code) => Outcome::Error { sqlstate: code },
        };
        let scanned = self.plan.as_ref().map_or(0, |p| bytes_scanned(p.as_ref()));
        self.metrics
            .query_finished(elapsed, outcome, self.rows, scanned as u64);
        match code {
            None => tracing::info!(
                target: "strata::serve::query",
                client = %self.client, user = %self.user, ms = format!("{millis:.1}"),
                rows = self.rows, "ok: {}", self.sql
            ),
            Some(code) => tracing::info!(
                target: "strata::serve::query",
                client = %self.client, user = %self.user, ms = format!("{millis:.1}"),
                rows = self.rows, sqlstate = %code, "error: {}", self.sql
            ),
        }
    }
}

impl Drop for QueryLog {
    /// A result abandoned midway (the client left) still gets its line.
    fn drop(&mut self) {
        if !self.done {
            self.finish(Some(&super::interrupt::Reason::ClientGone.error()));
        }
    }
}

fn sqlstate(error: &PgWireError) -> String {
    match error {
        PgWireError::UserError(info) => info.code.clone(),
        other => ErrorInfo::from(PgWireError::ApiError(other.to_string().into())).code,
    }
}

/// Bytes the plan's scans read (the `bytes_scanned` metric of Parquet and Delta scans).
fn bytes_scanned(plan: &dyn ExecutionPlan) -> usize {
    let own = plan
        .metrics()
        .and_then(|m| m.sum_by_name("bytes_scanned"))
        .map_or(0, |v| v.as_usize());
    own + plan
        .children()
        .into_iter()
        .map(|c| bytes_scanned(c.as_ref()))
        .sum::<usize>()
}

/// The statement on one line, shortened: enough to find it again.
fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        let cut: String = flat.chars().take(200).collect();
        format!("{cut}…")
    } else {
        flat
    }
}
