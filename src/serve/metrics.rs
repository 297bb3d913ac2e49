//! Prometheus metrics of the server and their HTTP endpoint.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Upper bounds in seconds of the query latency buckets: Prometheus' defaults, extended to
/// five minutes because warehouse queries run long.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Prometheus' text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// A request head larger than this is not a scrape.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// A client slower than this to send its request and take the answer is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (typically out of file descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How a query ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Ok,
    Error {
        sqlstate: &'a str,
    },
    /// Canceled by the client or by `statement_timeout` (SQLSTATE 57014).
    Canceled,
}

/// Counters of one server, shared by its connections; recording is a few relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    connections_refused: AtomicU64,
    queries_ok: AtomicU64,
    queries_error: AtomicU64,
    queries_canceled: AtomicU64,
    /// Errors are rare, so a lock is cheap enough and keeps only the classes seen.
    errors_by_class: Mutex<BTreeMap<String, u64>>,
    latency: Histogram,
    rows_returned: AtomicU64,
    bytes_scanned: AtomicU64,
}

/// Counts per bucket (not cumulative; the last is above every bound) and the sum.
#[derive(Debug, Default)]
struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// An accepted connection, counted as open until dropped.
#[derive(Debug)]
pub struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    /// Counts an accepted connection; keep the guard for as long as it is open.
    pub fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections_total.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// Counts a connection turned away before its session started (connection limit,
    /// TLS required).
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Relaxed);
    }

    pub fn query_finished(
        &self,
        elapsed: Duration,
        outcome: Outcome<'_>,
        rows: u64,
        bytes_scanned: u64,
    ) {
        match outcome {
            Outcome::Ok => self.queries_ok.fetch_add(1, Relaxed),
            Outcome::Error { sqlstate } => {
                self.error(sqlstate);
                self.queries_error.fetch_add(1, Relaxed)
            }
            Outcome::Canceled => {
                self.error("57014");
                self.queries_canceled.fetch_add(1, Relaxed)
            }
        };
        self.latency.observe(elapsed);
        self.rows_returned.fetch_add(rows, Relaxed);
        self.bytes_scanned.fetch_add(bytes_scanned, Relaxed);
    }

    /// Counts an error sent to a client outside a query (a failed login, say); query errors
    /// are counted by [`Metrics::query_finished`].
    pub fn error(&self, sqlstate: &str) {
        *self
            .errors_by_class
            .lock()
            .entry(class(sqlstate))
            .or_default() += 1;
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let value = |counter: &AtomicU64| counter.load(Relaxed);
        header(
            &mut out,
            "strata_connections_open",
            "gauge",
            "Client connections open now.",
        );
        sample(
            &mut out,
            "strata_connections_open",
            "",
            value(&self.connections_open),
        );
        header(
            &mut out,
            "strata_connections_total",
            "counter",
            "Client connections accepted.",
        );
        sample(
            &mut out,
            "strata_connections_total",
            "",
            value(&self.connections_total),
        );
        header(
            &mut out,
            "strata_connections_refused_total",
            "counter",
            "Client connections refused before their session started.",
        );
        sample(
            &mut out,
            "strata_connections_refused_total",
            "",
            value(&self.connections_refused),
        );
        header(
            &mut out,
            "strata_queries_total",
            "counter",
            "Queries finished, by outcome.",
        );
        for (outcome, counter) in [
            ("ok", &self.queries_ok),
            ("error", &self.queries_error),
            ("canceled", &self.queries_canceled),
        ] {
            let labels = format!("{{outcome=\"{outcome}\"}}");
            sample(&mut out, "strata_queries_total", &labels, value(counter));
        }
        header(
            &mut out,
            "strata_errors_total",
            "counter",
            "Errors sent to clients, by SQLSTATE class.",
        );
        for (class, count) in self.errors_by_class.lock().iter() {
            let labels = format!("{{class=\"{class}\"}}");
            sample(&mut out, "strata_errors_total", &labels, *count);
        }
        self.latency.render(&mut out);
        header(
            &mut out,
            "strata_rows_returned_total",
            "counter",
            "Rows sent to clients.",
        );
        sample(
            &mut out,
            "strata_rows_returned_total",
            "",
            value(&self.rows_returned),
        );
        header(
            &mut out,
            "strata_bytes_scanned_total",
            "counter",
            "Bytes read by table scans.",
        );
        sample(
            &mut out,
            "strata_bytes_scanned_total",
            "",
            value(&self.bytes_scanned),
        );
        out
    }
}

/// The two-character class of a SQLSTATE; anything malformed counts as `XX` (internal
/// error), which also keeps label values free of characters needing escapes.
fn class(sqlstate: &str) -> String {
    match sqlstate.as_bytes() {
        [a, b, ..] if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() => {
            sqlstate[..2].to_ascii_uppercase()
        }
        _ => "XX".to_string(),
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.partition_point(|bound| *bound < seconds);
        self.counts[bucket].fetch_add(1, Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    fn render(&self, out: &mut String) {
        let name = "strata_query_duration_seconds";
        header(out, name, "histogram", "Query latency.");
        let mut cumulative = 0;
        let bounds = LATENCY_BUCKETS.iter().map(f64::to_string);
        for (bound, count) in bounds.chain(["+Inf".to_string()]).zip(&self.counts) {
            cumulative += count.load(Relaxed);
            let labels = format!("{{le=\"{bound}\"}}");
            sample(out, &format!("{name}_bucket"), &labels, cumulative);
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        sample(out, &format!("{name}_sum"), "", sum);
        sample(out, &format!("{name}_count"), "", cumulative);
    }
}

/// Answers `GET /metrics` on `listener` until `shutdown` completes, one request per
/// connection; scrapes still running then are dropped.
pub async fn serve_http(listener: TcpListener, metrics: Arc<Metrics>, shutdown: impl Future) {
    tokio::pin!(shutdown);
    let mut scrapes = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            Some(_) = scrapes.join_next() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let metrics = Arc::clone(&metrics);
                    scrapes.spawn(tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, metrics)));
                }
                Err(error) => {
                    tracing::warn!("metrics endpoint: cannot accept a connection: {error}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}

async fn answer(mut stream: TcpStream, metrics: Arc<Metrics>) {
    let response = match read_request_head(&mut stream).await {
        Ok(Some(head)) => respond(&head, &metrics),
        Ok(None) => response("400 Bad Request", "text/plain", "bad request\n"),
        Err(_) => return,
    };
    if stream.write_all(&response).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

/// Reads up to the blank line ending the request head; `None` when the head is too long
/// or the client stops before it ends.
async fn read_request_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || head.len() + read > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(Some(head))
}

fn respond(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let request_line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|b| *b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|b| *b == b'?').next().unwrap_or_default());
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => response("200 OK", CONTENT_TYPE, &metrics.render()),
        _ => response(
            "404 Not Found",
            "text/plain",
            "not found: try GET /metrics\n",
        ),
    }
}

fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use tokio::process::Command;

    use super::*;

    /// Fetches `path` with curl; returns (status code, content type, body).
    async fn curl(addr: std::net::SocketAddr, path: &str) -> (String, String, String) {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(["--write-out", "\n%{http_code} %{content_type}"])
            .arg(format!("http://{addr}{path}"))
            .output()
            .await
            .expect("curl runs");
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        let (code, content_type) = status.split_once(' ').unwrap();
        (code.to_string(), content_type.to_string(), body.to_string())
    }

    #[tokio::test]
    async fn scraped_over_http() {
        let metrics = Arc::new(Metrics::default());
        let first = metrics.connection_opened();
        let second = metrics.connection_opened();
        drop(first);
        metrics.connection_refused();
        metrics.query_finished(Duration::from_millis(3), Outcome::Ok, 10, 2048);
        metrics.query_finished(Duration::from_millis(700), Outcome::Ok, 5, 1024);
        let error = Outcome::Error { sqlstate: "42P01" };
        metrics.query_finished(Duration::from_secs(2), error, 0, 0);
        metrics.query_finished(Duration::from_secs(400), Outcome::Canceled, 0, 100);
        metrics.error("28P01");

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_http(listener, Arc::clone(&metrics), stopped));

        let (code, content_type, body) = curl(addr, "/metrics").await;
        assert_eq!(code, "200");
        assert_eq!(content_type, CONTENT_TYPE);
        for line in [
            "# TYPE strata_connections_open gauge",
            "strata_connections_open 1",
            "strata_connections_total 2",
            "strata_connections_refused_total 1",
            "strata_queries_total{outcome=\"ok\"} 2",
            "strata_queries_total{outcome=\"error\"} 1",
            "strata_queries_total{outcome=\"canceled\"} 1",
            "strata_errors_total{class=\"28\"} 1",
            "strata_errors_total{class=\"42\"} 1",
            "strata_errors_total{class=\"57\"} 1",
            "# TYPE strata_query_duration_seconds histogram",
            "strata_query_duration_seconds_bucket{le=\"0.005\"} 1",
            "strata_query_duration_seconds_bucket{le=\"0.5\"} 1",
            "strata_query_duration_seconds_bucket{le=\"1\"} 2",
            "strata_query_duration_seconds_bucket{le=\"2.5\"} 3",
            "strata_query_duration_seconds_bucket{le=\"300\"} 3",
            "strata_query_duration_seconds_bucket{le=\"+Inf\"} 4",
            "strata_query_duration_seconds_sum 402.703",
            "strata_query_duration_seconds_count 4",
            "strata_rows_returned_total 15",
            "strata_bytes_scanned_total 3172",
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "missing {line:?} in\n{body}"
            );
        }

        drop(second);
        let (_, _, body) = curl(addr, "/metrics?fresh=1").await;
        assert!(
            body.lines().any(|l| l == "strata_connections_open 0"),
            "{body}"
        );
        let (code, _, _) = curl(addr, "/").await;
        assert_eq!(code, "404");

        stop.send(()).unwrap();
        server.await.unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );
    }

    #[tokio::test]
    async fn oversized_requests_are_refused() {
        let metrics = Arc::new(Metrics::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_http(listener, metrics, std::future::pending::<()>()));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // One byte over the limit and no more, so the server reads it all and closes
        // without a reset that could swallow its answer.
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_REQUEST_HEAD + 1, b'a');
        stream.write_all(&long).await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
        server.abort();
    }

    #[test]
    fn malformed_sqlstates_count_as_internal_errors() {
        assert_eq!(class("22012"), "22");
        assert_eq!(class("hv000"), "HV");
        assert_eq!(class("\"}"), "XX");
        assert_eq!(class(""), "XX");
    }
}
