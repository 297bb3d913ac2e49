//! `strata serve` driven by real PostgreSQL clients: psql (backslash commands, COPY, verbose
//! errors), tokio-postgres (simple and extended protocol, binary results and parameters for
//! every type, portal row limits, cancel, statement_timeout), psycopg + SQLAlchemy + pandas,
//! pgjdbc's DatabaseMetaData and node-postgres (programs in `tests/serve_clients/`), SCRAM
//! auth, TLS, the read-only warehouse, time travel, and a server that survives cancels,
//! timeouts, vanishing clients, garbage bytes, oversize messages and too many connections, and
//! drains on SIGTERM.
//!
//! The example shop project is generated, landed and built once per run into a lake under
//! `$TMPDIR/strata-serve-tests-<pid>/`, and one shared `strata serve` on 127.0.0.1:0 answers
//! the client tests; tests of auth, TLS, limits and shutdown start servers of their own.
//!
//! The `client_*` tests are server-agnostic: with
//! `STRATA_TEST_SERVE_TARGET="host=127.0.0.1 port=5432 dbname=strata_serve user=$USER"` they
//! run against that PostgreSQL instead, after copying the gold rows they read into it (schema
//! `gold` of that database is replaced), which checks the client programs themselves:
//!
//! ```sh
//! STRATA_TEST_SERVE_TARGET="host=127.0.0.1 port=5432 dbname=strata_serve user=$USER" \
//!   cargo test --test serve client_
//! ```
//!
//! Every client comes from `scripts/test`; a missing one is a failure, never a skip.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::json;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use common::{copy_example_project, python, repo};

// ---------------------------------------------------------------------------------------------
// The shop lake, built once

/// Where this run's lakes and server projects live (removed by the next run once this
/// process is gone).
fn work_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("strata-serve-tests-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let root = tmp.join(format!("strata-serve-tests-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        root
    })
}

/// Runs the real `strata` binary in `dir`, with settings from that directory's strata.toml.
fn strata(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--project-dir")
        .arg(dir)
        .args(args)
        .current_dir(dir)
        .env_remove("STRATA_LAKE")
        .env_remove("STRATA_PROJECT_DIR")
        .output()
        .unwrap()
}

fn strata_ok(dir: &Path, args: &[&str]) -> String {
    let out = strata(dir, args);
    assert!(
        out.status.success(),
        "strata {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// CSV rows of a query run by `strata sql` on the lake (header first): the expectations come
/// from the lake directly, never from the server under test.
fn lake_query(dir: &Path, sql: &str) -> Vec<Vec<String>> {
    common::csv_rows(&strata_ok(dir, &["sql", "--format", "csv", "-c", sql]))
}

/// A project directory holding the example dbt project and a strata.toml of `toml`.
fn project_dir(name: &str, toml: &str) -> PathBuf {
    let dir = work_root().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    copy_example_project(&dir);
    std::fs::write(dir.join("strata.toml"), toml).unwrap();
    dir
}

/// The first order (by id) of gold.fct_orders.
#[derive(Debug, Clone)]
struct FirstOrder {
    order_id: i64,
    customer_id: Option<i64>,
    status: String,
    amount: String,
    order_date: String,
}

/// The built shop lake and what the clients must find in it.
struct Shop {
    dir: PathBuf,
    lake: PathBuf,
    orders: i64,
    amount_sum: String,
    status_count: i64,
    first: FirstOrder,
    gold_tables: Vec<String>,
    /// Days in gold.dim_date at Delta version 0 (the full build) and now (rebuilt narrower).
    dim_date_v0: i64,
    dim_date_now: i64,
    /// The run id of the first build and an instant between the two dim_date versions.
    first_run: String,
    between_versions: String,
}

fn shop() -> &'static Shop {
    static SHOP: OnceLock<Shop> = OnceLock::new();
    SHOP.get_or_init(|| {
        let lake = work_root().join("lake");
        let dir = project_dir(
            "shop",
            &format!(
                "[lake]\nroot = {:?}\n\n[land]\nsources = \"catalog/sources.yml\"\n",
                lake.display().to_string()
            ),
        );
        strata_ok(
            &dir,
            &[
                "generate",
                "--out",
                "drop",
                "--scale",
                "2000",
                "--batches",
                "2",
            ],
        );
        strata_ok(&dir, &["land"]);
        strata_ok(&dir, &["build"]);
        let first_run = lake_query(
            &dir,
            "SELECT run_id FROM _strata.runs WHERE node = 'model.shop.dim_date'",
        )[1][0]
            .clone();
        let dim_date_v0 = lake_query(&dir, "SELECT count(*) FROM gold.dim_date")[1][0]
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let between_versions = chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S%.3f+00")
            .to_string();
        std::thread::sleep(Duration::from_millis(1100));
        strata_ok(
            &dir,
            &[
                "run",
                "-s",
                "dim_date",
                "--vars",
                "{dim_date_start: \"2026-01-01\", dim_date_end: \"2026-01-31\"}",
            ],
        );

        let scalar = |sql: &str| lake_query(&dir, sql)[1][0].clone();
        let first = &lake_query(
            &dir,
            "SELECT order_id, customer_id, status, amount, order_date FROM gold.fct_orders \
             ORDER BY order_id LIMIT 1",
        )[1];
        let first = FirstOrder {
            order_id: first[0].parse().unwrap(),
            customer_id: first[1].parse().ok(),
            status: first[2].clone(),
            amount: first[3].clone(),
            order_date: first[4].clone(),
        };
        let gold_tables = lake_query(
            &dir,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'gold' \
             ORDER BY 1",
        )[1..]
            .iter()
            .map(|r| r[0].clone())
            .collect();
        Shop {
            orders: scalar("SELECT count(*) FROM gold.fct_orders")
                .parse()
                .unwrap(),
            amount_sum: scalar("SELECT sum(amount) FROM gold.fct_orders"),
            status_count: scalar(&format!(
                "SELECT count(*) FROM gold.fct_orders WHERE status = '{}'",
                first.status
            ))
            .parse()
            .unwrap(),
            dim_date_v0,
            dim_date_now: scalar("SELECT count(*) FROM gold.dim_date")
                .parse()
                .unwrap(),
            first,
            gold_tables,
            first_run,
            between_versions,
            dir,
            lake,
        }
    })
}

/// The server-side TOML for a server over the shop lake.
fn server_toml(server: &str) -> String {
    format!(
        "[lake]\nroot = {:?}\n\n[server]\n{server}",
        shop().lake.display().to_string()
    )
}

// ---------------------------------------------------------------------------------------------
// Servers

/// One `strata serve` child. A small shell wrapper holds it: it prints the server's pid, and
/// sends it SIGTERM when this process closes the wrapper's stdin, which also happens when the
/// test binary exits, so no server outlives the tests.
struct Server {
    host: String,
    port: u16,
    pid: u32,
    metrics: Option<String>,
    log: PathBuf,
    wrapper: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
    lines: Mutex<Receiver<String>>,
}

const WRAPPER: &str = r#"exec 3<&0
"$0" "$@" &
pid=$!
echo "pid $pid"
( read -r _ <&3; kill -TERM "$pid" ) >/dev/null 2>&1 &
wait "$pid"
echo "exited $?"
"#;

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let log = dir.join(format!("serve-{}.log", uuid::Uuid::new_v4().simple()));
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg(env!("CARGO_BIN_EXE_strata"))
            .arg("--project-dir")
            .arg(dir)
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env_remove("STRATA_LAKE")
            .env_remove("STRATA_PROJECT_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = wrapper.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            host: String::new(),
            port: 0,
            pid: 0,
            metrics: None,
            log,
            stdin: Mutex::new(wrapper.stdin.take()),
            wrapper: Mutex::new(wrapper),
            lines: Mutex::new(rx),
        };
        let want_metrics = args.contains(&"--metrics-listen");
        let deadline = Instant::now() + Duration::from_secs(120);
        while server.port == 0 || (want_metrics && server.metrics.is_none()) {
            let line = match server.next_line(deadline) {
                Some(line) => line,
                None => panic!(
                    "strata serve {args:?} did not print `listening on <addr>`:\n{}",
                    server.log_tail()
                ),
            };
            if let Some(pid) = line.strip_prefix("pid ") {
                server.pid = pid.trim().parse().unwrap();
            } else if let Some(addr) = line.strip_prefix("listening on ") {
                let (host, port) = addr.trim().rsplit_once(':').unwrap();
                server.host = host.trim_matches(['[', ']']).to_string();
                server.port = port.parse().unwrap();
            } else if let Some(addr) = line.strip_prefix("metrics on ") {
                server.metrics = Some(addr.trim().to_string());
            } else if line.starts_with("exited ") {
                panic!("strata serve {args:?} {line}:\n{}", server.log_tail());
            }
        }
        server
    }

    fn next_line(&self, deadline: Instant) -> Option<String> {
        let rx = self.lines.lock().unwrap();
        let left = deadline.saturating_duration_since(Instant::now());
        rx.recv_timeout(left).ok()
    }

    /// Waits for the server to exit and returns its exit status.
    fn wait_exit(&self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while let Some(line) = self.next_line(deadline) {
            if let Some(code) = line.strip_prefix("exited ") {
                return code.trim().parse().ok();
            }
        }
        None
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// User + system CPU time the server has used, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    fn target(&self) -> Target {
        Target {
            host: self.host.clone(),
            port: self.port,
            dbname: "strata".to_string(),
            user: "strata".to_string(),
            strata: true,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stdin.lock().unwrap().take(); // the wrapper sends SIGTERM
        let mut wrapper = self.wrapper.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = wrapper.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
        let _ = wrapper.kill();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The shared server over the shop lake (trust on loopback, default settings).
fn shared_server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(&shop().dir, &["--listen", "127.0.0.1:0"]))
}

// ---------------------------------------------------------------------------------------------
// Targets: the shared Strata server, or (for the client tests) a PostgreSQL given by
// STRATA_TEST_SERVE_TARGET

#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    dbname: String,
    user: String,
    /// Strata-only expectations apply (schemas bronze/silver/_strata, version string).
    strata: bool,
}

impl Target {
    fn conninfo(&self) -> String {
        format!(
            "host={} port={} dbname={} user={} connect_timeout=10 application_name=strata-tests",
            self.host, self.port, self.dbname, self.user
        )
    }

    fn schemas(&self) -> Vec<&'static str> {
        if self.strata {
            vec!["bronze", "silver", "gold", "_strata"]
        } else {
            vec!["gold"]
        }
    }

    fn gold_tables(&self) -> Vec<String> {
        if self.strata {
            shop().gold_tables.clone()
        } else {
            vec!["dim_date".into(), "fct_orders".into()]
        }
    }
}

/// The columns of gold.fct_orders every client looks for (those copied to a PostgreSQL
/// target).
const ORDER_COLUMNS: [&str; 8] = [
    "order_id",
    "customer_id",
    "order_date",
    "order_ts",
    "status",
    "channel",
    "currency",
    "amount",
];
const FCT_ORDERS_DESCRIPTION: &str =
    "One row per clean order with lines, payments and shipment rolled up.";
const CUSTOMER_ID_DESCRIPTION: &str = "NULL for the few orders the feed sent without a customer.";

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| match std::env::var("STRATA_TEST_SERVE_TARGET") {
        Ok(spec) if !spec.is_empty() => {
            let target = Target::postgres(&spec);
            load_into_postgres(&target);
            target
        }
        _ => shared_server().target(),
    })
}

impl Target {
    /// A PostgreSQL given by a `host=… port=… dbname=… user=…` connection string.
    fn postgres(spec: &str) -> Target {
        let field = |key: &str| {
            spec.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{spec} lacks {key}="))
                .to_string()
        };
        Target {
            host: field("host"),
            port: field("port").parse().unwrap(),
            dbname: field("dbname"),
            user: field("user"),
            strata: false,
        }
    }
}

/// Copies the gold rows the clients read into a real PostgreSQL (schema gold replaced), with
/// the schema.yml descriptions as comments.
fn load_into_postgres(target: &Target) {
    let shop = shop();
    let csv_path = work_root().join("fct_orders.csv");
    let csv = strata_ok(
        &shop.dir,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            &format!("SELECT {} FROM gold.fct_orders", ORDER_COLUMNS.join(", ")),
        ],
    );
    std::fs::write(&csv_path, csv).unwrap();
    let dates_path = work_root().join("dim_date.csv");
    std::fs::write(
        &dates_path,
        strata_ok(
            &shop.dir,
            &[
                "sql",
                "--format",
                "csv",
                "-c",
                "SELECT date_key FROM gold.dim_date",
            ],
        ),
    )
    .unwrap();
    let script = format!(
        "DROP SCHEMA IF EXISTS gold CASCADE;
CREATE SCHEMA gold;
CREATE TABLE gold.fct_orders (order_id bigint, customer_id bigint, order_date date,
  order_ts timestamp, status text, channel text, currency text, amount numeric(12, 2));
CREATE TABLE gold.dim_date (date_key date);
COMMENT ON TABLE gold.fct_orders IS '{FCT_ORDERS_DESCRIPTION}';
COMMENT ON COLUMN gold.fct_orders.customer_id IS '{CUSTOMER_ID_DESCRIPTION}';
\\copy gold.fct_orders FROM '{}' CSV HEADER
\\copy gold.dim_date FROM '{}' CSV HEADER
",
        csv_path.display(),
        dates_path.display()
    );
    let out = psql(target, &["-q"], &script);
    assert!(out.status.success(), "loading {target:?}: {}", out.stderr);
}

async fn connect(target: &Target) -> Client {
    connect_with(&target.conninfo()).await
}

async fn connect_with(conninfo: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting with {conninfo}: {e:?}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The SQLSTATE a statement fails with ("no error" when it succeeds).
async fn sqlstate(client: &Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(_) => "no error".to_string(),
        Err(e) => error_code(&e),
    }
}

fn error_code(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.code().code().to_string(),
        None => format!("not a server error: {e:?}"),
    }
}

/// The rows of a simple query, as text.
async fn simple_rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    answer(client, sql)
        .await
        .unwrap_or_else(|code| panic!("{sql}: SQLSTATE {code}"))
}

async fn simple_scalar(client: &Client, sql: &str) -> String {
    let rows = simple_rows(client, sql).await;
    assert_eq!(rows.len(), 1, "one row from {sql}: {rows:?}");
    rows[0][0].clone().unwrap_or_else(|| "NULL".into())
}

// ---------------------------------------------------------------------------------------------
// External clients

/// A client program; a missing one fails the test with the way to install it.
fn client_command(program: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found || Path::new(program).exists(),
        "{program} is missing: run scripts/test (it installs the PostgreSQL clients)"
    );
    Command::new(program)
}

struct Text {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// psql against a target with `stdin` as its script (no psqlrc, no pager).
fn psql(target: &Target, args: &[&str], stdin: &str) -> Text {
    psql_conninfo(&target.conninfo(), args, stdin, &[])
}

fn psql_conninfo(conninfo: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Text {
    let mut child = client_command("psql")
        .arg("-X")
        .arg("-d")
        .arg(conninfo)
        .args(args)
        .env("PAGER", "")
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = wait_output(child, Duration::from_secs(120), "psql");
    Text {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Waits for a child at most `timeout`, killing it past that.
fn wait_output(child: Child, timeout: Duration, what: &str) -> Output {
    let pid = child.id();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let what = what.to_string();
    std::thread::spawn(move || {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{what} ran past {timeout:?}: killing it");
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    out
}

fn expect_json(target: &Target) -> String {
    let shop = shop();
    json!({
        "orders": shop.orders,
        "amount_sum": shop.amount_sum,
        "status_count": shop.status_count,
        "first_order": {
            "order_id": shop.first.order_id,
            "customer_id": shop.first.customer_id,
            "status": shop.first.status,
            "amount": shop.first.amount,
            "order_date": shop.first.order_date,
        },
        "schemas": target.schemas(),
        "gold_tables": target.gold_tables(),
        "columns": ORDER_COLUMNS,
    })
    .to_string()
}

/// Runs a client program and insists every check passed, showing the failed ones.
fn run_client(name: &str, mut cmd: Command, timeout: Duration) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/test)"));
    let out = wait_output(child, timeout, name);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("ok ")).collect();
    assert!(
        out.status.success(),
        "{name} against {:?}:\n{}\n{}",
        target(),
        failed.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASSED: 0 failed"), "{name}: {stdout}");
}

fn clients_dir() -> PathBuf {
    repo().join("tests/serve_clients")
}

fn run_python(sections: &[&str]) {
    let t = target();
    let mut cmd = Command::new(python());
    cmd.arg(clients_dir().join("client.py"))
        .args([&t.host, &t.port.to_string(), &t.dbname, &t.user])
        .args(sections)
        .env("STRATA_EXPECT", expect_json(t));
    run_client("client.py", cmd, Duration::from_secs(300));
}

// ---------------------------------------------------------------------------------------------
// Binary values: tokio-postgres asks for binary results, so every value arrives in
// PostgreSQL's binary format; these decode and encode it by hand (no chrono/uuid features).

/// Any value, as the raw binary bytes the server sent.
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes(b[..2].try_into().unwrap())
}
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[..4].try_into().unwrap())
}
fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[..8].try_into().unwrap())
}

fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// A binary value as text (PostgreSQL's text form where it is unambiguous).
fn decode(ty: &Type, b: &[u8]) -> String {
    match *ty {
        Type::BOOL => (b[0] != 0).to_string(),
        Type::INT2 => be_i16(b).to_string(),
        Type::INT4 => be_i32(b).to_string(),
        Type::INT8 => be_i64(b).to_string(),
        Type::FLOAT4 => f32::from_be_bytes(b[..4].try_into().unwrap()).to_string(),
        Type::FLOAT8 => f64::from_be_bytes(b[..8].try_into().unwrap()).to_string(),
        Type::NUMERIC => numeric_text(b),
        Type::DATE => (pg_epoch().date() + chrono::Duration::days(be_i32(b) as i64)).to_string(),
        Type::TIME => (NaiveTime::MIN + chrono::Duration::microseconds(be_i64(b)))
            .format("%H:%M:%S%.6f")
            .to_string(),
        Type::TIMESTAMP => (pg_epoch() + chrono::Duration::microseconds(be_i64(b)))
            .format("%Y-%m-%d %H:%M:%S%.6f")
            .to_string(),
        Type::TIMESTAMPTZ => (pg_epoch() + chrono::Duration::microseconds(be_i64(b)))
            .format("%Y-%m-%d %H:%M:%S%.6f+00")
            .to_string(),
        Type::INTERVAL => format!(
            "{} months {} days {} us",
            be_i32(&b[12..]),
            be_i32(&b[8..]),
            be_i64(b)
        ),
        Type::UUID => uuid::Uuid::from_slice(b).unwrap().to_string(),
        Type::JSONB => String::from_utf8(b[1..].to_vec()).unwrap(),
        Type::BYTEA => format!("\\x{}", hex::encode(b)),
        _ if matches!(ty.kind(), tokio_postgres::types::Kind::Array(_)) => array_text(b),
        _ => String::from_utf8(b.to_vec()).unwrap(), // text, varchar, name, json, ...
    }
}

/// A one-dimensional array in binary form as `{a,b,c}`.
fn array_text(b: &[u8]) -> String {
    let dims = be_i32(b);
    if dims == 0 {
        return "{}".into();
    }
    assert_eq!(dims, 1, "one-dimensional arrays only");
    let elem = Type::from_oid(be_i32(&b[8..]) as u32).expect("known element type");
    let len = be_i32(&b[12..]) as usize;
    let mut at = 20;
    let mut items = Vec::new();
    for _ in 0..len {
        let n = be_i32(&b[at..]);
        at += 4;
        if n < 0 {
            items.push("NULL".to_string());
        } else {
            items.push(decode(&elem, &b[at..at + n as usize]));
            at += n as usize;
        }
    }
    format!("{{{}}}", items.join(","))
}

/// NUMERIC's binary form (base-10000 digits, weight, sign, display scale) as decimal text.
fn numeric_text(b: &[u8]) -> String {
    let ndigits = be_i16(b) as usize;
    let weight = be_i16(&b[2..]) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let dscale = u16::from_be_bytes([b[6], b[7]]) as usize;
    if sign == 0xC000 {
        return "NaN".into();
    }
    let digit = |i: i32| -> i16 {
        if i >= 0 && (i as usize) < ndigits {
            be_i16(&b[8 + 2 * i as usize..])
        } else {
            0
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                s += &digit(i).to_string();
            } else {
                s += &format!("{:04}", digit(i));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac += &format!("{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s = format!("{s}.{frac}");
    }
    s
}

/// Decimal text as NUMERIC's binary form.
fn numeric_bytes(text: &str) -> Vec<u8> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let int = int.trim_start_matches('0');
    let int = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac_padded = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let mut groups: Vec<i16> = int
        .as_bytes()
        .chunks(4)
        .chain(frac_padded.as_bytes().chunks(4))
        .map(|c| std::str::from_utf8(c).unwrap().parse().unwrap())
        .collect();
    let mut weight = (int.len() / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let mut out = Vec::new();
    out.extend((groups.len() as i16).to_be_bytes());
    out.extend(weight.to_be_bytes());
    out.extend((if negative { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend((frac.len() as u16).to_be_bytes());
    for g in groups {
        out.extend(g.to_be_bytes());
    }
    out
}

/// A parameter sent in binary as the type the server described for it; any other type is a
/// client-side error naming it.
#[derive(Debug)]
enum Param {
    Date(&'static str),
    Timestamp(&'static str),
    Numeric(&'static str),
    Uuid(&'static str),
    /// months, days, microseconds
    Interval(i32, i32, i64),
    Json(&'static str),
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Date(d) => {
                let days =
                    (NaiveDate::parse_from_str(d, "%Y-%m-%d")? - pg_epoch().date()).num_days();
                out.extend_from_slice(&(days as i32).to_be_bytes());
            }
            Param::Timestamp(ts) => {
                let t = NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S%.f")?;
                let micros = (t - pg_epoch()).num_microseconds().unwrap();
                out.extend_from_slice(&micros.to_be_bytes());
            }
            Param::Numeric(n) => out.extend_from_slice(&numeric_bytes(n)),
            Param::Uuid(u) => out.extend_from_slice(uuid::Uuid::parse_str(u)?.as_bytes()),
            Param::Interval(months, days, micros) => {
                out.extend_from_slice(&micros.to_be_bytes());
                out.extend_from_slice(&days.to_be_bytes());
                out.extend_from_slice(&months.to_be_bytes());
            }
            Param::Json(j) => {
                if *ty == Type::JSONB {
                    out.extend_from_slice(&[1]);
                }
                out.extend_from_slice(j.as_bytes());
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::DATE,
            Type::TIMESTAMP,
            Type::NUMERIC,
            Type::UUID,
            Type::INTERVAL,
            Type::JSON,
            Type::JSONB,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}

/// Every type both ways: (column, SQL expression, accepted result types, the binary value
/// decoded to text, PostgreSQL's text form through the simple protocol).
type Typed = (
    &'static str,
    &'static str,
    &'static [Type],
    &'static str,
    &'static str,
);

const TYPED: &[Typed] = &[
    ("i2", "CAST(1 AS int2)", &[Type::INT2], "1", "1"),
    ("i4", "CAST(2 AS int4)", &[Type::INT4], "2", "2"),
    (
        "i8",
        "CAST(3000000000 AS int8)",
        &[Type::INT8],
        "3000000000",
        "3000000000",
    ),
    ("f4", "CAST(1.5 AS float4)", &[Type::FLOAT4], "1.5", "1.5"),
    (
        "f8",
        "CAST(2.25 AS float8)",
        &[Type::FLOAT8],
        "2.25",
        "2.25",
    ),
    (
        "num",
        "CAST('12345678901234567890.123456789' AS numeric(38, 9))",
        &[Type::NUMERIC],
        "12345678901234567890.123456789",
        "12345678901234567890.123456789",
    ),
    (
        "small_num",
        "CAST('-0.000123' AS numeric(10, 6))",
        &[Type::NUMERIC],
        "-0.000123",
        "-0.000123",
    ),
    (
        "t",
        "CAST('hello' AS text)",
        &[Type::TEXT, Type::VARCHAR],
        "hello",
        "hello",
    ),
    (
        "vc",
        "CAST('vc' AS varchar)",
        &[Type::VARCHAR, Type::TEXT],
        "vc",
        "vc",
    ),
    ("b", "true", &[Type::BOOL], "true", "t"),
    (
        "d",
        "DATE '2026-01-02'",
        &[Type::DATE],
        "2026-01-02",
        "2026-01-02",
    ),
    (
        "tm",
        "TIME '13:14:15.5'",
        &[Type::TIME],
        "13:14:15.500000",
        "13:14:15.5",
    ),
    (
        "ts",
        "TIMESTAMP '2026-01-02 03:04:05.123456'",
        &[Type::TIMESTAMP],
        "2026-01-02 03:04:05.123456",
        "2026-01-02 03:04:05.123456",
    ),
    (
        "tstz",
        "CAST('2026-01-02 03:04:05+00' AS timestamptz)",
        &[Type::TIMESTAMPTZ],
        "2026-01-02 03:04:05.000000+00",
        "2026-01-02 03:04:05+00",
    ),
    (
        "iv",
        "INTERVAL '1 day 2 hours'",
        &[Type::INTERVAL],
        "0 months 1 days 7200000000 us",
        "1 day 02:00:00",
    ),
    (
        "bin",
        "decode('0102ff', 'hex')",
        &[Type::BYTEA],
        "\\x0102ff",
        "\\x0102ff",
    ),
    (
        "bin_literal",
        "CAST('\\x0102ff' AS bytea)",
        &[Type::BYTEA],
        "\\x0102ff",
        "\\x0102ff",
    ),
    (
        "js",
        "CAST('{\"a\": [1, 2]}' AS json)",
        &[Type::JSON, Type::JSONB],
        "{\"a\": [1, 2]}",
        "{\"a\": [1, 2]}",
    ),
    (
        "u",
        "CAST('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AS uuid)",
        &[Type::UUID],
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    ),
    (
        "arr",
        "ARRAY[1, 2, 3]",
        &[Type::INT4_ARRAY, Type::INT8_ARRAY],
        "{1,2,3}",
        "{1,2,3}",
    ),
    (
        "tarr",
        "ARRAY['x', 'y']",
        &[Type::TEXT_ARRAY, Type::VARCHAR_ARRAY],
        "{x,y}",
        "{x,y}",
    ),
    ("n", "CAST(NULL AS int4)", &[Type::INT4], "NULL", "NULL"),
];

/// A query that runs for minutes unless stopped (a triple self cross join of the orders).
const LONG_QUERY: &str = "SELECT sum(a.order_id + b.order_id + c.order_id) FROM gold.fct_orders a \
     CROSS JOIN gold.fct_orders b CROSS JOIN gold.fct_orders c";

// ---------------------------------------------------------------------------------------------
// Client tests: any PostgreSQL-protocol server holding the shop rows

#[test]
fn client_psql_backslash_commands() {
    let t = target();
    let out = psql(
        t,
        &[],
        "\\dn\n\\dt gold.*\n\\d gold.fct_orders\n\\l\n\\df\n\\conninfo\n",
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.is_empty(), "psql complained: {}", out.stderr);
    let s = &out.stdout;
    assert!(s.contains("List of schemas"), "\\dn: {s}");
    for schema in t.schemas() {
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with(&format!("{schema} "))),
            "\\dn lists {schema}: {s}"
        );
    }
    for table in t.gold_tables() {
        assert!(
            s.lines()
                .any(|l| l.contains(" gold ") && l.contains(&format!(" {table} "))),
            "\\dt gold.* lists {table}: {s}"
        );
    }
    assert!(s.contains("Table \"gold.fct_orders\""), "\\d: {s}");
    for (column, ty) in [
        ("order_id", "bigint"),
        ("status", ""),
        ("amount", "numeric"),
        ("order_date", "date"),
        ("order_ts", "timestamp"),
    ] {
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with(&format!("{column} ")) && l.contains(ty)),
            "\\d gold.fct_orders shows {column} {ty}: {s}"
        );
    }
    assert!(s.contains("List of databases"), "\\l: {s}");
    assert!(
        s.lines()
            .any(|l| l.trim_start().starts_with(&format!("{} ", t.dbname))),
        "\\l lists {}: {s}",
        t.dbname
    );
    assert!(s.contains("List of functions"), "\\df: {s}");
    assert!(
        s.contains(&format!("You are connected to database \"{}\"", t.dbname)),
        "\\conninfo: {s}"
    );
}

#[test]
fn client_psql_copy_out_and_verbose_errors() {
    let t = target();
    let shop = shop();
    let file = work_root().join(format!("copy-{}.csv", std::process::id()));
    let script = format!(
        "COPY (SELECT order_id, status, amount FROM gold.fct_orders ORDER BY order_id) TO STDOUT WITH (FORMAT csv, HEADER);
\\copy (SELECT order_id, amount FROM gold.fct_orders ORDER BY order_id) TO '{}' WITH (FORMAT csv)
\\set VERBOSITY verbose
SELECT * FROM gold.no_such_table;
SELECT no_such_column FROM gold.fct_orders;
SELECT 1 / 0;
SELEC 1;
SELECT 'still here' AS alive;
",
        file.display()
    );
    let out = psql(t, &["-A", "-t"], &script);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"order_id,status,amount"),
        "COPY TO STDOUT header: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(
        lines.get(1).copied(),
        Some(
            format!(
                "{},{},{}",
                shop.first.order_id, shop.first.status, shop.first.amount
            )
            .as_str()
        ),
        "COPY TO STDOUT first row"
    );
    let copied = lines.iter().filter(|l| l.contains(',')).count() as i64;
    assert_eq!(copied, shop.orders + 1, "COPY rows plus header");
    let file_rows = std::fs::read_to_string(&file).unwrap();
    assert_eq!(file_rows.lines().count() as i64, shop.orders, "\\copy rows");
    assert_eq!(
        file_rows.lines().next().unwrap(),
        format!("{},{}", shop.first.order_id, shop.first.amount)
    );
    for code in ["42P01", "42703", "22012", "42601"] {
        assert!(
            out.stderr.contains(&format!("ERROR:  {code}:")),
            "verbose error {code} in: {}",
            out.stderr
        );
    }
    assert!(
        out.stdout.lines().any(|l| l == "still here"),
        "the session goes on after errors: {}",
        out.stdout
    );
}

#[test]
fn client_psql_descriptions_from_schema_yml() {
    let t = target();
    let out = psql(
        t,
        &["-A", "-t"],
        "SELECT obj_description('gold.fct_orders'::regclass, 'pg_class');
SELECT col_description(c.oid, a.attnum) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid
  WHERE n.nspname = 'gold' AND c.relname = 'fct_orders' AND a.attname = 'customer_id';
\\d+ gold.fct_orders
",
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&FCT_ORDERS_DESCRIPTION),
        "{}",
        out.stdout
    );
    assert_eq!(
        lines.get(1),
        Some(&CUSTOMER_ID_DESCRIPTION),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(CUSTOMER_ID_DESCRIPTION) && lines.len() > 3,
        "\\d+ shows column descriptions: {}\n{}",
        out.stdout,
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_binary_results_for_every_type() {
    let t = target();
    let client = connect(t).await;
    let mut wrong = Vec::new();
    for (name, expr, types, expected, _) in TYPED {
        let sql = format!("SELECT {expr} AS {name}");
        let row = match client.query_one(&sql, &[]).await {
            Ok(row) => row,
            Err(e) => {
                wrong.push(format!("{sql}: {}", error_text(&e)));
                continue;
            }
        };
        let column = &row.columns()[0];
        let ty = column.type_();
        let value = match row.get::<_, Raw>(0).0 {
            Some(bytes) => decode(ty, &bytes),
            None => "NULL".into(),
        };
        if column.name() != *name || !types.contains(ty) || value != *expected {
            wrong.push(format!(
                "{sql}: expected {expected} as {types:?}, got {} = {value} as {ty}",
                column.name()
            ));
        }
    }
    assert!(wrong.is_empty(), "binary results:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_simple_protocol_text_results() {
    let t = target();
    let client = connect(t).await;
    client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    let mut wrong = Vec::new();
    for (name, expr, _, _, expected) in TYPED {
        let sql = format!("SELECT {expr} AS {name}");
        match client.simple_query(&sql).await {
            Ok(messages) => {
                let row = messages.iter().find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row),
                    _ => None,
                });
                let got = row.map(|r| (r.columns()[0].name().to_string(), r.get(0)));
                if got != Some((name.to_string(), Some(*expected).filter(|e| *e != "NULL"))) {
                    wrong.push(format!("{sql}: expected {expected}, got {got:?}"));
                }
            }
            Err(e) => wrong.push(format!("{sql}: {}", error_text(&e))),
        }
    }
    assert!(wrong.is_empty(), "text results:\n{}", wrong.join("\n"));
}

/// `select 1 from t limit n` is how BI tools test a table: the limit (and an offset) must hold
/// whatever the scan is (a Delta table read for no columns, bronze, an empty table, a view).
#[tokio::test(flavor = "multi_thread")]
async fn limits_hold_on_every_kind_of_table() {
    let client = connect(&shared_server().target()).await;
    client
        .batch_execute("CREATE TEMPORARY VIEW recent AS SELECT * FROM gold.fct_orders")
        .await
        .unwrap();
    let mut tables: Vec<String> = simple_rows(
        &client,
        "SELECT table_schema || '.' || table_name FROM information_schema.tables \
         WHERE table_schema IN ('bronze', 'silver', 'gold', '_strata') ORDER BY 1",
    )
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    tables.push("recent".into());
    let mut wrong = Vec::new();
    for table in &tables {
        let count: usize = simple_scalar(&client, &format!("SELECT count(*) FROM {table}"))
            .await
            .parse()
            .unwrap();
        for (clause, expected) in [
            ("LIMIT 1", count.min(1)),
            ("LIMIT 2 OFFSET 1", count.saturating_sub(1).min(2)),
            ("OFFSET 1", count.saturating_sub(1)),
        ] {
            let sql = format!("SELECT 1 FROM {table} {clause}");
            match client.simple_query(&sql).await {
                Ok(messages) => {
                    let rows = messages
                        .iter()
                        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                        .count();
                    if rows != expected {
                        wrong.push(format!("{sql}: {rows} rows, expected {expected}"));
                    }
                }
                Err(e) => wrong.push(format!("{sql}: {}", error_text(&e))),
            }
        }
    }
    assert!(tables.len() > 20, "{tables:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A server error as `SQLSTATE: message`.
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => format!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_binary_parameters() {
    let t = target();
    let shop = shop();
    let client = connect(t).await;
    let params: [(&str, &(dyn ToSql + Sync), &str); 16] = [
        ("int2", &7i16, "7"),
        ("int4", &-8i32, "-8"),
        ("int8", &9_000_000_000i64, "9000000000"),
        ("float4", &0.5f32, "0.5"),
        ("float8", &-1.25f64, "-1.25"),
        ("text", &"héllo", "héllo"),
        ("varchar", &"v", "v"),
        ("bool", &true, "true"),
        ("bytea", &vec![0u8, 1, 255], "\\x0001ff"),
        ("date", &Param::Date("2026-02-03"), "2026-02-03"),
        (
            "timestamp",
            &Param::Timestamp("2026-02-03 04:05:06.789"),
            "2026-02-03 04:05:06.789000",
        ),
        // A declared scale: an unconstrained numeric is decimal(38, 10) in Strata.
        (
            "numeric(38, 3)",
            &Param::Numeric("-12345678901234567890.125"),
            "-12345678901234567890.125",
        ),
        (
            "uuid",
            &Param::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ),
        (
            "interval",
            &Param::Interval(1, 2, 3_000_000),
            "1 months 2 days 3000000 us",
        ),
        ("json", &Param::Json("{\"k\": \"v\"}"), "{\"k\": \"v\"}"),
        ("int4", &None::<i32>, "NULL"),
    ];
    let mut wrong = Vec::new();
    for (ty, value, expected) in params {
        let sql = format!("SELECT $1::{ty} AS v");
        let row = match client.query_one(&sql, &[value]).await {
            Ok(row) => row,
            Err(e) => {
                wrong.push(format!("{sql} with {expected}: {}", error_text(&e)));
                continue;
            }
        };
        let got = match row.get::<_, Raw>(0).0 {
            Some(bytes) => decode(row.columns()[0].type_(), &bytes),
            None => "NULL".into(),
        };
        if got != expected {
            wrong.push(format!("{sql}: sent {expected}, got back {got}"));
        }
    }
    // Several parameters at once, one of them NULL, in a computation.
    let sql = "SELECT $1::int8 + 1, $2::text || 'x', $3::int4 IS NULL";
    match client.query_one(sql, &[&41i64, &"ab", &None::<i32>]).await {
        Ok(row) => {
            let got = (
                row.get::<_, i64>(0),
                row.get::<_, String>(1),
                row.get::<_, bool>(2),
            );
            if got != (42, "abx".to_string(), true) {
                wrong.push(format!("{sql}: got {got:?}"));
            }
        }
        Err(e) => wrong.push(format!("{sql}: {}", error_text(&e))),
    }
    assert!(wrong.is_empty(), "binary parameters:\n{}", wrong.join("\n"));

    // Parameters in a WHERE clause over a lake table, reused across executions.
    let by_key = client
        .prepare("SELECT status, amount FROM gold.fct_orders WHERE order_id = $1")
        .await
        .unwrap();
    for _ in 0..3 {
        let rows = client
            .query(&by_key, &[&shop.first.order_id])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, String>(0), shop.first.status);
        let amount = rows[0].get::<_, Raw>(1).0.unwrap();
        assert_eq!(numeric_text(&amount), shop.first.amount);
    }
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM gold.fct_orders WHERE status = $1",
            &[&shop.first.status],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, shop.status_count);
    // Unnamed statements: parse, bind and execute in one round trip.
    let rows = client
        .query_typed(
            "SELECT count(*) FROM gold.fct_orders WHERE order_id <= $1",
            &[(&shop.first.order_id, Type::INT8)],
        )
        .await
        .unwrap_or_else(|e| panic!("query_typed: {e:?}"));
    assert_eq!(rows[0].get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_portal_row_limits() {
    let t = target();
    let shop = shop();
    let mut client = connect(t).await;
    let tx = client.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT order_id FROM gold.fct_orders ORDER BY order_id")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut ids = Vec::new();
    let mut batches = 0;
    loop {
        let rows = tx
            .query_portal(&portal, 100)
            .await
            .unwrap_or_else(|e| panic!("execute portal, batch {batches}: {e:?}"));
        assert!(rows.len() <= 100, "a portal returns at most max_rows");
        if rows.is_empty() {
            break;
        }
        batches += 1;
        ids.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
    assert_eq!(ids.len() as i64, shop.orders);
    assert_eq!(batches as i64, (shop.orders + 99) / 100);
    assert_eq!(ids[0], shop.first.order_id);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "rows resume in order");
    // Two portals open at once in one transaction.
    let a = tx.bind(&stmt, &[]).await.unwrap();
    let b = tx.bind(&stmt, &[]).await.unwrap();
    let a1 = tx.query_portal(&a, 5).await.unwrap();
    let b1 = tx.query_portal(&b, 3).await.unwrap();
    let a2 = tx.query_portal(&a, 5).await.unwrap();
    assert_eq!(a1[0].get::<_, i64>(0), ids[0]);
    assert_eq!(b1[0].get::<_, i64>(0), ids[0]);
    assert_eq!(a2[0].get::<_, i64>(0), ids[5]);
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_session_settings_and_transactions() {
    let t = target();
    let client = connect(t).await;
    let mut wrong = Vec::new();
    // The first value of a query's first row, or the error.
    async fn first(client: &Client, sql: &str) -> Result<String, String> {
        match client.simple_query(sql).await {
            Ok(messages) => Ok(messages
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| "no row".into())),
            Err(e) => Err(error_text(&e)),
        }
    }
    let mut expect = |what: &str, got: Result<String, String>, ok: &dyn Fn(&str) -> bool| match got
    {
        Ok(value) if ok(&value) => {}
        other => wrong.push(format!("{what}: got {other:?}")),
    };
    for (set, show, expected) in [
        (
            "SET application_name = 'strata-tests-2'",
            "SHOW application_name",
            "strata-tests-2",
        ),
        ("SET extra_float_digits = 3", "SHOW extra_float_digits", "3"),
        ("SET DateStyle = 'ISO, MDY'", "SHOW DateStyle", "ISO, MDY"),
        ("SET TimeZone = 'UTC'", "SHOW TimeZone", "UTC"),
        (
            "SET statement_timeout = '5s'",
            "SHOW statement_timeout",
            "5s",
        ),
        (
            "SET client_encoding = 'UTF8'",
            "SHOW client_encoding",
            "UTF8",
        ),
        (
            "SET search_path = gold, public",
            "SHOW search_path",
            "gold, public",
        ),
    ] {
        if let Err(e) = client.simple_query(set).await {
            expect(set, Err(error_text(&e)), &|_| false);
            continue;
        }
        expect(
            &format!("{set}; {show}"),
            first(&client, show).await,
            &|v| v == expected,
        );
    }
    // search_path resolves unqualified names, as BI tools expect.
    let orders = shop().orders.to_string();
    let sql = "SELECT count(*) FROM fct_orders";
    expect(
        &format!("{sql} (search_path gold)"),
        first(&client, sql).await,
        &|v| v == orders,
    );
    // RESET puts a default back.
    let reset = match client.simple_query("RESET statement_timeout").await {
        Ok(_) => first(&client, "SHOW statement_timeout").await,
        Err(e) => Err(error_text(&e)),
    };
    expect(
        "RESET statement_timeout; SHOW statement_timeout",
        reset,
        &|v| v == "0",
    );
    // Transactions: accepted, and reads inside them see the lake.
    for block in [
        "BEGIN; SELECT count(*) FROM gold.fct_orders; COMMIT",
        "BEGIN READ ONLY; SELECT 1; ROLLBACK",
        "START TRANSACTION ISOLATION LEVEL REPEATABLE READ; SELECT 1; COMMIT",
    ] {
        if let Err(e) = client.batch_execute(block).await {
            expect(block, Err(error_text(&e)), &|_| false);
        }
    }
    expect(
        "SHOW TRANSACTION ISOLATION LEVEL",
        first(&client, "SHOW TRANSACTION ISOLATION LEVEL").await,
        &|v| v == "read committed",
    );
    if t.strata {
        expect(
            "SELECT version()",
            first(&client, "SELECT version()").await,
            &|v| v.starts_with("PostgreSQL 16.0 (Strata"),
        );
        expect(
            "SHOW server_version",
            first(&client, "SHOW server_version").await,
            &|v| v.starts_with("16"),
        );
    } else {
        expect(
            "SELECT version()",
            first(&client, "SELECT version()").await,
            &|v| v.starts_with("PostgreSQL "),
        );
    }
    expect(
        "SELECT current_database()",
        first(&client, "SELECT current_database()").await,
        &|v| v == t.dbname,
    );
    expect(
        "SELECT current_user",
        first(&client, "SELECT current_user").await,
        &|v| v == t.user,
    );
    expect(
        "SELECT current_user, session_user",
        first(&client, "SELECT current_user, session_user").await,
        &|v| v == t.user,
    );
    expect(
        "SELECT pg_typeof(1)",
        first(&client, "SELECT pg_typeof(1)").await,
        &|v| v == "integer",
    );
    assert!(wrong.is_empty(), "session:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_errors_keep_the_session() {
    let t = target();
    let client = connect(t).await;
    for (sql, code) in [
        ("SELECT * FROM gold.no_such_table", "42P01"),
        ("SELECT no_such_column FROM gold.fct_orders", "42703"),
        ("SELEC 1", "42601"),
        ("SELECT 1 / 0", "22012"),
        ("SELECT CAST('abc' AS int4)", "22P02"),
    ] {
        assert_eq!(sqlstate(&client, sql).await, code, "{sql}");
        assert_eq!(simple_scalar(&client, "SELECT 1").await, "1", "after {sql}");
        // the extended protocol too
        let err = client.query(sql, &[]).await.err();
        assert_eq!(
            err.as_ref().map(error_code).as_deref(),
            Some(code),
            "{sql} (extended)"
        );
        assert_eq!(
            client
                .query_one("SELECT 2::int4", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            2
        );
    }
    // An error inside a transaction block aborts it until ROLLBACK.
    client.batch_execute("BEGIN").await.unwrap();
    assert_eq!(sqlstate(&client, "SELECT 1 / 0").await, "22012");
    assert_eq!(sqlstate(&client, "SELECT 1").await, "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(simple_scalar(&client, "SELECT 3").await, "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_cancel() {
    let t = target();
    let client = Arc::new(connect(t).await);
    let token = client.cancel_token();
    let running = {
        let client = client.clone();
        tokio::spawn(async move { client.simple_query(LONG_QUERY).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let start = Instant::now();
    token
        .cancel_query(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cancel request: {e:?}"));
    let result = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the cancelled query ends within 30 s")
        .unwrap();
    let err = result.expect_err("the long query was cancelled");
    assert_eq!(error_code(&err), "57014", "{err:?}");
    eprintln!("cancelled in {:?}", start.elapsed());
    assert_eq!(simple_scalar(&client, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_tokio_postgres_statement_timeout() {
    let t = target();
    let client = connect(t).await;
    client
        .batch_execute("SET statement_timeout = 500")
        .await
        .unwrap();
    let start = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), client.simple_query(LONG_QUERY))
        .await
        .expect("statement_timeout stops the query within 30 s");
    let err = result.expect_err("the long query timed out");
    assert_eq!(error_code(&err), "57014", "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    // The extended protocol obeys it too.
    let result = tokio::time::timeout(Duration::from_secs(30), client.query(LONG_QUERY, &[]))
        .await
        .expect("statement_timeout stops the query within 30 s");
    assert_eq!(error_code(&result.expect_err("timed out")), "57014");
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    assert_eq!(simple_scalar(&client, "SELECT 1").await, "1");
}

#[test]
fn client_python_psycopg_sqlalchemy_pandas() {
    run_python(&["types", "params", "errors", "sqlalchemy", "pandas"]);
}

#[test]
fn client_python_named_cursor() {
    run_python(&["named_cursor"]);
}

#[test]
fn client_node_postgres() {
    let t = target();
    let node_path = std::env::var("STRATA_TEST_NODE_PATH").unwrap_or_else(|_| {
        format!(
            "{}/.cache/strata/node/node_modules",
            std::env::var("HOME").unwrap()
        )
    });
    assert!(
        Path::new(&node_path).join("pg/package.json").exists(),
        "node-postgres is missing from {node_path}: run scripts/test"
    );
    let mut cmd = client_command("node");
    cmd.arg(clients_dir().join("client.js"))
        .args([&t.host, &t.port.to_string(), &t.dbname, &t.user])
        .env("NODE_PATH", node_path)
        .env("STRATA_EXPECT", expect_json(t));
    run_client("client.js", cmd, Duration::from_secs(120));
}

/// `java` with pgjdbc and the compiled client `class` (tests/serve_clients/<class>.java) on
/// its class path.
fn java_client(class: &str) -> Command {
    let jar = std::env::var("STRATA_TEST_PGJDBC_JAR")
        .unwrap_or_else(|_| "/usr/share/java/postgresql.jar".to_string());
    assert!(
        Path::new(&jar).exists(),
        "the pgjdbc jar {jar} is missing: run scripts/test"
    );
    let classes = work_root().join("java-classes");
    std::fs::create_dir_all(&classes).unwrap();
    let out = client_command("javac")
        .arg("-d")
        .arg(&classes)
        .arg(clients_dir().join(format!("{class}.java")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cmd = client_command("java");
    cmd.arg("-cp").arg(format!("{}:{jar}", classes.display()));
    cmd
}

#[test]
fn client_pgjdbc_metadata_and_queries() {
    let t = target();
    let shop = shop();
    let mut cmd = java_client("JdbcClient");
    cmd.arg("JdbcClient")
        .args([&t.host, &t.port.to_string(), &t.dbname, &t.user])
        .env("STRATA_EXPECT_ORDERS", shop.orders.to_string())
        .env(
            "STRATA_EXPECT_FIRST_ORDER",
            format!(
                "{},{},{},{}",
                shop.first.order_id, shop.first.status, shop.first.amount, shop.first.order_date
            ),
        )
        .env("STRATA_EXPECT_STATUS_COUNT", shop.status_count.to_string())
        .env("STRATA_EXPECT_SCHEMAS", t.schemas().join(","))
        .env("STRATA_EXPECT_GOLD_TABLES", t.gold_tables().join(","))
        .env("STRATA_EXPECT_COLUMNS", ORDER_COLUMNS.join(","));
    run_client("JdbcClient", cmd, Duration::from_secs(180));
}

// ---------------------------------------------------------------------------------------------
// Compared with PostgreSQL: the same client calls against the shared Strata server and against
// the machine's PostgreSQL (STRATA_TEST_PG) holding gold.fct_orders as Strata serves it

/// The machine's PostgreSQL, in a database named `strata` like Strata's (catalog calls report
/// it) whose schema `gold` is replaced by a copy of gold.fct_orders as the shared server
/// serves it: its columns, types, NOT NULLs, descriptions and rows.
fn reference() -> &'static Target {
    static REFERENCE: OnceLock<Target> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let admin = common::pg_conn();
        let mut reference = Target::postgres(&admin);
        reference.dbname = "strata".to_string();
        let exists = psql_conninfo(
            &admin,
            &["-tAq"],
            "SELECT 1 FROM pg_database WHERE datname = 'strata'",
            &[],
        );
        assert!(exists.status.success(), "{}", exists.stderr);
        if exists.stdout.trim() != "1" {
            let out = psql_conninfo(&admin, &["-q"], "CREATE DATABASE strata", &[]);
            assert!(out.status.success(), "{}", out.stderr);
        }

        let served = psql(
            &shared_server().target(),
            &["-tAq", "-F", "\u{1f}"],
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull, \
             coalesce(col_description(attrelid, attnum), '') FROM pg_catalog.pg_attribute \
             WHERE attrelid = 'gold.fct_orders'::regclass AND attnum > 0 ORDER BY attnum;\n\
             SELECT obj_description('gold.fct_orders'::regclass, 'pg_class');\n",
        );
        assert!(served.status.success(), "{}", served.stderr);
        let lines: Vec<&str> = served.stdout.lines().collect();
        let (table_description, columns) = lines.split_last().unwrap();
        let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
        let mut definitions = Vec::new();
        let mut comments = Vec::new();
        for line in columns {
            let [name, ty, not_null, description] = line.split('\u{1f}').collect::<Vec<_>>()[..]
            else {
                panic!("pg_attribute row: {line:?}");
            };
            let not_null = if not_null == "t" { " NOT NULL" } else { "" };
            definitions.push(format!("{name} {ty}{not_null}"));
            if !description.is_empty() {
                comments.push(format!(
                    "COMMENT ON COLUMN gold.fct_orders.{name} IS {};",
                    quote(description)
                ));
            }
        }
        let csv_path = work_root().join("reference_fct_orders.csv");
        std::fs::write(
            &csv_path,
            strata_ok(
                &shop().dir,
                &[
                    "sql",
                    "--format",
                    "csv",
                    "-c",
                    "SELECT * FROM gold.fct_orders",
                ],
            ),
        )
        .unwrap();
        let script = format!(
            "DROP SCHEMA IF EXISTS gold CASCADE;\nCREATE SCHEMA gold;\n\
             CREATE TABLE gold.fct_orders ({});\nCOMMENT ON TABLE gold.fct_orders IS {};\n{}\n\
             \\copy gold.fct_orders FROM '{}' CSV HEADER\nANALYZE gold.fct_orders;\n",
            definitions.join(", "),
            quote(table_description),
            comments.join("\n"),
            csv_path.display()
        );
        let out = psql(&reference, &["-q", "-1", "-v", "ON_ERROR_STOP=1"], &script);
        assert!(
            out.status.success(),
            "loading {reference:?}: {}",
            out.stderr
        );
        reference
    })
}

/// Expressions whose unaliased column names must be PostgreSQL's, one query each.
const NAMED_EXPRESSIONS: &[&str] = &[
    "count(*)",
    "count(order_id)",
    "count(DISTINCT status)",
    "sum(amount)",
    "avg(amount)",
    "min(order_date)",
    "1 + 1",
    "order_id",
    "o.order_id",
    "(amount)",
    "amount * 2",
    "-amount",
    "order_id % 2",
    "status || 'x'",
    "CAST(amount AS int)",
    "amount::text",
    "(o.amount)::int",
    "1::int",
    "1::bigint",
    "'1'::text",
    "1::int::text",
    "CAST(order_id AS varchar(10))",
    "CAST(status AS char(3))",
    "CAST(order_id AS double precision)",
    "amount::numeric(10, 1)",
    "order_ts::timestamptz",
    "CAST(NULL AS text)",
    "CAST('2026-01-01' AS date)",
    "'x'",
    "NULL",
    "true",
    "DATE '2026-01-01'",
    "INTERVAL '1 day'",
    "CASE WHEN amount > 10 THEN 'big' END",
    "CASE WHEN amount > 10 THEN 'big' ELSE status END",
    "CASE status WHEN 'x' THEN 1 ELSE 0 END",
    "coalesce(customer_id, 0)",
    "nullif(status, 'x')",
    "greatest(1, 2)",
    "least(amount, 1)",
    "upper(status)",
    "length(status)",
    "substring(status FROM 1 FOR 2)",
    "substring(status, 1, 2)",
    "trim(status)",
    "trim(LEADING 'x' FROM status)",
    "position('a' IN status)",
    "extract(year FROM order_date)",
    "date_trunc('month', order_ts)",
    "order_ts AT TIME ZONE 'UTC'",
    "round(amount, 1)",
    "ceil(amount)",
    "floor(amount)",
    "status = 'x'",
    "status IS NULL",
    "status IN ('a', 'b')",
    "status LIKE 'a%'",
    "order_id BETWEEN 1 AND 2",
    "NOT (status = 'x')",
    "status IS DISTINCT FROM 'x'",
    "(SELECT max(order_id) FROM gold.fct_orders)",
    "current_date",
    "now()",
    "row_number() OVER (ORDER BY order_id)",
    "sum(amount) OVER ()",
    "ARRAY[1, 2]",
    "ROW(1, 2)",
    "to_char(order_date, 'YYYY')",
    "concat(status, 'x')",
    "count(*) AS n",
    "amount AS Amount",
    "1 AS \"Mixed\"",
];

/// Whole queries whose column names must be PostgreSQL's.
const NAMED_QUERIES: &[&str] = &[
    "SELECT count(*), count(status), 1, 2 FROM gold.fct_orders",
    "SELECT upper(status), o.*, 1 + 1 FROM gold.fct_orders o LIMIT 1",
    "SELECT status, count(*), sum(amount)::numeric(20, 2) FROM gold.fct_orders GROUP BY 1",
    "SELECT 1 + 1 UNION ALL SELECT count(*) FROM gold.fct_orders",
    "WITH t AS (SELECT order_id + 1 AS next FROM gold.fct_orders) SELECT next * 2 FROM t LIMIT 1",
    "SELECT order_id::text, amount FROM gold.fct_orders ORDER BY 1 LIMIT 2",
    "SELECT DISTINCT status::varchar FROM gold.fct_orders",
    "VALUES (1, 'a')",
    // Through CTEs and derived tables, an outer query reading the inner names.
    "WITH t AS (SELECT count(*) FROM gold.fct_orders) SELECT * FROM t",
    "SELECT * FROM (SELECT 1 + 1) s",
    "SELECT * FROM (SELECT sum(amount) FROM gold.fct_orders) s",
    "SELECT * FROM (SELECT status, count(*), upper(status) FROM gold.fct_orders GROUP BY 1) s",
    "SELECT s.count + 1 FROM (SELECT count(*) FROM gold.fct_orders) s",
    "WITH t AS (SELECT max(order_id), amount::int FROM gold.fct_orders GROUP BY 2) \
     SELECT t.* FROM t LIMIT 1",
];

/// The column names a statement's Describe reports, and those of its simple-protocol rows.
async fn column_names(client: &Client, sql: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let statement = client.prepare(sql).await.map_err(|e| error_text(&e))?;
    let described = statement.columns().iter().map(|c| c.name().to_string());
    let simple = client
        .simple_query(sql)
        .await
        .map_err(|e| error_text(&e))?
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::RowDescription(columns) => {
                Some(columns.iter().map(|c| c.name().to_string()).collect())
            }
            _ => None,
        })
        .unwrap_or_default();
    Ok((described.collect(), simple))
}

#[tokio::test(flavor = "multi_thread")]
async fn result_columns_are_named_as_postgresql_names_them() {
    let strata = connect(&shared_server().target()).await;
    let postgres = connect(reference()).await;
    let queries = NAMED_EXPRESSIONS
        .iter()
        .map(|e| format!("SELECT {e} FROM gold.fct_orders o LIMIT 1"))
        .chain(NAMED_QUERIES.iter().map(|q| q.to_string()));
    let mut differences = Vec::new();
    for sql in queries {
        let expected = column_names(&postgres, &sql)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e}"));
        let got = column_names(&strata, &sql).await;
        if got.as_ref() != Ok(&expected) {
            differences.push(format!(
                "{sql}\n  PostgreSQL: {expected:?}\n  Strata:     {got:?}"
            ));
        }
        // `strata sql` (and the REPL, which runs statements the same way) names them too:
        // the first line of its aligned table.
        let table = strata_ok(&shop().dir, &["sql", "-c", &sql]);
        let header: Vec<String> = table
            .lines()
            .next()
            .unwrap_or_default()
            .split('|')
            .map(|name| name.trim().to_string())
            .collect();
        if header != expected.0 {
            differences.push(format!(
                "strata sql: {sql}\n  PostgreSQL: {:?}\n  strata sql: {header:?}",
                expected.0
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Expressions whose result type (the oid a Describe reports) must be PostgreSQL's: integer
/// literals are int4 where they fit, arithmetic keeps PostgreSQL's result types, a cast to
/// varchar is varchar.
const TYPED_EXPRESSIONS: &[&str] = &[
    "1",
    "-1",
    "1 + 1",
    "2 * 3 - 1",
    "7 / 2",
    "7 % 2",
    "2147483647",
    "2147483648",
    "(1)",
    "CASE WHEN amount > 10 THEN 1 ELSE 0 END",
    "greatest(1, 2)",
    "coalesce(customer_id, 0)",
    "ARRAY[1, 2]",
    "order_id + 1",
    "count(*)",
    "count(*) + 1",
    "sum(CAST(order_id AS int))",
    "sum(1)",
    "CAST('x' AS varchar)",
    "CAST(status AS varchar(10))",
    "status::varchar",
    "CAST(status AS character varying)",
    "status",
    "CAST('x' AS text)",
    "status || 'x'",
];

/// The type oids of a statement's result columns, as its Describe reports them.
async fn column_types(client: &Client, sql: &str) -> Result<Vec<u32>, String> {
    let statement = client.prepare(sql).await.map_err(|e| error_text(&e))?;
    Ok(statement
        .columns()
        .iter()
        .map(|c| c.type_().oid())
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn result_column_types_are_postgresql_types() {
    let strata = connect(&shared_server().target()).await;
    let postgres = connect(reference()).await;
    let queries = TYPED_EXPRESSIONS
        .iter()
        .map(|e| format!("SELECT {e} FROM gold.fct_orders o LIMIT 1"))
        .chain(
            [
                "SELECT 1, 1 + 1",
                "SELECT * FROM (SELECT 1 AS one, 2) s",
                "WITH t AS (SELECT 1 AS n) SELECT n, n AS m FROM t",
                "SELECT 1 UNION ALL SELECT count(*) FROM gold.fct_orders",
                "SELECT order_id % 2, count(*) FROM gold.fct_orders GROUP BY order_id % 2 \
                 ORDER BY order_id % 2",
                "VALUES (1, 'a')",
            ]
            .map(str::to_string),
        );
    let mut differences = Vec::new();
    for sql in queries {
        let expected = column_types(&postgres, &sql)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL: {sql}: {e}"));
        let got = column_types(&strata, &sql).await;
        if got.as_ref() != Ok(&expected) {
            differences.push(format!(
                "{sql}\n  PostgreSQL: {expected:?}\n  Strata:     {got:?}"
            ));
        }
    }
    // The values themselves are PostgreSQL's too (int4 arithmetic, no bigint left over).
    for (sql, value) in [
        ("SELECT 1 + 1", "2"),
        ("SELECT 7 / 2", "3"),
        (
            "SELECT CAST(2000000000 AS bigint) + 2000000000",
            "4000000000",
        ),
    ] {
        assert_eq!(simple_scalar(&strata, sql).await, value, "{sql}");
        assert_eq!(simple_scalar(&postgres, sql).await, value, "{sql}");
    }
    // int4 arithmetic that overflows fails as in PostgreSQL, where DataFusion would wrap.
    for overflow in [
        "SELECT 2000000000 + 2000000000",
        "SELECT 50000 * 50000",
        "SELECT -2147483647 - 2",
    ] {
        assert_eq!(sqlstate(&postgres, overflow).await, "22003", "{overflow}");
        assert_eq!(sqlstate(&strata, overflow).await, "22003", "{overflow}");
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// What a client program printed as JSON about one target.
fn client_json(name: &str, mut cmd: Command) -> serde_json::Value {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/test)"));
    let out = wait_output(child, Duration::from_secs(300), name);
    assert!(
        out.status.success(),
        "{name}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs a client program (given a target's host, port, database and user) against the
/// shared Strata server and against PostgreSQL, and insists both saw the same, naming each
/// top-level entry that differs.
fn same_as_postgresql(name: &str, command: impl Fn(&Target) -> Command) {
    let strata = client_json(name, command(&shared_server().target()));
    let postgres = client_json(name, command(reference()));
    let (serde_json::Value::Object(strata), serde_json::Value::Object(postgres)) =
        (&strata, &postgres)
    else {
        panic!("{name} printed no JSON objects: {strata} / {postgres}");
    };
    let differences: Vec<String> = postgres
        .iter()
        .filter(|(key, expected)| strata.get(*key) != Some(*expected))
        .map(|(key, expected)| {
            format!(
                "{key}:\n  PostgreSQL: {expected}\n  Strata:     {}",
                strata.get(key).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{name} differs from PostgreSQL:\n{}",
        differences.join("\n")
    );
}

/// A client program's command with the target's host, port, database and user as arguments.
fn with_target(mut cmd: Command, target: &Target) -> Command {
    cmd.args([
        &target.host,
        &target.port.to_string(),
        &target.dbname,
        &target.user,
    ]);
    cmd
}

/// The Python client `script` of tests/serve_clients with a target's arguments.
fn python_client(script: &str, target: &Target) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(clients_dir().join(script));
    with_target(cmd, target)
}

#[test]
fn client_psqlodbc_catalog_functions_as_postgresql() {
    let drivers = client_command("odbcinst")
        .args(["-q", "-d"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&drivers.stdout).contains("[PostgreSQL Unicode]"),
        "psqlODBC is missing: run scripts/test (it installs odbc-postgresql and unixodbc)"
    );
    same_as_postgresql("odbc_catalog.py", |target| {
        python_client("odbc_catalog.py", target)
    });
}

#[test]
fn client_asyncpg_as_postgresql() {
    same_as_postgresql("asyncpg_client.py", |target| {
        python_client("asyncpg_client.py", target)
    });
}

#[test]
fn client_go_pgx_as_postgresql() {
    // Debian packages Go libraries for GOPATH builds; the Go module proxy is not needed.
    let gopath = Path::new("/usr/share/gocode");
    assert!(
        gopath.join("src/github.com/jackc/pgx/v4").is_dir(),
        "pgx is missing from {}: run scripts/test (it installs golang-github-jackc-pgx-v4-dev)",
        gopath.display()
    );
    let program = work_root().join("pgx-client");
    let out = client_command("go")
        .args(["build", "-o"])
        .arg(&program)
        .arg(".")
        .current_dir(clients_dir().join("pgx"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", work_root().join("go-cache"))
        .env("GOFLAGS", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    same_as_postgresql("pgx-client", |target| {
        with_target(Command::new(&program), target)
    });
}

/// The queries and DatabaseMetaData calls Metabase's PostgreSQL driver makes when it syncs
/// a database (read in Metabase's postgres driver and sql-jdbc sync code), through pgjdbc.
#[test]
fn client_metabase_sync_as_postgresql() {
    same_as_postgresql("MetabaseSync", |target| {
        let mut cmd = java_client("MetabaseSync");
        cmd.arg("MetabaseSync");
        with_target(cmd, target)
    });
}

// ---------------------------------------------------------------------------------------------
// Strata's own behavior: the shared server or servers of their own

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_writes_to_the_lake() {
    let server = shared_server();
    let client = connect(&server.target()).await;
    for sql in [
        "INSERT INTO gold.fct_orders (order_id) VALUES (-1)",
        "UPDATE gold.fct_orders SET status = 'x'",
        "DELETE FROM gold.fct_orders",
        "CREATE TABLE gold.scratch AS SELECT 1 AS x",
        "CREATE TABLE silver.scratch (x int)",
        "DROP TABLE gold.fct_orders",
        "CREATE VIEW gold.v AS SELECT 1 AS x",
    ] {
        assert_eq!(sqlstate(&client, sql).await, "25006", "{sql}");
        let extended = client.execute(sql, &[]).await.err();
        assert_eq!(
            extended.as_ref().map(error_code).as_deref(),
            Some("25006"),
            "{sql} (extended)"
        );
    }
    assert_eq!(
        simple_scalar(&client, "SELECT count(*) FROM gold.fct_orders").await,
        shop().orders.to_string()
    );
    // A session's own temporary views are fine, and private to it.
    client
        .batch_execute(
            "CREATE TEMPORARY VIEW paid AS SELECT * FROM gold.fct_orders WHERE status = 'paid'",
        )
        .await
        .unwrap_or_else(|e| panic!("temporary view: {e:?}"));
    let paid: i64 = simple_scalar(&client, "SELECT count(*) FROM paid")
        .await
        .parse()
        .unwrap();
    assert!(paid > 0 && paid < shop().orders);
    let other = connect(&server.target()).await;
    assert_eq!(sqlstate(&other, "SELECT count(*) FROM paid").await, "42P01");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_paths_outside_the_lake() {
    let client = connect(&shared_server().target()).await;
    for sql in [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_ndjson('/etc/hostname')",
        "SELECT * FROM read_parquet('../../etc/x.parquet')",
        "SELECT * FROM '/etc/passwd.csv'",
    ] {
        let result = client.simple_query(sql).await;
        let err = result.expect_err(sql);
        let message = err.as_db_error().map(|d| d.message().to_string());
        assert!(
            message.as_deref().is_some_and(|m| !m.contains("root:x:0")),
            "{sql}: {err:?}"
        );
        eprintln!("{sql}: {} {:?}", error_code(&err), message);
    }
    assert_eq!(simple_scalar(&client, "SELECT 1").await, "1");
}

/// The probe of issue 20: a link out of the lake (`bronze/evil -> /etc`) and out of a source
/// folder (`drop/passwd.csv -> /etc/passwd`) read through the server.
#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_symlinks_out_of_the_lake() {
    let dir = work_root().join("symlinks");
    std::fs::create_dir_all(dir.join("catalog")).unwrap();
    std::fs::create_dir_all(dir.join("lake/bronze")).unwrap();
    std::fs::create_dir_all(dir.join("drop")).unwrap();
    std::fs::write(
        dir.join("strata.toml"),
        format!(
            "[lake]\nroot = {:?}\n\n[land]\nsources = \"catalog/sources.yml\"\n",
            dir.join("lake").display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("catalog/sources.yml"),
        "sources:\n  - name: raw\n    kind: folder\n    location: drop\n    tables:\n      \
         - name: t\n        pattern: '*.csv'\n        format: csv\n",
    )
    .unwrap();
    std::fs::write(dir.join("drop/good.csv"), "a\n1\n2\n3\n").unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("lake/bronze/evil")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("drop/passwd.csv")).unwrap();
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let client = connect(&server.target()).await;
    for (sql, link) in [
        (
            "SELECT * FROM read_csv('lake/bronze/evil/passwd')",
            "lake/bronze/evil/passwd",
        ),
        (
            "SELECT * FROM read_csv('lake/bronze/*/passwd')",
            "lake/bronze/evil",
        ),
        ("SELECT * FROM 'drop/passwd.csv'", "drop/passwd.csv"),
        ("SELECT * FROM read_csv('drop/*.csv')", "drop/passwd.csv"),
    ] {
        let err = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(error_code(&err), "42501", "{sql}: {err:?}");
        let message = err.as_db_error().unwrap().message().to_string();
        assert!(
            message.contains(link) && !message.contains("root:"),
            "{sql}: {message}"
        );
    }
    assert_eq!(
        simple_scalar(&client, "SELECT count(*) FROM read_csv('drop/good.csv')").await,
        "3"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_time_travel() {
    let shop = shop();
    assert_ne!(shop.dim_date_v0, shop.dim_date_now);
    let client = connect(&shared_server().target()).await;
    assert_eq!(
        simple_scalar(&client, "SELECT count(*) FROM gold.dim_date").await,
        shop.dim_date_now.to_string()
    );
    assert_eq!(
        simple_scalar(
            &client,
            "SELECT count(*) FROM gold.dim_date VERSION AS OF 0"
        )
        .await,
        shop.dim_date_v0.to_string()
    );
    let sql = format!(
        "SELECT count(*) FROM gold.dim_date TIMESTAMP AS OF '{}'",
        shop.between_versions
    );
    assert_eq!(
        simple_scalar(&client, &sql).await,
        shop.dim_date_v0.to_string(),
        "{sql}"
    );
    let runs: i64 = simple_scalar(&client, "SELECT count(DISTINCT run_id) FROM _strata.runs")
        .await
        .parse()
        .unwrap();
    assert!(runs >= 2, "two runs in _strata.runs");
    client
        .batch_execute(&format!("SET strata.as_of_run = '{}'", shop.first_run))
        .await
        .unwrap_or_else(|e| panic!("SET strata.as_of_run: {e:?}"));
    assert_eq!(
        simple_scalar(&client, "SHOW strata.as_of_run").await,
        shop.first_run
    );
    assert_eq!(
        simple_scalar(&client, "SELECT count(*) FROM gold.dim_date").await,
        shop.dim_date_v0.to_string(),
        "as of the first run"
    );
    // Other sessions still see the latest version.
    let other = connect(&shared_server().target()).await;
    assert_eq!(
        simple_scalar(&other, "SELECT count(*) FROM gold.dim_date").await,
        shop.dim_date_now.to_string()
    );
    assert_ne!(
        sqlstate(&client, "SELECT * FROM gold.dim_date VERSION AS OF 99").await,
        "no error",
        "a version that does not exist"
    );
}

/// `strata sql` reads tables at a version as the server does: `VERSION AS OF`, `TIMESTAMP AS
/// OF`, and `SET strata.as_of_run` pinning the rest of a script until `RESET`.
#[tokio::test(flavor = "multi_thread")]
async fn sql_command_time_travels_as_the_server_does() {
    let shop = shop();
    let client = connect(&shared_server().target()).await;
    let versioned = "SELECT count(*) FROM gold.dim_date VERSION AS OF 0";
    let through_sql = lake_query(&shop.dir, versioned)[1][0].clone();
    assert_eq!(through_sql, shop.dim_date_v0.to_string());
    assert_eq!(simple_scalar(&client, versioned).await, through_sql);
    let at = format!(
        "SELECT count(*) FROM gold.dim_date TIMESTAMP AS OF '{}'",
        shop.between_versions
    );
    assert_eq!(
        lake_query(&shop.dir, &at)[1][0],
        shop.dim_date_v0.to_string()
    );
    let script = format!(
        "SET strata.as_of_run = '{}'; SELECT count(*) AS pinned FROM gold.dim_date; \
         RESET strata.as_of_run; SELECT count(*) AS latest FROM gold.dim_date",
        shop.first_run
    );
    assert_eq!(
        lake_query(&shop.dir, &script),
        [
            vec!["pinned".to_string()],
            vec![shop.dim_date_v0.to_string()],
            vec!["latest".to_string()],
            vec![shop.dim_date_now.to_string()],
        ]
    );
    let missing = strata(
        &shop.dir,
        &["sql", "-c", "SELECT * FROM gold.dim_date VERSION AS OF 99"],
    );
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        stderr.contains("gold.dim_date has no version 99: the latest is"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_scram_authentication() {
    let passwd = {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg("passwd")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"s3cret pass\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "strata passwd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let verifier = passwd
        .lines()
        .find(|l| l.starts_with("SCRAM-SHA-256$"))
        .unwrap_or_else(|| panic!("strata passwd printed no verifier: {passwd}"))
        .trim()
        .to_string();
    let dir = project_dir(
        "scram",
        &server_toml(&format!(
            "auth = \"scram-sha-256\"\nusers = {{ alice = {verifier:?} }}\n"
        )),
    );
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let base = format!(
        "host={} port={} dbname=strata connect_timeout=10",
        server.host, server.port
    );
    let client = connect_with(&format!("{base} user=alice password='s3cret pass'")).await;
    assert_eq!(
        simple_scalar(&client, "SELECT count(*) FROM gold.fct_orders").await,
        shop().orders.to_string()
    );
    for (user, password) in [("alice", "wrong"), ("bob", "s3cret pass"), ("alice", "")] {
        let err =
            tokio_postgres::connect(&format!("{base} user={user} password='{password}'"), NoTls)
                .await
                .err()
                .unwrap_or_else(|| panic!("{user}/{password:?} must be refused"));
        if password.is_empty() {
            continue; // the client itself refuses to answer without a password
        }
        assert_eq!(error_code(&err), "28P01", "{user}/{password}: {err:?}");
    }
    // psql with PGPASSWORD
    let ok = psql_conninfo(
        &format!("{base} user=alice"),
        &["-A", "-t", "-c", "SELECT 42"],
        "",
        &[("PGPASSWORD", "s3cret pass")],
    );
    assert!(
        ok.status.success() && ok.stdout.trim() == "42",
        "{}{}",
        ok.stdout,
        ok.stderr
    );
    let bad = psql_conninfo(
        &format!("{base} user=alice"),
        &["-c", "SELECT 42"],
        "",
        &[("PGPASSWORD", "nope")],
    );
    assert!(
        !bad.status.success(),
        "psql with a wrong password: {}",
        bad.stdout
    );
    assert!(
        bad.stderr.contains("authentication failed"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        simple_scalar(&client, "SELECT current_user").await,
        "alice",
        "current_user is the authenticated user"
    );
}

#[test]
fn serve_tls() {
    let dir = work_root().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let out = client_command("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = project_dir(
        "tls",
        &server_toml(&format!(
            "tls_cert = {:?}\ntls_key = {:?}\ntls_required = true\n",
            dir.join("cert.pem").display().to_string(),
            dir.join("key.pem").display().to_string()
        )),
    );
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let base = format!(
        "host={} port={} dbname=strata user=strata",
        server.host, server.port
    );
    let secure = psql_conninfo(
        &format!("{base} sslmode=require"),
        &["-A", "-t"],
        "\\conninfo\nSELECT count(*) FROM gold.fct_orders;\n",
        &[],
    );
    assert!(
        secure.status.success(),
        "{}{}",
        secure.stdout,
        secure.stderr
    );
    assert!(
        secure.stdout.contains("SSL connection"),
        "{}",
        secure.stdout
    );
    assert!(
        secure.stdout.contains(&shop().orders.to_string()),
        "{}",
        secure.stdout
    );
    let verified = psql_conninfo(
        &format!(
            "{base} sslmode=verify-full sslrootcert={}",
            work_root().join("tls/cert.pem").display()
        ),
        &["-A", "-t", "-c", "SELECT 1"],
        "",
        &[],
    );
    assert!(
        verified.status.success(),
        "{}{}",
        verified.stdout,
        verified.stderr
    );
    let plain = psql_conninfo(
        &format!("{base} sslmode=disable"),
        &["-c", "SELECT 1"],
        "",
        &[],
    );
    assert!(
        !plain.status.success(),
        "plaintext must be refused: {}",
        plain.stdout
    );
    eprintln!("plaintext refused: {}", plain.stderr.trim());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_connection_limit() {
    let dir = project_dir("limit", &server_toml("max_connections = 3\n"));
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let t = server.target();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(&t).await);
    }
    for client in &clients {
        assert_eq!(simple_scalar(client, "SELECT 1").await, "1");
    }
    let err = tokio_postgres::connect(&t.conninfo(), NoTls)
        .await
        .err()
        .expect("a fourth connection is refused");
    assert_eq!(error_code(&err), "53300", "{err:?}");
    let refused = psql(&t, &["-c", "SELECT 1"], "");
    assert!(
        !refused.status.success(),
        "psql over the limit: {}",
        refused.stdout
    );
    // Closing one frees its slot.
    drop(clients.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(&t.conninfo(), NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                assert_eq!(simple_scalar(&client, "SELECT 1").await, "1");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("a freed slot is reusable: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_limits_query_memory_and_idle_sessions() {
    let dir = project_dir(
        "memory",
        &server_toml("query_memory_mb = 8\nidle_session_timeout_ms = 1500\n"),
    );
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let t = server.target();
    let heavy = connect(&t).await;
    // A hash join's build side cannot spill: 2M keys need far more than 8 MiB.
    let code = sqlstate(
        &heavy,
        "SELECT count(*) FROM generate_series(1, 2000000) a \
         JOIN generate_series(1, 2000000) b ON a.value = b.value",
    )
    .await;
    assert_eq!(
        code, "53200",
        "a query over the memory limit fails as out_of_memory"
    );
    assert_eq!(
        simple_scalar(&heavy, "SELECT 1").await,
        "1",
        "the session goes on"
    );
    let other = connect(&t).await;
    assert_eq!(
        simple_scalar(&other, "SELECT 2").await,
        "2",
        "the server stays up"
    );

    // An idle session is closed after idle_session_timeout; a busy one is not.
    let idle = connect(&t).await;
    assert_eq!(simple_scalar(&idle, "SELECT 3").await, "3");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !idle.is_closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(idle.is_closed(), "an idle session is closed");
    let slow = connect(&t).await;
    let started = Instant::now();
    let count = simple_scalar(
        &slow,
        "SELECT count(*) FROM generate_series(1, 30000000) WHERE value % 7 = 0",
    )
    .await;
    assert_eq!(count, "4285714", "a running query is not idle");
    eprintln!("the busy query ran {:?}", started.elapsed());
}

/// A startup message for protocol 3.0.
fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for s in ["user", user, "database", database] {
        body.extend(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// Connects raw and reads up to ReadyForQuery.
fn raw_session(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect((server.host.as_str(), server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&startup_message("strata", "strata"))
        .unwrap();
    loop {
        let mut header = [0u8; 5];
        stream.read_exact(&mut header).unwrap();
        let len = be_i32(&header[1..]) as usize;
        let mut body = vec![0u8; len - 4];
        stream.read_exact(&mut body).unwrap();
        assert_ne!(
            header[0],
            b'E',
            "startup failed: {}",
            String::from_utf8_lossy(&body)
        );
        if header[0] == b'Z' {
            return stream;
        }
    }
}

/// Reads until the server closes the connection (an error if it stays open for 15 s).
fn closed(mut stream: TcpStream, what: &str) -> Result<(), String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut sink = vec![0u8; 65536];
    let mut total = 0usize;
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                total += n;
                if total > 1 << 20 {
                    return Err(format!("{what}: the server keeps talking"));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("{what}: the connection is still open after 15 s"));
            }
            Err(_) => return Ok(()), // reset
        }
    }
}

fn query_message(sql: &str) -> Vec<u8> {
    let mut msg = vec![b'Q'];
    msg.extend(((sql.len() + 5) as i32).to_be_bytes());
    msg.extend(sql.as_bytes());
    msg.push(0);
    msg
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_survives_garbage_and_oversize_messages() {
    let server = shared_server();
    let rss_before = proc_status_kib(server.pid, "VmRSS:");
    let mut noise = Vec::with_capacity(8192);
    let mut x: u32 = 0x2545_F491;
    for _ in 0..8192 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            false,
        ),
        ("random bytes", noise.clone(), false),
        (
            "a startup length of 2 GiB",
            vec![0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
            false,
        ),
        (
            "a startup length below the minimum",
            vec![0, 0, 0, 2],
            false,
        ),
        (
            "an unknown protocol version",
            vec![0, 0, 0, 8, 0, 9, 0, 9],
            false,
        ),
        (
            "a 2 GiB query message",
            {
                let mut m = vec![b'Q', 0x7f, 0xff, 0xff, 0xf0];
                m.extend(b"SELECT ");
                m
            },
            true,
        ),
        (
            "an unknown message type",
            vec![0xd6, 0, 0, 0, 8, 1, 2, 3, 4],
            true,
        ),
        ("random bytes after startup", noise, true),
    ];
    let mut wrong = Vec::new();
    for (what, bytes, after_startup) in cases {
        let mut stream = if after_startup {
            raw_session(server)
        } else {
            TcpStream::connect((server.host.as_str(), server.port)).unwrap()
        };
        // The server may hang up before everything is written.
        let _ = stream.write_all(&bytes);
        if let Err(e) = closed(stream, what) {
            wrong.push(e);
        }
        let client = connect(&server.target()).await;
        assert_eq!(
            simple_scalar(&client, "SELECT 1").await,
            "1",
            "after {what}"
        );
    }
    assert!(wrong.is_empty(), "garbage input:\n{}", wrong.join("\n"));
    let rss_after = proc_status_kib(server.pid, "VmRSS:");
    assert!(
        rss_after < rss_before + 512 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // A well-formed raw session still works.
    let mut stream = raw_session(server);
    stream.write_all(&query_message("SELECT 1")).unwrap();
    let mut header = [0u8; 1];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[0], b'T', "RowDescription first");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_abandons_the_query_of_a_vanished_connection() {
    let dir = project_dir("vanish", &server_toml(""));
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let idle = server.cpu_ticks();
    let mut stream = raw_session(&server);
    stream.write_all(&query_message(LONG_QUERY)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let busy = server.cpu_ticks();
    assert!(busy > idle, "the long query is running");
    drop(stream);
    // Once the query is abandoned the server goes quiet again (below 30% of a core).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let before = server.cpu_ticks();
        std::thread::sleep(Duration::from_secs(1));
        let used = server.cpu_ticks() - before;
        if used < 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the query of a vanished client is still running 20 s later ({used} ticks/s)"
        );
    }
    let client = connect(&server.target()).await;
    assert_eq!(
        simple_scalar(&client, "SELECT count(*) FROM gold.fct_orders").await,
        shop().orders.to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_drains_on_sigterm() {
    let dir = project_dir("sigterm", &server_toml(""));
    let server = Server::start(
        &dir,
        &["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
    );
    // Metrics answer over HTTP.
    let metrics = server.metrics.clone().unwrap();
    let mut http = TcpStream::connect(&metrics).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    let _ = http.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let client = Arc::new(connect(&server.target()).await);
    let running = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .simple_query(
                    "SELECT sum(a.order_id * b.order_id) FROM gold.fct_orders a \
                     CROSS JOIN gold.fct_orders b",
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    let result = tokio::time::timeout(Duration::from_secs(120), running)
        .await
        .expect("the running query ends")
        .unwrap();
    assert!(
        result.is_ok(),
        "the running query is drained, not killed: {result:?}"
    );
    let code = server.wait_exit(Duration::from_secs(60));
    assert_eq!(
        code,
        Some(0),
        "exit status after SIGTERM:\n{}",
        server.log_tail()
    );
    assert!(
        TcpStream::connect((server.host.as_str(), server.port)).is_err(),
        "nothing listens after shutdown"
    );
}

// ---------------------------------------------------------------------------------------------
// What an outside probe attacked: connections that never log in, and queries that do not yield

/// Waits (up to `within`) for a second in which the server uses under 30% of a core.
fn settles(server: &Server, within: Duration, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        let before = server.cpu_ticks();
        std::thread::sleep(Duration::from_secs(1));
        let used = server.cpu_ticks() - before;
        if used < 30 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what}: the server still uses {used} ticks/s after {:?}",
            start.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_connections_that_never_log_in() {
    let dir = project_dir(
        "never-log-in",
        &server_toml("max_connections = 3\nauth_timeout_ms = 2000\n"),
    );
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let addr = (server.host.as_str(), server.port);
    // 100 clients send 2 bytes and leave; 100 more send 2 bytes and stay; one sends half a
    // startup packet and stays.
    for _ in 0..100 {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(&[0, 0]).unwrap();
    }
    let mut lingering: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(&[0, 0]).unwrap();
            stream
        })
        .collect();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(&startup_message("strata", "strata")[..10])
        .unwrap();
    lingering.push(half);
    // None of them counts against max_connections, nor keeps the server busy.
    let clients = [
        connect(&server.target()).await,
        connect(&server.target()).await,
        connect(&server.target()).await,
    ];
    for client in &clients {
        assert_eq!(simple_scalar(client, "SELECT 1").await, "1");
    }
    settles(
        &server,
        Duration::from_secs(10),
        "with 100 two-byte connections",
    );
    // The server closes them once auth_timeout_ms has passed.
    for (i, stream) in lingering.into_iter().enumerate() {
        closed(stream, &format!("lingering connection {i}")).unwrap();
    }
    drop(clients);

    // SIGTERM exits (within the drain timeout) while such connections are open.
    let _pending: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(&[0, 0]).unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    server.signal("TERM");
    let code = server.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "exit after SIGTERM:\n{}", server.log_tail());
    eprintln!("exited {:?} after SIGTERM", started.elapsed());
}

/// A nested loop join whose filter matches nothing: it never returns a row, so DataFusion
/// never yields in it (one probe batch against every build row is one step of tens of
/// seconds here).
const NON_YIELDING_QUERY: &str = "SELECT count(*) FROM gold.fct_web_events a \
     CROSS JOIN gold.fct_web_events b WHERE a.event_type || b.event_id LIKE '%zzz%'";

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_queries_that_do_not_yield() {
    let dir = project_dir("non-yielding", &server_toml(""));
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let t = server.target();
    let other = connect(&t).await;
    let heavy = Arc::new(connect(&t).await);

    // Cancelled: answered at once, the CPU falls to idle, and meanwhile others get answers.
    let running = {
        let heavy = heavy.clone();
        tokio::spawn(async move { heavy.simple_query(NON_YIELDING_QUERY).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!running.is_finished(), "the heavy query runs");
    let asked = Instant::now();
    assert_eq!(
        simple_scalar(&other, "SELECT count(*) FROM gold.fct_orders").await,
        shop().orders.to_string()
    );
    let answered = asked.elapsed();
    assert!(
        answered < Duration::from_secs(1),
        "another session waited {answered:?} behind the heavy query"
    );
    heavy.cancel_token().cancel_query(NoTls).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the cancelled query ends")
        .unwrap();
    assert_eq!(error_code(&result.expect_err("cancelled")), "57014");
    let idle_after_cancel = settles(&server, Duration::from_secs(5), "after the cancel");

    // Timed out.
    heavy
        .batch_execute("SET statement_timeout = 1000")
        .await
        .unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        heavy.simple_query(NON_YIELDING_QUERY),
    )
    .await
    .expect("statement_timeout ends the query");
    assert_eq!(error_code(&result.expect_err("timed out")), "57014");
    let asked = Instant::now();
    assert_eq!(simple_scalar(&other, "SELECT 1").await, "1");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    let idle_after_timeout = settles(&server, Duration::from_secs(5), "after the timeout");

    // Abandoned by a client that vanished.
    let mut stream = raw_session(&server);
    stream
        .write_all(&query_message(NON_YIELDING_QUERY))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(stream);
    let idle_after_vanish = settles(&server, Duration::from_secs(5), "after the client left");
    assert_eq!(simple_scalar(&heavy, "SELECT 2").await, "2");
    eprintln!(
        "another session answered in {answered:?} during the query; idle within \
         {idle_after_cancel:?} of the cancel, {idle_after_timeout:?} of the timeout, \
         {idle_after_vanish:?} of the client leaving"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_limits_memory_across_sessions() {
    let dir = project_dir(
        "server-memory",
        &server_toml("query_memory_mb = 1024\nmemory_mb = 8\n"),
    );
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let client = connect(&server.target()).await;
    let err = client
        .simple_query(
            "SELECT count(*) FROM generate_series(1, 2000000) a \
             JOIN generate_series(1, 2000000) b ON a.value = b.value",
        )
        .await
        .expect_err("the server's memory is too small for the join");
    assert_eq!(error_code(&err), "53200", "{err:?}");
    assert!(
        error_text(&err).contains("memory_mb"),
        "{}",
        error_text(&err)
    );
    assert_eq!(simple_scalar(&client, "SELECT 1").await, "1");
}

/// Unqualified names go through the search path in server sessions too: the models are found
/// in their schemas, and a CTE of the same name still wins.
#[tokio::test(flavor = "multi_thread")]
async fn unqualified_model_names_resolve_through_the_search_path() {
    let client = connect(&shared_server().target()).await;
    let qualified = simple_scalar(&client, "SELECT count(*) FROM gold.fct_orders").await;
    assert_eq!(
        simple_scalar(&client, "SELECT count(*) FROM fct_orders").await,
        qualified
    );
    assert_eq!(
        simple_scalar(
            &client,
            "WITH fct_orders AS (SELECT 1 AS x) SELECT count(*) FROM fct_orders"
        )
        .await,
        "1"
    );
}

/// A statement's rows as text, or its SQLSTATE.
async fn answer(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    match client.simple_query(sql).await {
        Ok(messages) => Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect()),
        Err(e) => Err(error_code(&e)),
    }
}

/// psql's `\dt` rows (schema, name, type; the owner differs) after `SET search_path`.
fn psql_dt(target: &Target, search_path: &str, pattern: &str) -> Vec<String> {
    let out = psql(
        target,
        &["-X", "-tA", "-F", "|"],
        &format!("SET search_path TO {search_path};\n\\dt {pattern}\n"),
    );
    assert!(out.status.success(), "{}", out.stderr);
    out.stdout
        .lines()
        .filter(|l| l.matches('|').count() >= 3)
        .map(|l| l.split('|').take(3).collect::<Vec<_>>().join("|"))
        .collect()
}

/// A new session's `search_path` is the path Strata searches (the session's schema, the
/// target schema, the model schemas by name, bronze), and `SET search_path` changes what
/// unqualified names read, what `pg_table_is_visible` says and what psql's `\dt` lists, as
/// in PostgreSQL.
#[tokio::test(flavor = "multi_thread")]
async fn search_path_decides_names_visibility_and_dt_as_in_postgresql() {
    let strata = connect(&shared_server().target()).await;
    let path = simple_scalar(&strata, "SHOW search_path").await;
    let schemas: Vec<&str> = path.split(", ").collect();
    assert_eq!(schemas[..2], ["public", "main"], "{path}");
    assert_eq!(schemas.last(), Some(&"bronze"), "{path}");
    assert!(
        schemas.contains(&"gold") && schemas.contains(&"silver"),
        "{path}"
    );
    assert_eq!(
        simple_scalar(&strata, "SELECT current_setting('search_path')").await,
        path
    );
    let visible = "SELECT pg_catalog.pg_table_is_visible('gold.fct_orders'::regclass)";
    assert_eq!(simple_scalar(&strata, visible).await, "t");
    // psql's `\dt` with no pattern lists the models of the searched schemas.
    let listed = psql_dt(&shared_server().target(), &path, "");
    assert!(
        listed.contains(&"gold|fct_orders|table".to_string()),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|l| l.starts_with("silver|")),
        "{listed:?}"
    );

    let postgres = connect(reference()).await;
    for search_path in ["gold, public", "public", "\"$user\", gold"] {
        let set = format!("SET search_path TO {search_path}");
        for client in [&strata, &postgres] {
            client.batch_execute(&set).await.unwrap();
        }
        for sql in [
            "SHOW search_path",
            "SELECT current_schema()",
            "SELECT current_schemas(false)",
            visible,
            "SELECT c.relname, pg_table_is_visible(c.oid) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'gold' AND c.relname = 'fct_orders'",
            "SELECT pg_table_is_visible('pg_catalog.pg_class'::regclass)",
            "SELECT count(*) FROM fct_orders",
        ] {
            assert_eq!(
                answer(&strata, sql).await,
                answer(&postgres, sql).await,
                "{set}; {sql}"
            );
        }
        assert_eq!(
            psql_dt(&shared_server().target(), search_path, "fct_orders"),
            psql_dt(reference(), search_path, "fct_orders"),
            "{set}; \\dt fct_orders"
        );
    }
    // set_config is a SET, seen from the next statement on.
    for client in [&strata, &postgres] {
        assert_eq!(
            simple_scalar(client, "SELECT set_config('search_path', 'gold', false)").await,
            "gold"
        );
        assert_eq!(
            simple_scalar(client, "SELECT current_schema()").await,
            "gold"
        );
        assert_eq!(simple_scalar(client, visible).await, "t");
    }
    // RESET restores the path of a new session.
    strata.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(simple_scalar(&strata, "SHOW search_path").await, path);
    assert_eq!(simple_scalar(&strata, visible).await, "t");
}

/// `[server] read_roots`: a file under a configured root is readable through the server, one
/// outside every root is refused.
#[tokio::test(flavor = "multi_thread")]
async fn serve_reads_files_under_its_read_roots_only() {
    let root = work_root().join("read-root");
    let outside = work_root().join("not-a-root");
    for dir in [&root, &outside] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("points.csv"), "x,y\n1,2\n3,4\n").unwrap();
    }
    let dir = project_dir(
        "read-roots",
        &server_toml(&format!(
            "read_roots = [{:?}]\n",
            root.display().to_string()
        )),
    );
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let client = connect(&server.target()).await;
    let inside = format!(
        "SELECT sum(x), sum(y) FROM read_csv('{}')",
        root.join("points.csv").display()
    );
    assert_eq!(
        simple_rows(&client, &inside).await,
        [[Some("4".to_string()), Some("6".to_string())]]
    );
    let refused = format!(
        "SELECT * FROM read_csv('{}')",
        outside.join("points.csv").display()
    );
    let err = client.simple_query(&refused).await.expect_err(&refused);
    let message = err.as_db_error().map(|d| d.message().to_string());
    assert!(
        message.as_deref().is_some_and(|m| m.contains("outside")),
        "{refused}: {err:?}"
    );
    // The shared server has no roots: the same file is refused there.
    let shared = connect(&shared_server().target()).await;
    assert!(shared.simple_query(&inside).await.is_err(), "{inside}");
}

/// Appends rows `ids` (and their `id * 10`) to the Delta table `gold.<table>` of `lake`, as
/// a build commits them.
async fn commit_rows(lake: &Path, table: &str, ids: std::ops::Range<i64>) {
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::record_batch::RecordBatch;
    let lake = strata::lake::Lake::open(strata::lake::LakeRoot::Local(lake.to_path_buf())).unwrap();
    let tens: Vec<i64> = ids.clone().map(|id| id * 10).collect();
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from_iter_values(ids)) as ArrayRef,
        ),
        ("amount", Arc::new(Int64Array::from(tens)) as ArrayRef),
    ])
    .unwrap();
    let path = object_store::path::Path::from(format!("gold/{table}"));
    strata::lake::delta::append(&lake, &path, table, vec![batch])
        .await
        .unwrap();
}

/// The server keeps each Delta table's snapshot and Parquet footers between queries; a
/// commit made while a session is open is still read by its next query, over the simple
/// protocol, by a statement prepared before the commit, and by a cursor-free portal; a table
/// re-created at the same version is read anew.
#[tokio::test(flavor = "multi_thread")]
async fn serve_reads_what_was_committed_since_the_last_query() {
    let dir = work_root().join("commits");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lake = dir.join("lake");
    std::fs::write(
        dir.join("strata.toml"),
        format!("[lake]\nroot = {:?}\n", lake.display().to_string()),
    )
    .unwrap();
    commit_rows(&lake, "events", 0..3).await;
    let server = Server::start(&dir, &["--listen", "127.0.0.1:0"]);
    let client = connect(&server.target()).await;
    let total = "SELECT count(*), sum(amount) FROM gold.events";
    let lookup = client
        .prepare("SELECT amount FROM gold.events WHERE id = $1")
        .await
        .unwrap();
    let amount = async |id: i64| -> Vec<i64> {
        let rows = client.query(&lookup, &[&id]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    };
    assert_eq!(
        simple_rows(&client, total).await,
        [[Some("3".into()), Some("30".into())]]
    );
    assert_eq!(amount(4).await, Vec::<i64>::new());

    commit_rows(&lake, "events", 3..5).await;
    assert_eq!(
        simple_rows(&client, total).await,
        [[Some("5".into()), Some("100".into())]]
    );
    assert_eq!(
        amount(4).await,
        [40],
        "a statement prepared before the commit"
    );

    // Re-created: same version 0, other rows.
    std::fs::remove_dir_all(lake.join("gold/events")).unwrap();
    commit_rows(&lake, "events", 7..8).await;
    assert_eq!(
        simple_rows(&client, total).await,
        [[Some("1".into()), Some("70".into())]]
    );
    assert_eq!(amount(7).await, [70]);
    assert_eq!(amount(4).await, Vec::<i64>::new());
}
