//! Prometheus metrics of the server and their HTTP endpoint: the metrics and their text
//! exposition are `prometheus-client`'s, the endpoint is a `hyper` HTTP/1 server.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE as CONTENT_TYPE_HEADER, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text::{CONTENT_TYPE, encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Upper bounds in seconds of the query latency buckets: Prometheus' defaults, extended to
/// five minutes because warehouse queries run long.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// A request head larger than this is not a scrape (hyper's smallest read buffer).
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: String,
}

/// Metrics of one server, shared by its connections; recording is atomics and, for the
/// latency histogram, one short lock.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    connections_total: Counter,
    connections_refused: Counter,
    queries: Family<OutcomeLabel, Counter>,
    errors_by_class: Family<ClassLabel, Counter>,
    latency: Histogram,
    rows_returned: Counter,
    bytes_scanned: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Registry::default(),
            connections_open: Gauge::default(),
            connections_total: Counter::default(),
            connections_refused: Counter::default(),
            queries: Family::default(),
            errors_by_class: Family::default(),
            latency: Histogram::new(LATENCY_BUCKETS),
            rows_returned: Counter::default(),
            bytes_scanned: Counter::default(),
        };
        // Every outcome is exposed from the start, at zero, so rates work from the first scrape.
        for outcome in ["ok", "error", "canceled"] {
            drop(metrics.queries.get_or_create(&OutcomeLabel { outcome }));
        }
        metrics.registered()
    }
}

/// An accepted connection, counted as open until dropped.
#[derive(Debug)]
pub struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

impl Metrics {
    /// Registers handles on every metric (they share their values with `self`'s).
    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register(
            "strata_connections_open",
            "Client connections open now",
            self.connections_open.clone(),
        );
        registry.register(
            "strata_connections",
            "Client connections accepted",
            self.connections_total.clone(),
        );
        registry.register(
            "strata_connections_refused",
            "Client connections refused before their session started",
            self.connections_refused.clone(),
        );
        registry.register(
            "strata_queries",
            "Queries finished, by outcome",
            self.queries.clone(),
        );
        registry.register(
            "strata_errors",
            "Errors sent to clients, by SQLSTATE class",
            self.errors_by_class.clone(),
        );
        registry.register(
            "strata_query_duration_seconds",
            "Query latency",
            self.latency.clone(),
        );
        registry.register(
            "strata_rows_returned",
            "Rows sent to clients",
            self.rows_returned.clone(),
        );
        registry.register(
            "strata_bytes_scanned",
            "Bytes read by table scans",
            self.bytes_scanned.clone(),
        );
        self
    }

    /// Counts an accepted connection; keep the guard for as long as it is open.
    pub fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections_total.inc();
        self.connections_open.inc();
        OpenConnection(Arc::clone(self))
    }

    /// Counts a connection turned away before its session started (connection limit,
    /// TLS required).
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub fn query_finished(
        &self,
        elapsed: Duration,
        outcome: Outcome<'_>,
        rows: u64,
        bytes_scanned: u64,
    ) {
        let outcome = match outcome {
            Outcome::Ok => "ok",
            Outcome::Error { sqlstate } => {
                self.error(sqlstate);
                "error"
            }
            Outcome::Canceled => {
                self.error("57014");
                "canceled"
            }
        };
        self.queries.get_or_create(&OutcomeLabel { outcome }).inc();
        self.latency.observe(elapsed.as_secs_f64());
        self.rows_returned.inc_by(rows);
        self.bytes_scanned.inc_by(bytes_scanned);
    }

    /// Counts an error sent to a client outside a query (a failed login, say); query errors
    /// are counted by [`Metrics::query_finished`].
    pub fn error(&self, sqlstate: &str) {
        let class = class(sqlstate);
        self.errors_by_class
            .get_or_create(&ClassLabel { class })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
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

async fn answer(stream: TcpStream, metrics: Arc<Metrics>) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(&request, &metrics);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST_HEAD)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!("metrics endpoint: {error}");
    }
}

fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, metrics.render()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try GET /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
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
