//! S3 sources and s3:// lakes against a real S3 API on loopback: moto's server (from the venv
//! `scripts/test` prepares), started here per test with signed requests enforced, objects
//! uploaded with boto3. Failure injection: the server killed mid-transfer, a missing bucket,
//! bad credentials.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{LakeKind, Project, files_under, logged, python};

/// moto's S3 and IAM on a loopback port (argv[1], 0 for any). While auth is still off, an IAM
/// user with an access key is made; every request after that must be signed with that key.
/// Then boto3 runs the test's commands, one JSON object per line on stdin, answering each.
const SERVER: &str = r#"
import json, os, sys
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
import boto3
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]))
server.start()
host, port = server.get_host_and_port()
endpoint = f"http://{host}:{port}"
setup = dict(endpoint_url=endpoint, region_name="us-east-1")
iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **setup)
iam.create_user(UserName="strata")
iam.put_user_policy(UserName="strata", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="strata")["AccessKey"]
s3 = boto3.client("s3", aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"], **setup)
print(json.dumps({"port": port, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}),
      flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "bucket":
        s3.create_bucket(Bucket=cmd["bucket"])
        answer = None
    elif cmd["op"] == "put":
        s3.upload_file(cmd["file"], cmd["bucket"], cmd["key"])
        answer = None
    elif cmd["op"] == "keys":
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=cmd["bucket"], Prefix=cmd["prefix"])
        answer = [o["Key"] for page in pages for o in page.get("Contents", [])]
    print(json.dumps(answer), flush=True)
"#;

struct S3Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
    key: String,
    secret: String,
    /// moto's request log (one line per request, after it is answered).
    log: std::path::PathBuf,
    /// Where uploads are staged for boto3.
    work: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server on `port` (0: any free one). Fails the test when moto is missing.
    fn start(port: u16) -> Self {
        let work = tempfile::tempdir().unwrap();
        let log = work.path().join("requests.log");
        let mut child = Command::new(python())
            .args(["-c", SERVER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the venv's python runs moto (run scripts/test to install it)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let hello = next_json(&mut stdout).unwrap_or_else(|| {
            panic!(
                "moto did not start (pip install 'moto[server]' boto3 into the venv; \
                 scripts/test does):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Self {
            child,
            stdin,
            stdout,
            port: hello["port"].as_u64().unwrap() as u16,
            key: hello["key"].as_str().unwrap().to_string(),
            secret: hello["secret"].as_str().unwrap().to_string(),
            log,
            work,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The credentials a `strata` command gets.
    fn envs(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.as_str()),
            ("AWS_REGION", "us-east-1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    }

    fn call(&mut self, command: serde_json::Value) -> serde_json::Value {
        writeln!(self.stdin, "{command}").unwrap();
        next_json(&mut self.stdout).unwrap_or_else(|| {
            panic!(
                "boto3 failed on {command}:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }

    fn bucket(&mut self, bucket: &str) {
        self.call(serde_json::json!({"op": "bucket", "bucket": bucket}));
    }

    /// Uploads `body` with boto3 (multipart beyond 8 MiB, as the AWS CLI does).
    fn put(&mut self, bucket: &str, key: &str, body: &[u8]) {
        let file = self.work.path().join("upload");
        std::fs::write(&file, body).unwrap();
        self.call(serde_json::json!({"op": "put", "bucket": bucket, "key": key, "file": file}));
    }

    fn keys(&mut self, bucket: &str, prefix: &str) -> Vec<String> {
        serde_json::from_value(
            self.call(serde_json::json!({"op": "keys", "bucket": bucket, "prefix": prefix})),
        )
        .unwrap()
    }

    /// Object GETs served so far (`GET /bucket/key`), and forgets them.
    fn gets(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        std::fs::write(&self.log, "").unwrap();
        text.lines()
            .filter_map(|l| Some(l.split('"').nth(1)?.to_string()))
            .filter(|r| r.starts_with("GET /") && !r.contains('?'))
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The next line of `out` that is JSON (moto prints a banner of its own); `None` at the end.
fn next_json(out: &mut impl BufRead) -> Option<serde_json::Value> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Ok(value) = serde_json::from_str(&line) {
            return Some(value);
        }
    }
}

/// A source `src` over `url` on `server`, with one CSV table picked by `pattern`.
fn s3_source(server: &S3Server, url: &str, pattern: &str) -> String {
    format!(
        "
sources:
  - name: src
    kind: s3
    url: {url}
    endpoint: {}
    region: us-east-1
    allow_http: true
    tables:
      - name: orders
        pattern: '{pattern}'
        format: csv
",
        server.endpoint()
    )
}

fn csv_rows(prefix: &str, n: usize) -> Vec<u8> {
    let mut body = String::from("id,name\n");
    for i in 0..n {
        body.push_str(&format!("{i},{prefix}{i}\n"));
    }
    body.into_bytes()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_objects_land_once_and_changes_land_again() {
    let mut server = S3Server::start(0);
    server.bucket("raw");
    server.put("raw", "exports/orders/2026-01-01.csv", &csv_rows("a", 3));
    server.put("raw", "exports/orders/2026-01-02.csv", &csv_rows("b", 4));
    server.put("raw", "exports/notes.txt", b"not a table");
    server.put("raw", "elsewhere/orders/x.csv", &csv_rows("x", 9));
    let mut project = Project::new(
        LakeKind::Local,
        &s3_source(&server, "s3://raw/exports/", "orders/*.csv"),
    );
    project.envs = server.envs();
    let lake = project.lake();

    let out = project.ok(&["land"]);
    assert!(
        out.contains("2 landed, 0 already landed, 0 failed"),
        "{out}"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.src_orders"),
        "7"
    );
    let records = logged(&lake, "orders").await;
    assert_eq!(
        records.iter().map(|r| &r.source_path).collect::<Vec<_>>(),
        [
            "s3://raw/exports/orders/2026-01-01.csv",
            "s3://raw/exports/orders/2026-01-02.csv"
        ]
    );
    let state: serde_json::Value =
        serde_json::from_str(records[0].source_state.as_deref().unwrap()).unwrap();
    assert!(state["etag"].is_string(), "{state}");
    assert_eq!(records[0].sha256, common::sha256(&csv_rows("a", 3)));

    // Unchanged objects are listed, not downloaded again.
    server.gets();
    let out = project.ok(&["land"]);
    assert!(
        out.contains("0 landed, 2 already landed, 0 failed"),
        "{out}"
    );
    assert_eq!(server.gets(), Vec::<String>::new());

    // A changed object and a new one land; the unchanged one stays put.
    server.put("raw", "exports/orders/2026-01-02.csv", &csv_rows("b", 6));
    server.put("raw", "exports/orders/2026-01-03.csv", &csv_rows("c", 1));
    let out = project.ok(&["land"]);
    assert!(
        out.contains("2 landed, 1 already landed, 0 failed"),
        "{out}"
    );
    let mut gets = server.gets();
    gets.sort();
    assert_eq!(
        gets,
        [
            "GET /raw/exports/orders/2026-01-02.csv HTTP/1.1",
            "GET /raw/exports/orders/2026-01-03.csv HTTP/1.1"
        ]
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.src_orders"),
        "14"
    );
    assert_eq!(logged(&lake, "orders").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_cut_by_a_dead_server_lands_exactly_once_after_restart() {
    let mut server = S3Server::start(0);
    server.bucket("raw");
    // Large enough that the server dies long before the transfer could end.
    let big = csv_rows("row-with-some-padding-", 6_000_000);
    let small = csv_rows("s", 10);
    server.put("raw", "big.csv", &big);
    server.put("raw", "small.csv", &small);
    let mut project = Project::new(LakeKind::Local, &s3_source(&server, "s3://raw", "*.csv"));
    project.envs = server.envs();
    let lake = project.lake();
    let scratch = std::path::Path::new(&project.lake_root).join("_strata/tmp");

    // Kill the server once the first part of the big object reached the lake.
    let mut land = project
        .command(&["land"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let written = walkdir::WalkDir::new(&scratch)
            .into_iter()
            .filter_map(Result::ok)
            .any(|e| e.file_type().is_file() && e.metadata().is_ok_and(|m| m.len() > 0));
        if written {
            break;
        }
        if let Some(status) = land.try_wait().unwrap() {
            panic!("land finished ({status}) before the server could be killed");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no transfer began"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    let out = land.wait_with_output().unwrap();
    assert!(!out.status.success(), "a cut transfer fails the run");
    let stderr = stderr_of(&out);
    assert!(stderr.contains("s3://raw/big.csv"), "{stderr}");
    assert!(
        !stderr.contains(&server.secret),
        "credentials never printed"
    );
    let big_logged = logged(&lake, "orders")
        .await
        .into_iter()
        .filter(|r| r.source_path == "s3://raw/big.csv")
        .count();
    assert_eq!(big_logged, 0, "nothing half-landed in the log");
    assert!(files_under(&lake, "_strata/tmp").await.is_empty());
    let in_bronze = files_under(&lake, "bronze").await.len();
    assert_eq!(in_bronze, logged(&lake, "orders").await.len());

    // The server back (empty, as moto keeps objects in memory): the same objects land once.
    let mut server = S3Server::start(server.port);
    server.bucket("raw");
    server.put("raw", "big.csv", &big);
    server.put("raw", "small.csv", &small);
    project.envs = server.envs();
    let out = project.ok(&["land"]);
    assert!(out.contains("0 failed"), "{out}");
    let records = logged(&lake, "orders").await;
    let mut shas: Vec<&str> = records.iter().map(|r| r.sha256.as_str()).collect();
    shas.sort();
    let mut expected = [common::sha256(&big), common::sha256(&small)];
    expected.sort();
    assert_eq!(shas, expected, "each object exactly once");
    assert_eq!(files_under(&lake, "bronze").await.len(), 2);
    let out = project.ok(&["land"]);
    assert!(out.contains("0 landed, 2 already landed"), "{out}");
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.src_orders"),
        "6000010"
    );
}

/// A small model project over the landed orders, with the mini fixture's seeds and models.
const MODEL: &str = "select name, count(*) as n from {{ source('src', 'orders') }} group by name
";
const MODEL_SOURCES: &str = "version: 2
sources:
  - name: src
    schema: bronze
    tables:
      - name: orders
";

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_lake_lands_builds_and_queries() {
    let mut server = S3Server::start(0);
    server.bucket("raw");
    server.bucket("lake");
    server.put("raw", "in/a.csv", &csv_rows("a", 3));
    server.put("raw", "in/b.csv", &csv_rows("b", 2));
    let mut project = Project::new(LakeKind::Local, &s3_source(&server, "s3://raw/in", "*.csv"))
        .with_fixture("mini");
    project.envs = server.envs();
    std::fs::write(
        project.path("strata.toml"),
        format!(
            "[lake]\nroot = \"s3://lake/shop\"\n\n[lake.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\n",
            server.endpoint()
        ),
    )
    .unwrap();
    std::fs::write(project.path("models/marts/names.sql"), MODEL).unwrap();
    std::fs::write(project.path("models/sources.yml"), MODEL_SOURCES).unwrap();

    let out = project.ok(&["land"]);
    assert!(out.contains("Landing into s3://lake/shop"), "{out}");
    assert!(
        out.contains("2 landed, 0 already landed, 0 failed"),
        "{out}"
    );
    let out = project.ok(&["land"]);
    assert!(
        out.contains("0 landed, 2 already landed, 0 failed"),
        "{out}"
    );
    let bronze = server.keys("lake", "shop/bronze/");
    assert_eq!(bronze.len(), 2, "{bronze:?}");
    assert!(
        !server
            .keys("lake", "shop/_strata/ingest_log/_delta_log/")
            .is_empty(),
        "the ingest log commits to the bucket"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.src_orders"),
        "5"
    );

    // Seeds, views, tables and incremental merges write Delta tables into the bucket.
    let out = project.ok(&["build"]);
    assert!(out.contains("ERROR=0"), "{out}");
    assert_eq!(
        project.scalar("SELECT sum(amount_cents) FROM silver.stg_orders"),
        "17550"
    );
    let names = project.query("SELECT name, n FROM gold.names ORDER BY name LIMIT 2");
    assert_eq!(names[1..], [["a0", "1"], ["a1", "1"]]);
    assert!(
        server
            .keys("lake", "shop/gold/")
            .iter()
            .any(|k| k.contains("_delta_log/")),
        "gold tables are Delta tables in the bucket"
    );
    // A second build merges into the existing tables.
    let out = project.ok(&["build"]);
    assert!(out.contains("ERROR=0"), "{out}");
    assert_eq!(project.scalar("SELECT count(*) FROM gold.names"), "5");

    // The server reads the same tables from the bucket.
    let mut serve = project
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let addr = lines
        .find_map(|l| Some(l.ok()?.strip_prefix("listening on ")?.trim().to_string()))
        .expect("strata serve prints its address");
    let (host, port) = addr.rsplit_once(':').unwrap();
    let (client, connection) = tokio_postgres::connect(
        &format!("host={host} port={port} dbname=strata user=strata"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM gold.names) AS names, \
             (SELECT count(*) FROM bronze.src_orders) AS orders",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (5, 5));
    let _ = serve.kill();
    let _ = serve.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_failures_are_clear_and_keep_secrets_out() {
    let mut server = S3Server::start(0);
    server.bucket("raw");
    server.put("raw", "a.csv", &csv_rows("a", 1));

    // A missing bucket fails the source, naming its URL.
    let mut project = Project::new(
        LakeKind::Local,
        &s3_source(&server, "s3://no-such-bucket/x", "*.csv"),
    );
    project.envs = server.envs();
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("s3://no-such-bucket/x") && stderr.contains("NoSuchBucket"),
        "{stderr}"
    );

    // A wrong secret: refused, the URL named, the secret never printed.
    std::fs::write(
        project.path("catalog/sources.yml"),
        s3_source(&server, "s3://raw", "*.csv"),
    )
    .unwrap();
    project.envs[1].1 = "not-the-secret".into();
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("s3://raw") && stderr.contains("SignatureDoesNotMatch"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
    assert!(files_under(&project.lake(), "bronze").await.is_empty());

    // A lake in a missing bucket: the command fails naming the lake.
    project.envs = server.envs();
    std::fs::write(
        project.path("strata.toml"),
        format!(
            "[lake]\nroot = \"s3://no-lake-bucket/shop\"\n\n[lake.s3]\nendpoint = \"{}\"\nallow_http = true\n",
            server.endpoint()
        ),
    )
    .unwrap();
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("s3://no-lake-bucket/shop") && stderr.contains("NoSuchBucket"),
        "{stderr}"
    );

    // A declaration with a bad URL names the file.
    std::fs::write(
        project.path("catalog/sources.yml"),
        s3_source(&server, "s3:///nobucket", "*.csv"),
    )
    .unwrap();
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("sources.yml") && stderr.contains("bucket"),
        "{stderr}"
    );
}
