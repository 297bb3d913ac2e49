//! Landing events from a NATS JetStream stream, against real servers on loopback: the machine's
//! (STRATA_TEST_NATS, which `scripts/test` installs and starts) and private ones started here.
//! Failure injection: a run that stops between its ingest-log commit and its acknowledgement,
//! a `strata land` killed mid-drain, and the server killed mid-drain and restarted on its store.
//! Every time, each published event ends up in bronze exactly once.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use chrono::Utc;
use common::{LakeKind, Project};
use strata::lake::Lake;
use strata::land::stream::nats::NatsBroker;
use strata::land::stream::{BatchLimits, Broker, Delivery, StreamSource, Subscription};
use strata::land::{LandError, Landing, Source, SourcesFile, TableDecl};
use strata::meta::IngestLog;

/// The acknowledgement wait the tests' consumers use: redeliveries come back this fast.
const ACK_WAIT: Duration = Duration::from_millis(1000);

/// The machine's NATS server. Never skips: these tests fail without it.
fn nats_url() -> String {
    std::env::var("STRATA_TEST_NATS")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into())
}

/// Names unique to one test: a stream and the subject it captures.
struct Names {
    stream: String,
    subject: String,
}

impl Names {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_micros()
        );
        Self {
            stream: format!("STRATA_TEST_{tag}"),
            subject: format!("strata.test{tag}.events"),
        }
    }
}

async fn jetstream_at(url: &str, auth: Option<(&str, &str)>) -> jetstream::Context {
    let mut options = async_nats::ConnectOptions::new();
    if let Some((user, password)) = auth {
        options = options.user_and_password(user.into(), password.into());
    }
    let client = options
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("NATS at {url} is unreachable ({e}): run scripts/test"));
    jetstream::new(client)
}

/// Creates the test's stream (file storage) on the server at `url`.
async fn create_stream(js: &jetstream::Context, names: &Names) {
    js.create_stream(stream::Config {
        name: names.stream.clone(),
        subjects: vec![names.subject.clone()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
}

/// Publishes events `ids` as JSON objects, waiting for the server to store each.
async fn publish(js: &jetstream::Context, names: &Names, ids: std::ops::Range<u64>) {
    let mut acks = Vec::new();
    for id in ids {
        let payload = format!(r#"{{"id":{id},"kind":"click","page":"/p/{}"}}"#, id % 17);
        acks.push(
            js.publish(names.subject.clone(), payload.into())
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }
}

fn sources(url: &str, names: &Names, extra: &str) -> String {
    format!(
        "
sources:
  - name: clicks
    kind: nats
    url: {url}
    stream: {stream}
    consumer: land
    ack_wait_ms: {ack}
{extra}    tables:
      - name: events
        subject: {subject}
        format: ndjson
        max_rows: 100
        max_wait_ms: 300
",
        stream = names.stream,
        subject = names.subject,
        ack = ACK_WAIT.as_millis(),
    )
}

/// Rows and distinct event ids in bronze.
fn bronze_counts(project: &Project) -> (u64, u64) {
    let rows = project.query("SELECT count(*), count(DISTINCT id) FROM bronze.clicks_events");
    (rows[1][0].parse().unwrap(), rows[1][1].parse().unwrap())
}

/// Ingest-log rows of the stream table.
async fn logged_files(lake: &Lake) -> usize {
    IngestLog::new()
        .records(lake)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.table_name == "events")
        .count()
}

/// The events the table's consumer has not had acknowledged: (undelivered, unacknowledged).
async fn consumer_pending(js: &jetstream::Context, names: &Names) -> (u64, usize) {
    let stream = js.get_stream(&names.stream).await.unwrap();
    let info = stream.consumer_info("land_events").await.unwrap();
    (info.num_pending, info.num_ack_pending)
}

/// The numbers in `strata land`'s line for the table: offered, landed, already landed.
fn land_line(out: &str) -> (usize, usize, usize) {
    let line = out
        .lines()
        .find(|l| l.contains("clicks.events"))
        .unwrap_or_else(|| panic!("no clicks.events line in:\n{out}"));
    let numbers: Vec<usize> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

/// A fresh stream on the machine's NATS holding the events `ids`, and a project landing it.
struct Fed {
    url: String,
    names: Names,
    js: jetstream::Context,
    project: Project,
}

async fn fed_stream(ids: std::ops::Range<u64>) -> Fed {
    let url = nats_url();
    let names = Names::new();
    let js = jetstream_at(&url, None).await;
    create_stream(&js, &names).await;
    publish(&js, &names, ids).await;
    let project = Project::new(LakeKind::Local, &sources(&url, &names, ""));
    Fed {
        url,
        names,
        js,
        project,
    }
}

async fn delete_stream(js: &jetstream::Context, names: &Names) {
    let _ = js.delete_stream(&names.stream).await;
}

#[tokio::test]
async fn lands_each_event_once_and_then_only_new_ones() {
    let Fed {
        url,
        names,
        js,
        project,
    } = fed_stream(0..250).await;
    let lake = project.lake();

    let out = project.ok(&["land"]);
    assert_eq!(land_line(&out), (250, 250, 0), "{out}");
    assert_eq!(bronze_counts(&project), (250, 250));
    // Micro-batches of at most 100 events: three files.
    assert_eq!(logged_files(&lake).await, 3);
    let record = IngestLog::new().records(&lake).await.unwrap().remove(0);
    assert!(record.bronze_path.ends_with(".ndjson"), "{record:?}");
    assert_eq!(
        record.source_path,
        format!("{url}/{}/{}", names.stream, names.subject)
    );

    publish(&js, &names, 250..370).await;
    let out = project.ok(&["land"]);
    assert_eq!(land_line(&out), (120, 120, 0), "{out}");
    assert_eq!(bronze_counts(&project), (370, 370));

    let out = project.ok(&["land"]);
    assert_eq!(land_line(&out), (0, 0, 0), "{out}");
    assert_eq!(consumer_pending(&js, &names).await, (0, 0));
    delete_stream(&js, &names).await;
}

#[tokio::test]
async fn stream_tables_are_checked_when_declared() {
    let names = Names::new();
    let url = nats_url();
    for (from, to, why) in [
        ("format: ndjson", "format: csv", "format: ndjson"),
        (
            "        subject:",
            "        pattern: '*.x'\n        subject:",
            "file sources",
        ),
        (
            "max_rows: 100",
            "max_rows: 0",
            "`max_rows` must be positive",
        ),
        ("consumer: land", "consumer: a.b", "consumer"),
        ("url: nats://", "url: nats://u:pw@", "credentials_env"),
    ] {
        let yaml = sources(&url, &names, "").replace(from, to);
        let err = SourcesFile::parse(&yaml, Path::new("s.yml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{to} → {err}");
        assert!(!err.contains("pw"), "{err}");
    }
}

/// Wraps the real NATS broker and fails every acknowledgement: a run that stops right after
/// its ingest-log commit, before the server hears that the events landed.
struct FailingAcks(NatsBroker);

struct NoAcks(Box<dyn Subscription>);

#[async_trait]
impl Broker for FailingAcks {
    fn location(&self, table: &TableDecl) -> String {
        self.0.location(table)
    }

    async fn subscribe(&self, table: &TableDecl) -> Result<Box<dyn Subscription>, LandError> {
        Ok(Box::new(NoAcks(self.0.subscribe(table).await?)))
    }
}

#[async_trait]
impl Subscription for NoAcks {
    fn epoch(&self) -> &str {
        self.0.epoch()
    }

    fn backlog(&self) -> u64 {
        self.0.backlog()
    }

    async fn fetch(&mut self, limits: &BatchLimits) -> Result<Vec<Delivery>, LandError> {
        self.0.fetch(limits).await
    }

    async fn ack_fetched(&mut self) -> Result<(), LandError> {
        Err(LandError::Stream {
            source_name: "clicks".into(),
            table: "events".into(),
            message: "injected: stopped before acknowledging".into(),
        })
    }
}

#[tokio::test]
async fn a_run_stopped_between_commit_and_ack_lands_no_duplicates() {
    let Fed {
        url,
        names,
        js,
        project,
    } = fed_stream(0..250).await;
    let lake = project.lake();

    let declaration = SourcesFile::parse(&sources(&url, &names, ""), Path::new("s.yml")).unwrap();
    let decl = &declaration.sources[0];
    let log = IngestLog::new();
    let history = log.records(&lake).await.unwrap();
    let landing = Landing {
        lake: &lake,
        log: &log,
        source: decl,
        batch_id: "20260101T000000000Z",
        now: Utc::now(),
        history: &history,
        concurrency: 1,
        show_progress: false,
    };
    let source = StreamSource::new(Box::new(FailingAcks(NatsBroker::new(decl))));
    let outcome = source.land(&decl.tables[0], &landing).await.unwrap();
    assert_eq!(outcome.report.landed, 100, "{outcome:?}");
    assert_eq!(outcome.failures.len(), 1, "{outcome:?}");
    assert_eq!(bronze_counts(&project), (100, 100));

    // The first 100 come back once their acknowledgement wait is over: recognised, not landed.
    tokio::time::sleep(ACK_WAIT * 2).await;
    let (mut offered, mut skipped) = (0, 0);
    for _ in 0..2 {
        let out = project.ok(&["land"]);
        let (o, _, s) = land_line(&out);
        offered += o;
        skipped += s;
        tokio::time::sleep(ACK_WAIT * 2).await;
    }
    assert_eq!(bronze_counts(&project), (250, 250));
    assert_eq!((offered, skipped), (250, 100));
    assert_eq!(consumer_pending(&js, &names).await, (0, 0));
    delete_stream(&js, &names).await;
}

/// Polls until `lake` logs at least one file of the stream table.
async fn wait_for_first_commit(lake: &Lake, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while logged_files(lake).await == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "strata land ended before its first commit"
        );
        assert!(Instant::now() < deadline, "no commit within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lands until bronze holds `expected` events, waiting out redeliveries between runs, and
/// insists that it never holds more or any twice.
async fn land_until(project: &Project, expected: u64, env: &[(&str, &str)]) {
    for _ in 0..5 {
        let mut command = project.command(&["land"]);
        command.envs(env.iter().copied());
        let out = command.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (rows, distinct) = bronze_counts(project);
        assert_eq!(rows, distinct, "an event landed twice");
        assert!(rows <= expected);
        if rows == expected {
            return;
        }
        tokio::time::sleep(ACK_WAIT * 2).await;
    }
    panic!(
        "bronze never reached {expected} events: {:?}",
        bronze_counts(project)
    );
}

#[tokio::test]
async fn a_killed_land_resumes_without_losing_or_repeating_events() {
    let Fed {
        names, js, project, ..
    } = fed_stream(0..5000).await;
    let lake = project.lake();

    let mut child = project
        .command(&["land"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_first_commit(&lake, &mut child).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (landed, _) = bronze_counts(&project);
    assert!(landed < 5000, "the run finished before it was killed");

    tokio::time::sleep(ACK_WAIT * 2).await;
    land_until(&project, 5000, &[]).await;
    delete_stream(&js, &names).await;
}

/// A nats-server of this test's own, with JetStream storing under `store`.
struct PrivateServer {
    child: Child,
    port: u16,
    store: PathBuf,
}

const USER: &str = "strata";
const PASSWORD: &str = "s3cret-pw";

impl PrivateServer {
    fn start(store: &Path, port: Option<u16>) -> Self {
        let port = port.unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nats-server is not installed: run scripts/test");
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .args(["--user", USER, "--pass", PASSWORD])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            store: store.to_path_buf(),
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(mut self) -> Self {
        self.kill();
        Self::start(&self.store.clone(), Some(self.port))
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn the_server_stopping_mid_run_loses_and_repeats_nothing() {
    let store = tempfile::tempdir().unwrap();
    let server = PrivateServer::start(store.path(), None);
    let names = Names::new();
    let js = jetstream_at(&server.url(), Some((USER, PASSWORD))).await;
    create_stream(&js, &names).await;
    publish(&js, &names, 0..3000).await;
    let creds = format!("{USER}:{PASSWORD}");
    let env = [("STRATA_TEST_NATS_CREDS", creds.as_str())];
    let project = Project::new(
        LakeKind::Local,
        &sources(
            &server.url(),
            &names,
            "    credentials_env: STRATA_TEST_NATS_CREDS\n",
        ),
    );
    let lake = project.lake();

    // Credentials come from the environment only, and no message shows them.
    let out = project.run(&["land"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("STRATA_TEST_NATS_CREDS"), "{stderr}");
    let wrong = format!("{USER}:not-{PASSWORD}");
    let out = project
        .command(&["land"])
        .env("STRATA_TEST_NATS_CREDS", &wrong)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("authorization"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");

    let mut child = project
        .command(&["land"])
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_first_commit(&lake, &mut child).await;
    let mut server = server;
    server.kill();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("clicks.events"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains(PASSWORD));
    let (landed, distinct) = bronze_counts(&project);
    assert!(landed < 3000 && landed == distinct, "{landed} {distinct}");

    let _server = server.restart();
    tokio::time::sleep(ACK_WAIT * 2).await;
    land_until(&project, 3000, &env).await;
}

#[tokio::test]
async fn generated_clickstream_published_to_a_stream_lands_like_the_files() {
    let url = nats_url();
    let names = Names::new();
    let project = Project::new(LakeKind::Local, &sources(&url, &names, ""));
    let target = format!("{url}/{}/{}", names.stream, names.subject);
    let generate = [
        "generate",
        "--out",
        "drop",
        "--scale",
        "200",
        "--formats",
        "ndjson",
        "--publish-events",
        &target,
    ];
    let out = project.ok(&generate);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.path("drop/manifest.json")).unwrap())
            .unwrap();
    let events = &manifest["totals"]["events"];
    let records = events["records"].as_u64().unwrap();
    assert!(
        out.contains(&format!("Published {records} events")),
        "{out}"
    );
    // The same output again within the duplicate window: the server keeps one copy.
    let out = project.ok(&generate);
    assert!(
        out.contains(&format!("Published 0 events to {target} ({records} more")),
        "{out}"
    );

    let out = project.ok(&["land"]);
    assert_eq!(land_line(&out).1 as u64, records, "{out}");
    // Bronze reads the stream's files as it reads the generated ones: malformed lines rejected.
    let valid = events["valid_records"].as_u64().unwrap();
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.clicks_events"),
        valid.to_string()
    );
    let js = jetstream_at(&url, None).await;
    delete_stream(&js, &names).await;
}
