//! Landing from source systems other than folders, each against its real peer on loopback: the
//! machine's PostgreSQL (STRATA_TEST_PG, which `scripts/test` installs and starts) and an HTTP
//! server started here. Failure injection: a PostgreSQL backend terminated mid-extract, HTTP
//! 5xx answers, 4xx answers, bodies cut short and a server that is gone.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{LakeKind, Project, files_under, logged, pg, pg_conn};
use object_store::path::Path;
use strata::lake::Lake;
use strata::meta::IngestLog;
use tokio_postgres::Client;

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A fresh PostgreSQL schema for one test, dropped when it ends.
struct PgSchema {
    name: String,
}

impl PgSchema {
    async fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "strata_src_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        pg().await
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .await
            .unwrap();
        Self { name }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop runs outside the test's runtime (it may be unwinding): use a runtime of its own.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                pg().await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })
        })
        .join();
    }
}

fn pg_sources(schema: &str, tables: &str) -> String {
    pg_source_named("crm", schema, tables)
}

fn pg_source_named(source: &str, schema: &str, tables: &str) -> String {
    format!(
        "
sources:
  - name: {source}
    kind: postgres
    connection: '{}'
    tables:
{}",
        pg_conn(),
        tables.replace("$S", schema)
    )
}

/// The watermark of the last committed file of `table`.
async fn watermark(lake: &Lake, table: &str) -> Option<String> {
    let records = logged(lake, table).await;
    let state: serde_json::Value =
        serde_json::from_str(records.last()?.source_state.as_deref()?).unwrap();
    Some(state["value"].as_str().unwrap().to_string())
}

/// Rows of a query as sorted strings, for comparing PostgreSQL with bronze.
async fn pg_rows(client: &Client, sql: &str) -> Vec<String> {
    let mut rows: Vec<String> = client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    rows.sort();
    rows
}

fn bronze_rows(project: &Project, sql: &str) -> Vec<String> {
    let mut rows: Vec<String> = project
        .query(sql)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    rows.sort();
    rows
}

const ORDERS: &str = "
      - name: orders
        table: $S.orders
        mode: incremental
        cursor: updated_at
        rows_per_file: 250
      - name: orders_snapshot
        query: 'SELECT id, status, amount FROM $S.orders'
";

/// Snapshot and incremental landing of one source table, through inserts, updates and an added
/// column: bronze ends up with every version exactly once and the snapshot with the latest.
async fn snapshot_then_incremental(kind: LakeKind) {
    let schema = PgSchema::new().await;
    let s = &schema.name;
    let client = pg().await;
    // Groups of 100 rows share one updated_at, so files (250 rows) must not split a group.
    client
        .batch_execute(&format!(
            "CREATE TABLE {s}.orders (
                 id int PRIMARY KEY, customer text NOT NULL, amount numeric(12,2),
                 status text, placed date, paid bool, tags int[], meta jsonb,
                 updated_at timestamptz NOT NULL);
             INSERT INTO {s}.orders
             SELECT i, 'c' || (i % 37), (i * 7 % 10000) / 100.0, 'new', DATE '2026-01-01' + i % 30,
                    i % 2 = 0, ARRAY[i, i + 1], jsonb_build_object('n', i),
                    TIMESTAMPTZ '2026-01-01 00:00:00+00' + (i / 100) * INTERVAL '1 second'
             FROM generate_series(1, 1000) AS i;"
        ))
        .await
        .unwrap();
    let project = Project::new(kind, &pg_sources(s, ORDERS));
    let lake = project.lake();

    let out = project.ok(&["land"]);
    assert!(out.contains("0 failed"), "{out}");
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.crm_orders"),
        "1000"
    );
    let first = logged(&lake, "orders").await;
    assert!(first.len() >= 4, "1000 rows in files of 250+: {first:?}");
    // Types are mapped faithfully, not inferred from text.
    let types = project.query(
        "SELECT arrow_typeof(amount), arrow_typeof(updated_at), arrow_typeof(placed), \
         arrow_typeof(paid), arrow_typeof(id), arrow_typeof(tags), arrow_typeof(meta) \
         FROM bronze.crm_orders LIMIT 1",
    );
    assert_eq!(
        types[1],
        [
            "Decimal128(12, 2)",
            "Timestamp(µs, \"UTC\")",
            "Date32",
            "Boolean",
            "Int32",
            "Utf8",
            "Utf8"
        ],
        "{types:?}"
    );
    assert_eq!(
        project.scalar("SELECT sum(amount) FROM bronze.crm_orders"),
        pg_rows(
            &client,
            &format!("SELECT sum(amount)::text FROM {s}.orders")
        )
        .await[0]
    );
    assert_eq!(
        project.scalar("SELECT meta || ' ' || tags FROM bronze.crm_orders WHERE id = 7"),
        "{\"n\": 7} [7,8]"
    );
    assert_eq!(
        watermark(&lake, "orders").await.as_deref(),
        Some("2026-01-01 00:00:10+00")
    );

    // Change 50 rows, insert 20, and add a column: the new rows and versions share one
    // updated_at with each other, and the added column drifts in.
    client
        .batch_execute(&format!(
            "ALTER TABLE {s}.orders ADD COLUMN note text;
             UPDATE {s}.orders SET status = 'shipped', note = 'late',
                    updated_at = TIMESTAMPTZ '2026-02-01 00:00:00+00'
             WHERE id % 20 = 0;
             INSERT INTO {s}.orders (id, customer, amount, status, updated_at, note)
             SELECT i, 'n', 1.25, 'new', TIMESTAMPTZ '2026-02-01 00:00:00+00', 'fresh'
             FROM generate_series(1001, 1020) AS i;"
        ))
        .await
        .unwrap();
    let out = project.ok(&["land"]);
    assert!(out.contains("0 failed"), "{out}");
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.crm_orders"),
        "1070"
    );
    let latest_batch = "(SELECT max(_ingested_at) FROM bronze.crm_orders)";
    assert_eq!(
        bronze_rows(
            &project,
            &format!(
                "SELECT CAST(id AS VARCHAR) || ' ' || status || ' ' || note \
                 FROM bronze.crm_orders WHERE _ingested_at = {latest_batch}"
            )
        ),
        pg_rows(
            &client,
            &format!(
                "SELECT id || ' ' || status || ' ' || note FROM {s}.orders \
                 WHERE updated_at >= '2026-02-01'"
            )
        )
        .await,
        "the second run lands exactly the 70 new versions"
    );
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM (SELECT DISTINCT id, updated_at FROM bronze.crm_orders) AS v"
        ),
        "1070",
        "no version twice"
    );
    // The latest version of each row in bronze is the row in PostgreSQL.
    assert_eq!(
        bronze_rows(
            &project,
            "SELECT CAST(id AS VARCHAR) || ' ' || status || ' ' || CAST(amount AS VARCHAR) \
             FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) AS r \
                   FROM bronze.crm_orders) AS v WHERE r = 1"
        ),
        pg_rows(
            &client,
            &format!("SELECT id || ' ' || status || ' ' || amount FROM {s}.orders")
        )
        .await
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.crm_orders WHERE note IS NULL"),
        "1000",
        "files from before the column was added read it as null"
    );
    // Each run's snapshot is whole.
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM bronze.crm_orders_snapshot WHERE _ingested_at = \
             (SELECT max(_ingested_at) FROM bronze.crm_orders_snapshot)"
        ),
        "1020"
    );

    // Nothing changed: nothing new lands incrementally, the watermark stays.
    let mark = watermark(&lake, "orders").await;
    let before = logged(&lake, "orders").await.len();
    project.ok(&["land", "-s", "crm.orders"]);
    assert_eq!(logged(&lake, "orders").await.len(), before);
    assert_eq!(watermark(&lake, "orders").await, mark);
    assert_eq!(mark.as_deref(), Some("2026-02-01 00:00:00+00"));
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_snapshot_then_incremental_on_local_disk() {
    snapshot_then_incremental(LakeKind::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_snapshot_then_incremental_on_hdfs() {
    snapshot_then_incremental(LakeKind::Hdfs).await;
}

/// A dbt snapshot over a PostgreSQL table landed incrementally, run after each landing: it
/// keeps every version the source showed (closed ones with the time the next one took over),
/// and Delta's time travel reads the history as it stood after any run.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_over_an_incremental_postgres_source_keeps_every_version() {
    let schema = PgSchema::new().await;
    let s = &schema.name;
    let client = pg().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {s}.customers (id int PRIMARY KEY, email text, updated_at timestamptz NOT NULL);
             INSERT INTO {s}.customers VALUES
               (1, 'a@x', '2026-01-01 00:00:00+00'), (2, 'b@x', '2026-01-01 00:00:00+00'),
               (3, 'c@x', '2026-01-01 00:00:00+00');"
        ))
        .await
        .unwrap();
    let tables = "
      - name: customers
        table: $S.customers
        mode: incremental
        cursor: updated_at
";
    let project = Project::new(LakeKind::Local, &pg_sources(s, tables));
    std::fs::create_dir_all(project.path("snapshots")).unwrap();
    std::fs::create_dir_all(project.path("models")).unwrap();
    std::fs::write(
        project.path("models/sources.yml"),
        "sources:\n  - name: crm\n    schema: bronze\n    tables:\n      - name: customers\n",
    )
    .unwrap();
    std::fs::write(
        project.path("dbt_project.yml"),
        "name: crm\nversion: '1'\nconfig-version: 2\nprofile: crm\n",
    )
    .unwrap();
    // Bronze keeps every landed version; the snapshot's query takes each key's latest.
    std::fs::write(
        project.path("snapshots/customer_versions.sql"),
        "{% snapshot customer_versions %}
{{ config(target_schema='snapshots', unique_key='id', strategy='timestamp', updated_at='updated_at') }}
select id, email, updated_at from (
    select *, row_number() over (partition by id order by updated_at desc) as r
    from {{ source('crm', 'customers') }}
) as latest where r = 1
{% endsnapshot %}
",
    )
    .unwrap();
    let changes = [
        format!("UPDATE {s}.customers SET email = 'a2@x', updated_at = '2026-01-02 00:00:00+00' WHERE id = 1"),
        format!(
            "UPDATE {s}.customers SET email = 'a3@x', updated_at = '2026-01-03 00:00:00+00' WHERE id = 1;
             UPDATE {s}.customers SET email = 'b2@x', updated_at = '2026-01-03 00:00:00+00' WHERE id = 2;
             INSERT INTO {s}.customers VALUES (4, 'd@x', '2026-01-03 00:00:00+00')"
        ),
    ];
    for change in [None].into_iter().chain(changes.iter().map(Some)) {
        if let Some(sql) = change {
            client.batch_execute(sql).await.unwrap();
        }
        let out = project.ok(&["land"]);
        assert!(out.contains("0 failed"), "{out}");
        let out = project.ok(&["snapshot"]);
        assert!(out.contains("ERROR=0"), "{out}");
    }
    let history = |version: &str| {
        bronze_rows(
            &project,
            &format!(
                "SELECT CAST(id AS VARCHAR) || ' ' || email || ' ' || \
                 CAST(dbt_valid_from AS VARCHAR) || ' ' || coalesce(CAST(dbt_valid_to AS VARCHAR), '-') \
                 FROM snapshots.customer_versions{version}"
            ),
        )
    };
    let day = |d: u32| format!("2026-01-0{d}T00:00:00Z");
    let row = |id: u32, email: &str, from: u32, to: Option<u32>| {
        format!("{id} {email} {} {}", day(from), to.map_or("-".into(), day))
    };
    let mut expected = vec![
        row(1, "a@x", 1, Some(2)),
        row(1, "a2@x", 2, Some(3)),
        row(1, "a3@x", 3, None),
        row(2, "b@x", 1, Some(3)),
        row(2, "b2@x", 3, None),
        row(3, "c@x", 1, None),
        row(4, "d@x", 3, None),
    ];
    expected.sort();
    assert_eq!(history(""), expected);
    // After the second run: one change of customer 1.
    let mut second = vec![
        row(1, "a@x", 1, Some(2)),
        row(1, "a2@x", 2, None),
        row(2, "b@x", 1, None),
        row(3, "c@x", 1, None),
    ];
    second.sort();
    assert_eq!(history(" VERSION AS OF 1"), second);
}

/// A backend terminated mid-extract: the run fails, bronze holds only whole committed files
/// whose rows are exactly those up to the committed watermark, no scratch file is left, and
/// the next run lands the rest, every row exactly once.
async fn survives_a_dropped_connection(kind: LakeKind) {
    let schema = PgSchema::new().await;
    let s = &schema.name;
    let client = pg().await;
    let rows: usize = 400_000;
    client
        .batch_execute(&format!(
            "CREATE TABLE {s}.events (id bigint PRIMARY KEY, payload text, at timestamptz);
             INSERT INTO {s}.events
             SELECT i, repeat(md5(i::text), 3),
                    TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL '1 millisecond'
             FROM generate_series(1, {rows}) AS i;"
        ))
        .await
        .unwrap();
    let tables = "
      - name: events
        table: $S.events
        mode: incremental
        cursor: id
        rows_per_file: 60000
";
    // The source is named after the schema so that concurrent tests' backends differ by name.
    let project = Project::new(kind, &pg_source_named(s, s, tables));
    let bronze = format!("bronze.{s}_events");
    let lake = project.lake();
    let mut child = project
        .command(&["land"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the extract get going (its first files committed), then cut its connection.
    let started = Instant::now();
    loop {
        if !logged(&lake, "events").await.is_empty() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("land finished ({status}) before it could be interrupted: use more rows");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no file committed in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&format!("strata-land {s}.events")],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "one landing backend to terminate");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a dropped connection fails the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The server's FATAL message or, when the socket closes first, the closed connection.
    assert!(
        stderr.contains("events")
            && (stderr.contains("terminating connection") || stderr.contains("connection closed")),
        "{stderr}"
    );

    let committed = logged(&lake, "events").await;
    assert!(
        !committed.is_empty() && committed.len() < rows.div_ceil(60_000),
        "the cut came midway: {} files",
        committed.len()
    );
    let mark: i64 = watermark(&lake, "events").await.unwrap().parse().unwrap();
    let landed = project.scalar(&format!("SELECT count(*) FROM {bronze}"));
    assert_eq!(
        landed,
        mark.to_string(),
        "bronze holds exactly the rows up to the watermark"
    );
    assert_eq!(
        project.scalar(&format!("SELECT max(id) FROM {bronze}")),
        mark.to_string()
    );
    let logged_paths: BTreeSet<String> = committed.iter().map(|r| r.bronze_path.clone()).collect();
    assert_eq!(
        files_under(&lake, "bronze").await,
        logged_paths,
        "no unlogged file in bronze"
    );
    assert!(
        files_under(&lake, "_strata/tmp").await.is_empty(),
        "the half-written file was discarded"
    );

    let out = project.ok(&["land"]);
    assert!(out.contains("0 failed"), "{out}");
    assert_eq!(
        project.scalar(&format!("SELECT count(*) FROM {bronze}")),
        rows.to_string()
    );
    assert_eq!(
        project.scalar(&format!("SELECT count(DISTINCT id) FROM {bronze}")),
        rows.to_string(),
        "every row exactly once"
    );
    assert_eq!(watermark(&lake, "events").await, Some(rows.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_survives_a_dropped_connection_on_local_disk() {
    survives_a_dropped_connection(LakeKind::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_survives_a_dropped_connection_on_hdfs() {
    survives_a_dropped_connection(LakeKind::Hdfs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_failures_are_clear_and_keep_passwords_out() {
    let schema = PgSchema::new().await;
    let s = &schema.name;
    pg().await
        .batch_execute(&format!("CREATE TABLE {s}.t (id int, at timestamptz)"))
        .await
        .unwrap();

    // An unreachable server: the source, table and address are named, the password is not.
    let unreachable = "
sources:
  - name: crm
    kind: postgres
    connection: 'host=127.0.0.1 port=1 dbname=test user=u password=sekrit-pw connect_timeout=5'
    tables:
      - name: t
        table: public.t
";
    let project = Project::new(LakeKind::Local, unreachable);
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("crm") && all.contains("127.0.0.1:1/test"),
        "{all}"
    );
    assert!(!all.contains("sekrit-pw"), "the password leaked: {all}");

    // The connection string from the environment; a variable that is not set is named.
    let from_env = format!(
        "
sources:
  - name: crm
    kind: postgres
    connection_env: STRATA_TEST_SOURCE_PG
    tables:
      - name: t
        table: {s}.t
        mode: incremental
        cursor: missing_column
"
    );
    let project = Project::new(LakeKind::Local, &from_env);
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STRATA_TEST_SOURCE_PG"), "{stderr}");
    let out = project
        .command(&["land"])
        .env("STRATA_TEST_SOURCE_PG", pg_conn())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("crm") && stderr.contains("\"missing_column\""),
        "{stderr}"
    );

    // A declaration that cannot work is refused before anything runs, naming the file.
    let bad = pg_sources(
        s,
        "      - name: t\n        table: $S.t\n        mode: incremental\n",
    );
    let out = Project::new(LakeKind::Local, &bad).run(&["land"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sources.yml") && stderr.contains("cursor"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A real HTTP server (Python's http.server) on a loopback port, serving `root`. Behaviour
/// per path comes from `root/../rules.json`, re-read on every request: `{"status": 500,
/// "times": 2}` answers 500 to the first two GETs; `{"cut": true}` promises the whole body and
/// closes the connection halfway. Every request is logged to `root/../requests.log` as
/// `GET <path> <status> <If-None-Match or ->`. Files get a content-hash ETag and their
/// Last-Modified, and directories a plain HTML listing.
const SERVER: &str = r#"
import hashlib, http.server, json, os, sys
root, control = sys.argv[1], sys.argv[2]
counts = {}
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def log_message(self, *a):
        pass
    def note(self, status):
        with open(os.path.join(control, "requests.log"), "a") as log:
            log.write(f"GET {self.path} {status} {self.headers.get('If-None-Match', '-')}\n")
    def do_GET(self):
        try:
            with open(os.path.join(control, "rules.json")) as f:
                rules = json.load(f)
        except FileNotFoundError:
            rules = {}
        rule = rules.get(self.path, {})
        counts[self.path] = counts.get(self.path, 0) + 1
        if "status" in rule and counts[self.path] <= rule.get("times", 10**9):
            self.note(rule["status"])
            self.send_response(rule["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            self.note(200)
            return super().do_GET()
        if not os.path.isfile(path):
            self.note(404)
            self.send_error(404)
            return
        body = open(path, "rb").read()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.note(304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.note(200)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(path))))
        self.end_headers()
        if rule.get("cut"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct HttpServer {
    child: Child,
    port: u16,
    /// Served files live under `<dir>/www`; rules and the request log next to it.
    dir: std::path::PathBuf,
}

impl HttpServer {
    fn start(dir: &std::path::Path) -> Self {
        std::fs::create_dir_all(dir.join("www")).unwrap();
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .arg(dir.join("www"))
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test HTTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        Self {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn put(&self, path: &str, body: &[u8]) {
        let file = self.dir.join("www").join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, body).unwrap();
    }

    fn rules(&self, rules: serde_json::Value) {
        std::fs::write(self.dir.join("rules.json"), rules.to_string()).unwrap();
    }

    /// Requests served so far, and forgets them.
    fn requests(&self) -> Vec<String> {
        let log = self.dir.join("requests.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn csv_rows(prefix: &str, n: usize) -> Vec<u8> {
    let mut body = String::from("id,name\n");
    for i in 0..n {
        body.push_str(&format!("{i},{prefix}{i}\n"));
    }
    body.into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_listings_land_new_files_once() {
    let work = tempfile::tempdir().unwrap();
    let server = HttpServer::start(work.path());
    server.put("data/orders_1.csv", &csv_rows("a", 3));
    server.put("data/orders_2.csv", &csv_rows("b", 4));
    server.put("data/notes.txt", b"not a table");
    server.put(
        "index.json",
        br#"{"files": [{"url": "data/orders_1.csv"}, {"url": "data/orders_2.csv"}, "data/notes.txt"]}"#,
    );
    let sources = format!(
        "
sources:
  - name: byjson
    kind: http
    url: {}
    listing: json
    tables:
      - name: orders
        pattern: 'data/orders_*.csv'
        format: csv
  - name: byhtml
    kind: http
    url: {}
    listing: html
    tables:
      - name: orders
        pattern: 'orders_*.csv'
        format: csv
  - name: one
    kind: http
    url: {}
    tables:
      - name: orders
        pattern: '*.csv'
        format: csv
",
        server.url("index.json"),
        server.url("data/"),
        server.url("data/orders_1.csv")
    );
    let project = Project::new(LakeKind::Local, &sources);
    let lake = project.lake();
    let out = project.ok(&["land"]);
    assert!(
        out.contains("5 landed, 0 already landed, 0 failed"),
        "{out}"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.byjson_orders"),
        "7"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.byhtml_orders"),
        "7"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.one_orders"),
        "3"
    );
    let record = logged(&lake, "orders")
        .await
        .into_iter()
        .find(|r| r.source == "one")
        .unwrap();
    assert_eq!(record.source_path, server.url("data/orders_1.csv"));
    let state: serde_json::Value =
        serde_json::from_str(record.source_state.as_deref().unwrap()).unwrap();
    assert!(
        state["etag"].is_string() && state["last_modified"].is_string(),
        "{state}"
    );
    server.requests();

    // Unchanged files are asked for conditionally and not downloaded again.
    let out = project.ok(&["land"]);
    assert!(
        out.contains("0 landed, 5 already landed, 0 failed"),
        "{out}"
    );
    let requests = server.requests();
    let files: Vec<&String> = requests.iter().filter(|r| r.contains(".csv")).collect();
    assert_eq!(files.len(), 5, "{requests:?}");
    assert!(files.iter().all(|r| r.contains(" 304 \"")), "{requests:?}");

    // A changed file lands again; the others stay put.
    server.put("data/orders_2.csv", &csv_rows("b", 6));
    let out = project.ok(&["land"]);
    assert!(
        out.contains("2 landed, 3 already landed, 0 failed"),
        "{out}"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.byjson_orders"),
        "13"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_retries_server_errors_and_names_client_errors() {
    let work = tempfile::tempdir().unwrap();
    let server = HttpServer::start(work.path());
    server.put("flaky.csv", &csv_rows("f", 2));
    server.put("index.json", br#"["flaky.csv", "gone.csv"]"#);
    server.rules(serde_json::json!({"/flaky.csv": {"status": 503, "times": 2}}));
    let sources = format!(
        "
sources:
  - name: web
    kind: http
    url: {}
    listing: json
    tables:
      - name: files
        pattern: '*.csv'
        format: csv
",
        server.url("index.json")
    );
    let project = Project::new(LakeKind::Local, &sources);
    let out = project.run(&["land"]);
    assert!(!out.status.success(), "a 404 fails the run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&server.url("gone.csv")) && stderr.contains("404"),
        "{stderr}"
    );
    assert!(
        stdout.contains("1 landed"),
        "the flaky file landed: {stdout}"
    );
    let flaky: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /flaky.csv"))
        .collect();
    assert_eq!(
        flaky
            .iter()
            .map(|r| r.split(' ').nth(2).unwrap())
            .collect::<Vec<_>>(),
        ["503", "503", "200"],
        "two 503s retried, then the file"
    );
    assert_eq!(project.scalar("SELECT count(*) FROM bronze.web_files"), "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_cut_transfers_land_nothing_until_the_server_is_back() {
    let work = tempfile::tempdir().unwrap();
    let mut server = HttpServer::start(work.path());
    let body = csv_rows("x", 50_000);
    server.put("big.csv", &body);
    server.rules(serde_json::json!({"/big.csv": {"cut": true}}));
    let sources = |url: &str| {
        format!(
            "
sources:
  - name: web
    kind: http
    url: {url}
    tables:
      - name: big
        pattern: '*.csv'
        format: csv
"
        )
    };
    let project = Project::new(LakeKind::Local, &sources(&server.url("big.csv")));
    let lake = project.lake();

    // Every attempt is cut halfway: the run fails after its retries and lands nothing.
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&server.url("big.csv")) && stderr.contains("attempts"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 4, "each attempt made");
    assert!(logged(&lake, "big").await.is_empty());
    assert!(files_under(&lake, "bronze").await.is_empty());
    assert!(files_under(&lake, "_strata/tmp").await.is_empty());

    // The server gone altogether: a clear failure naming the URL, still nothing landed.
    let url = server.url("big.csv");
    server.stop();
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&url), "{stderr}");
    assert!(files_under(&lake, "bronze").await.is_empty());

    // Back and whole: the file lands once, byte for byte.
    let server = HttpServer::start(work.path());
    server.rules(serde_json::json!({}));
    std::fs::write(
        project.path("catalog/sources.yml"),
        sources(&server.url("big.csv")),
    )
    .unwrap();
    let out = project.ok(&["land"]);
    assert!(out.contains("1 landed"), "{out}");
    let records = logged(&lake, "big").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].sha256, common::sha256(&body));
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.web_big"),
        "50000"
    );
}

/// A lake whose ingest log predates `source_state` keeps working: its rows read with no state
/// and the first commit adds the column.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_ingest_log_gains_the_source_state_column() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;

    let schema = PgSchema::new().await;
    let s = &schema.name;
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE {s}.t AS SELECT i AS id FROM generate_series(1, 5) AS i"
        ))
        .await
        .unwrap();
    let project = Project::new(
        LakeKind::Local,
        &pg_sources(
            s,
            "      - name: t\n        table: $S.t\n        mode: incremental\n        cursor: id\n",
        ),
    );
    let lake = project.lake();
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let old = Arc::new(Schema::new(vec![
        text("batch_id"),
        text("source"),
        text("table_name"),
        text("format"),
        text("source_path"),
        text("bronze_path"),
        Field::new("bytes", DataType::UInt64, false),
        text("sha256"),
        Field::new(
            "landed_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    let one = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let row = RecordBatch::try_new(
        old,
        vec![
            one("b0"),
            one("shop"),
            one("orders"),
            one("csv"),
            one("/drop/orders.csv"),
            one("bronze/shop/orders/ingest_date=2026-01-01/b0-0.csv"),
            Arc::new(UInt64Array::from(vec![1])),
            one("00"),
            Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")),
        ],
    )
    .unwrap();
    strata::lake::delta::append(
        &lake,
        &Path::from("_strata/ingest_log"),
        "ingest_log",
        vec![row],
    )
    .await
    .unwrap();

    project.ok(&["land"]);
    let records = IngestLog::new().records(&lake).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].source_state, None);
    assert_eq!(
        records[1].source_state.as_deref(),
        Some(r#"{"cursor":"id","value":"5"}"#)
    );
    assert_eq!(project.scalar("SELECT count(*) FROM bronze.crm_t"), "5");
}
