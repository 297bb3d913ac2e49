//! Strata on an Apache DataFusion Ballista cluster: a real scheduler and two executors, each a
//! separate `strata` process on loopback (ephemeral ports, own work directories), answering the
//! same queries as the in-process engine, with the same results.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{LakeKind, Project, commit_actions, csv_rows};
use strata::cluster::status::ClusterStatus;
use strata::generate::{GenerateArgs, generate};

/// A child process killed (SIGKILL) and reaped when dropped, panics included.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scheduler and its executors, stopped when dropped.
struct Cluster {
    /// `df://127.0.0.1:port`
    url: String,
    /// `http://127.0.0.1:port`
    status_url: String,
    /// The scheduler, then the executors.
    processes: Vec<Killed>,
    _work: tempfile::TempDir,
}

/// A port no one listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first line a child prints, within a minute.
fn first_line(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the scheduler printed where it listens")
}

impl Cluster {
    /// A scheduler and `executors` executors (one task slot each) for `project`'s lake.
    fn start(project: &Project, executors: usize) -> Self {
        let work = tempfile::tempdir().unwrap();
        let mut scheduler = project
            .command(&[
                "scheduler",
                "--port",
                "0",
                "--status-port",
                "0",
                "--executor-timeout",
                "6",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = first_line(&mut scheduler);
        let mut processes = vec![Killed(scheduler)];
        let address = |scheme: &str| {
            let at = line.find(scheme).unwrap_or_else(|| panic!("{line}"));
            line[at..]
                .split([',', ' ', '\n'])
                .next()
                .unwrap()
                .to_string()
        };
        let (url, status_url) = (address("df://"), address("http://"));
        for n in 0..executors {
            let dir = work.path().join(format!("executor-{n}"));
            let (flight, grpc) = (free_port().to_string(), free_port().to_string());
            let executor = project
                .command(&[
                    "executor",
                    "--cluster",
                    &url,
                    "--port",
                    &flight,
                    "--grpc-port",
                    &grpc,
                    "--work-dir",
                    dir.to_str().unwrap(),
                    "--concurrent-tasks",
                    "1",
                    "--heartbeat-interval",
                    "1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            processes.push(Killed(executor));
        }
        let cluster = Self {
            url,
            status_url,
            processes,
            _work: work,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while cluster.status().executors.len() < executors {
            assert!(
                Instant::now() < deadline,
                "the executors did not register within a minute"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cluster
    }

    /// Makes `project`'s commands use this cluster (`[cluster]` in its strata.toml).
    fn configure(&self, project: &Project) {
        let toml = std::fs::read_to_string(project.path("strata.toml")).unwrap();
        let section = format!(
            "\n[cluster]\nscheduler = {:?}\nstatus = {:?}\n",
            self.url, self.status_url
        );
        std::fs::write(project.path("strata.toml"), toml + &section).unwrap();
    }

    /// The scheduler's view, read as `strata cluster status` reads it.
    fn status(&self) -> ClusterStatus {
        let url = url::Url::parse(&self.status_url).unwrap();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(strata::cluster::status::fetch(&url))
            .unwrap()
    }

    /// CSV rows (header first) of `sql` run on the cluster.
    fn query(&self, project: &Project, sql: &str) -> Vec<Vec<String>> {
        let out = project.ok(&["--cluster", &self.url, "sql", "--format", "csv", "-c", sql]);
        csv_rows(&out)
    }
}

/// A shop project with two drifting batches generated and landed.
fn landed_shop(kind: LakeKind) -> Project {
    let project = Project::shop(kind);
    let mut args = GenerateArgs::new(project.path("drop"));
    args.scale = 2000;
    args.batches = 2;
    generate(&args).unwrap();
    project.ok(&["land"]);
    project
}

const TABLES: [&str; 7] = [
    "customers",
    "products",
    "orders",
    "order_items",
    "payments",
    "shipments",
    "events",
];

fn bronze_reads_match_in_process(kind: LakeKind) {
    let project = landed_shop(kind);
    let cluster = Cluster::start(&project, 2);
    let mut queries = Vec::new();
    for table in TABLES {
        queries.push(format!(
            "SELECT count(*), count(DISTINCT _file), min(_ingested_at) FROM bronze.shop_{table}"
        ));
        queries.push(format!(
            "SELECT count(*), count(DISTINCT reason) FROM bronze.shop_{table}__rejected"
        ));
    }
    queries.push(
        "SELECT c.customer_id, count(*) AS orders, count(DISTINCT o.order_id) AS distinct_orders \
         FROM bronze.shop_orders o JOIN bronze.shop_customers c ON o.customer_id = c.customer_id \
         GROUP BY c.customer_id ORDER BY orders DESC, c.customer_id LIMIT 20"
            .to_string(),
    );
    queries.push(
        "SELECT event_type, count(*) FROM bronze.shop_events GROUP BY event_type ORDER BY 1"
            .to_string(),
    );
    queries.push(
        "SELECT count(*) FROM read_csv('drop/orders/*.csv') WHERE order_id IS NOT NULL".to_string(),
    );
    for sql in &queries {
        assert_eq!(
            cluster.query(&project, sql),
            project.query(sql),
            "on the cluster and in process: {sql}"
        );
    }
    // Catalog queries stay here and still answer.
    let tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'bronze'";
    assert_eq!(cluster.query(&project, tables), project.query(tables));

    let status = cluster.status();
    let executors: Vec<&str> = status.executors.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(executors.len(), 2, "{status:?}");
    assert!(
        status
            .jobs
            .iter()
            .any(|job| job.state == "successful" && job.tasks.len() == 2),
        "some job ran tasks on both executors: {status:#?}"
    );
    // Every query read files on the cluster but one: Parquet files have no rejected records,
    // which is known without reading them.
    assert_eq!(
        status.jobs.len(),
        queries.len() - 1,
        "every query that reads files was a job: {status:#?}"
    );
    let printed = project.ok(&["cluster", "status", "--status", &cluster.status_url]);
    assert!(
        printed.contains("2 executor(s), 2 task slot(s)"),
        "{printed}"
    );
}

#[test]
fn bronze_reads_on_the_cluster_match_in_process_on_local_disk() {
    bronze_reads_match_in_process(LakeKind::Local);
}

#[test]
fn bronze_reads_on_the_cluster_match_in_process_on_hdfs() {
    bronze_reads_match_in_process(LakeKind::Hdfs);
}

/// The mini project's second batch of raw orders: order 2 updated, order 4 new, order 0 late.
const BATCH_2: &str = "order_id,customer_id,amount,order_date,loaded_at\n\
                       1,10,100.0,2026-01-01,1\n2,11,55.0,2026-01-01,2\n3,10,25.5,2026-01-02,1\n\
                       4,12,10.0,2026-01-03,2\n0,12,7.25,2025-12-31,2\n";

/// Delta tables are read on the cluster as the Parquet files of the version asked for.
#[test]
fn delta_tables_and_time_travel_on_the_cluster_match_in_process() {
    let project = Project::new(LakeKind::Local, "sources: []\n").with_fixture("mini");
    project.ok(&["build"]);
    std::fs::write(project.path("seeds/raw_orders.csv"), BATCH_2).unwrap();
    project.ok(&["build"]);
    let cluster = Cluster::start(&project, 2);
    for sql in [
        "SELECT * FROM gold.fct_orders ORDER BY order_id",
        "SELECT * FROM gold.fct_orders VERSION AS OF 0 ORDER BY order_id",
        "SELECT d.name, sum(f.amount) FROM gold.fct_orders f JOIN gold.dim_customers d \
         ON f.customer_id = d.customer_id GROUP BY d.name ORDER BY 1",
        "SELECT count(*), sum(amount_cents) FROM silver.stg_orders",
        "SELECT * FROM raw.raw_orders ORDER BY order_id",
    ] {
        assert_eq!(
            cluster.query(&project, sql),
            project.query(sql),
            "on the cluster and in process: {sql}"
        );
    }
    let status = cluster.status();
    assert!(
        status.jobs.iter().any(|job| job.state == "successful"),
        "the Delta reads ran as jobs: {status:#?}"
    );
}

/// The mini project built on the cluster over two batches of raw orders: the incremental
/// models' merge and append, the tables and seeds give the rows and versions they give in
/// process, and each node's files are written by jobs named for it (listed in the build log).
#[test]
fn incremental_models_across_two_batches_on_the_cluster_match_in_process() {
    let in_process = Project::new(LakeKind::Local, "sources: []\n").with_fixture("mini");
    let on_cluster = Project::new(LakeKind::Local, "sources: []\n").with_fixture("mini");
    let cluster = Cluster::start(&on_cluster, 2);
    cluster.configure(&on_cluster);
    let queries = [
        "SELECT * FROM gold.fct_orders ORDER BY order_id",
        "SELECT * FROM gold.events_log ORDER BY order_id, loaded_at",
        "SELECT * FROM gold.dim_customers ORDER BY customer_id",
        "SELECT * FROM raw.raw_orders ORDER BY order_id",
        "SELECT node, delta_version FROM _strata.runs WHERE delta_version IS NOT NULL \
         ORDER BY run_id IS NULL, node, delta_version",
    ];
    let mut log = String::new();
    for batch in [None, Some(BATCH_2)] {
        for project in [&in_process, &on_cluster] {
            if let Some(rows) = batch {
                std::fs::write(project.path("seeds/raw_orders.csv"), rows).unwrap();
            }
            let out = project.ok(&["build"]);
            assert!(out.contains("ERROR=0"), "{out}");
            log = out;
        }
        if batch.is_none() {
            // The tasks' small files are pooled into one before the commit, as in process.
            let first = commit_actions(&on_cluster.path("lake/gold/dim_customers"), 0);
            let adds = first.iter().filter(|a| a.get("add").is_some()).count();
            assert_eq!(adds, 1, "one file for a small table: {first:?}");
        }
        for sql in queries {
            assert_eq!(
                cluster.query(&on_cluster, sql),
                in_process.query(sql),
                "on the cluster and in process: {sql}"
            );
        }
    }
    // The keyed increment's MERGE runs in the client (delta-rs plans its own join).
    for node in [
        "model.mini.events_log",
        "model.mini.dim_customers",
        "seed.mini.raw_orders",
    ] {
        assert!(
            log.contains(&format!("  {node}: ")),
            "{node} in the build log: {log}"
        );
    }
    let status = cluster.status();
    assert!(
        status
            .jobs
            .iter()
            .any(|job| job.name == "model.mini.dim_customers"
                && job.state == "successful"
                && !job.tasks.is_empty()),
        "the table's files were written by a job of its own: {status:#?}"
    );
}

/// `strata repl` with a cluster answers piped statements from it, as in process.
#[test]
fn the_repl_answers_from_the_cluster() {
    let project = Project::new(LakeKind::Local, "sources: []\n").with_fixture("mini");
    project.ok(&["build"]);
    let statements = "SELECT customer_id, sum(amount) AS amount FROM gold.fct_orders \
                      GROUP BY customer_id ORDER BY customer_id;\n\
                      SELECT count(*) FROM raw.raw_orders o JOIN gold.dim_customers d \
                      ON o.customer_id = d.customer_id;\n";
    let repl = |args: &[&str]| {
        let mut child = project
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), statements.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let expected = repl(&["repl"]);
    assert!(expected.contains("amount"), "{expected}");
    let cluster = Cluster::start(&project, 2);
    assert_eq!(repl(&["--cluster", &cluster.url, "repl"]), expected);
    let status = cluster.status();
    assert_eq!(
        status
            .jobs
            .iter()
            .filter(|job| job.state == "successful")
            .count(),
        2,
        "each statement ran as a job: {status:#?}"
    );
}

/// A scheduler that is not there is named in the error.
#[test]
fn a_stopped_scheduler_is_named_in_the_error() {
    let project = Project::new(LakeKind::Local, "sources: []\n").with_fixture("mini");
    project.ok(&["seed"]);
    let url = format!("df://127.0.0.1:{}", free_port());
    let out = project.run(&[
        "--cluster",
        &url,
        "sql",
        "-c",
        "SELECT count(*) FROM raw.raw_orders",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&url), "the error names {url}: {stderr}");

    let status = project.run(&["--cluster", &url, "cluster", "status"]);
    assert!(!status.status.success());
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("127.0.0.1:50080"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// Each silver and gold table's rows, sorted, as one digest per table.
fn table_digests(project: &Project) -> std::collections::BTreeMap<String, (usize, String)> {
    let tables = project.query(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables \
         WHERE table_schema IN ('silver', 'gold') AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    tables[1..]
        .iter()
        .map(|row| {
            let out = project.ok(&[
                "sql",
                "--format",
                "csv",
                "-c",
                &format!("SELECT * FROM {}", row[0]),
            ]);
            let mut lines: Vec<&str> = out.lines().collect();
            lines.sort_unstable();
            (
                row[0].clone(),
                (lines.len() - 1, common::sha256(lines.join("\n").as_bytes())),
            )
        })
        .collect()
}

/// The example project over two landed batches, built in process, with its tables' digests.
fn built_example_project(
    kind: LakeKind,
) -> (Project, std::collections::BTreeMap<String, (usize, String)>) {
    let project = landed_shop(kind);
    common::copy_example_project(&project.path(""));
    project.ok(&["build"]);
    let digests = table_digests(&project);
    assert!(digests.len() >= 10, "{digests:?}");
    (project, digests)
}

/// The example project built on the cluster gives the same rows in every silver and gold
/// table as built in process, and its queries ran on both executors.
fn the_example_project_built_on_the_cluster_matches_in_process(kind: LakeKind) {
    let (project, in_process) = built_example_project(kind);
    let cluster = Cluster::start(&project, 2);
    cluster.configure(&project);
    let out = project.ok(&["build", "--full-refresh"]);
    assert!(out.contains("ERROR=0"), "{out}");
    let log = out.lines().last().unwrap();
    let nodes = log.matches("127.0.0.1:").count();
    assert!(
        log.contains("job(s) on the cluster") && nodes == 2,
        "the build log names both nodes: {log}"
    );
    assert_eq!(table_digests(&project), in_process);
    let status = cluster.status();
    let executors: std::collections::BTreeSet<&String> = status
        .jobs
        .iter()
        .flat_map(|job| job.tasks.keys())
        .collect();
    assert_eq!(
        executors.len(),
        2,
        "the build's tasks ran on both executors: {status:#?}"
    );

    // A row breaking agg_daily_revenue's contract fails the model on the cluster too: no row
    // is written, and the table keeps its check constraint (dropped for the changed one and
    // added back). Its log is read on local disk.
    if !matches!(kind, LakeKind::Local) {
        return;
    }
    let properties = project.path("models/gold/_gold.yml");
    let text = std::fs::read_to_string(&properties).unwrap();
    let broken = text.replace(
        r#"expression: "orders > 0""#,
        r#"expression: "orders > 1000000""#,
    );
    assert_ne!(text, broken);
    std::fs::write(&properties, broken).unwrap();
    let table = project.path("lake/gold/agg_daily_revenue");
    let versions = || std::fs::read_dir(table.join("_delta_log")).unwrap().count() as u64;
    let before = versions();
    let out = project.run(&["run", "-s", "agg_daily_revenue"]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{printed}");
    assert!(printed.contains("orders > 1000000"), "{printed}");
    let since: Vec<serde_json::Value> = (before..versions())
        .flat_map(|version| commit_actions(&table, version))
        .collect();
    assert!(since.iter().all(|a| a.get("add").is_none()), "{since:?}");
    let last_metadata = since
        .iter()
        .rev()
        .find_map(|a| a.get("metaData"))
        .expect("the constraint was dropped and added back");
    assert_eq!(
        last_metadata["configuration"]["delta.constraints.orders_check_1"],
        "orders > 0"
    );
}

#[test]
fn the_example_project_built_on_the_cluster_matches_in_process_on_local_disk() {
    the_example_project_built_on_the_cluster_matches_in_process(LakeKind::Local);
}

#[test]
fn the_example_project_built_on_the_cluster_matches_in_process_on_hdfs() {
    the_example_project_built_on_the_cluster_matches_in_process(LakeKind::Hdfs);
}

/// An executor killed (SIGKILL, by PID) in the middle of a build: the build ends by itself,
/// its lost tasks rerun on the other executor or the model fails, and no table is left with
/// anything but its rows of a complete build. The next build on the one executor left works.
#[test]
fn an_executor_killed_mid_build_leaves_every_table_whole() {
    use std::io::BufRead;
    let (project, in_process) = built_example_project(LakeKind::Local);
    let mut cluster = Cluster::start(&project, 2);
    cluster.configure(&project);
    let mut build = project
        .command(&["build", "--full-refresh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(build.stdout.take().unwrap()).lines();
    // The first node's result: the build is under way.
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains(" of "))
        .expect("the build reports its first node");
    let victim = cluster.processes.pop().unwrap();
    let pid = victim.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(victim);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = build.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the build did not end after {started}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.starts_with("Finished in")),
        "the build ran to its end (exit {status}): {rest:?}"
    );
    assert_eq!(
        table_digests(&project),
        in_process,
        "every table holds a complete build's rows"
    );
    let out = project.ok(&["build", "--full-refresh"]);
    assert!(out.contains("ERROR=0"), "{out}");
    assert_eq!(table_digests(&project), in_process);
}

/// `strata serve` on a cluster: psql's join and aggregate run as cluster jobs, its catalog
/// queries here, with the same answers as in process.
#[test]
fn serve_answers_psql_from_the_cluster() {
    let (project, _) = built_example_project(LakeKind::Local);
    let sql = "SELECT c.country_code, count(*) AS orders, sum(o.amount) AS amount \
               FROM gold.fct_orders o JOIN gold.dim_customers c ON o.customer_id = c.customer_id \
               GROUP BY 1 ORDER BY 2 DESC, 1";
    let expected = project.query(sql);
    let bronze = "SELECT count(*) FROM bronze.shop_events";
    let expected_bronze = project.query(bronze);
    let cluster = Cluster::start(&project, 2);
    cluster.configure(&project);
    let mut server = project
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = first_line(&mut server);
    let _server = Killed(server);
    let address = line.trim().rsplit(' ').next().unwrap().to_string();
    let (host, port) = address.rsplit_once(':').unwrap();
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args(["-h", host, "-p", port, "-U", "strata", "-d", "strata"])
            .args(["--csv", "-c", sql])
            .output()
            .expect("psql is installed (scripts/test)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        csv_rows(&String::from_utf8(out.stdout).unwrap())
    };
    let before = cluster.status().jobs.len();
    assert_eq!(psql(sql)[1..], expected[1..]);
    assert_eq!(psql(bronze), expected_bronze);
    assert_eq!(
        cluster.status().jobs.len(),
        before + 2,
        "both ran on the cluster"
    );
    let tables = psql("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'gold'");
    assert_ne!(tables[1][0], "0");
}
