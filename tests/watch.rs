//! Continuous landing and building: `strata land --watch` (interval and cron `schedule`s,
//! SIGTERM finishing the batch at hand, a second signal abandoning it) and `strata build
//! --watch` rebuilding what reads newly landed data. The real binary runs as a child process;
//! the slow batch is a real PostgreSQL query.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{LakeKind, Project, logged, pg, pg_conn};
use strata::lake::Lake;

/// A `strata … --watch` child whose stdout is collected as it comes.
struct Watcher {
    child: Child,
    stdout: Arc<Mutex<String>>,
}

impl Watcher {
    fn start(project: &Project, args: &[&str]) -> Self {
        let mut child = project
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let reader = BufReader::new(child.stdout.take().unwrap());
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                let mut out = sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        Self { child, stdout }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for `what` to show in stdout.
    async fn wait_for_output(&mut self, what: &str) {
        self.wait_until(what, |w| w.stdout().contains(what)).await;
    }

    async fn wait_until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{}", self.exited_early(status, what));
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "timed out waiting for {what}; stdout:\n{}",
                self.stdout()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the exited process wrote to stderr.
    fn stderr(&mut self) -> String {
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        stderr
    }

    fn exited_early(&mut self, status: ExitStatus, what: &str) -> String {
        let stderr = self.stderr();
        format!(
            "exited ({status}) before {what}:\n{}\n{stderr}",
            self.stdout()
        )
    }

    /// Waits for the process to exit after a stop, insisting it does so cleanly.
    async fn stopped(mut self) -> String {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread may still be draining the pipe.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let stderr = self.stderr();
                assert!(
                    status.success(),
                    "a stopped watch exits 0, got {status}:\n{}\n{stderr}",
                    self.stdout()
                );
                return self.stdout();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "did not stop within a minute:\n{}",
                self.stdout()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_logged(watcher: &mut Watcher, lake: &Lake, table: &str, n: usize) {
    let started = Instant::now();
    while logged(lake, table).await.len() < n {
        if let Some(status) = watcher.child.try_wait().unwrap() {
            panic!(
                "{}",
                watcher.exited_early(status, &format!("{n} files of {table}"))
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{table}: {n} files not landed in 90 s; stdout:\n{}",
            watcher.stdout()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write(project: &Project, rel: &str, body: &str) {
    let path = project.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

const FOLDERS: &str = "
sources:
  - name: fast
    kind: folder
    location: drop/fast
    schedule: '* * * * * *'
    tables:
      - name: orders
        pattern: '*.csv'
        format: csv
  - name: slow
    kind: folder
    location: drop/slow
    tables:
      - name: customers
        pattern: '*.csv'
        format: csv
";

/// Sources without a schedule land at once and then every --interval; a source with a cron
/// schedule (here every second) lands on it. New files land once each, and SIGTERM stops.
#[tokio::test(flavor = "multi_thread")]
async fn land_watch_follows_intervals_and_schedules() {
    let project = Project::new(LakeKind::Local, FOLDERS);
    write(&project, "drop/fast/a.csv", "id,v\n1,a\n");
    write(&project, "drop/slow/a.csv", "id,name\n1,ann\n");
    let lake = project.lake();
    let mut watcher = Watcher::start(&project, &["land", "--watch", "--interval", "1h"]);
    wait_logged(&mut watcher, &lake, "orders", 1).await;
    wait_logged(&mut watcher, &lake, "customers", 1).await;

    write(&project, "drop/fast/b.csv", "id,v\n2,b\n");
    write(&project, "drop/slow/b.csv", "id,name\n2,bob\n");
    wait_logged(&mut watcher, &lake, "orders", 2).await;
    // The scheduled source went on landing every second meanwhile; the other waits an hour.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(logged(&lake, "customers").await.len(), 1);
    assert_eq!(logged(&lake, "orders").await.len(), 2, "each file once");

    watcher.signal(libc::SIGTERM);
    let out = watcher.stopped().await;
    assert!(out.contains("landing fast"), "{out}");
    assert!(out.contains("Stopped"), "{out}");

    // A plain land still lands everything, schedules or not.
    let out = project.ok(&["land"]);
    assert!(out.contains("1 landed"), "{out}");
    assert_eq!(logged(&lake, "customers").await.len(), 2);
}

#[test]
fn a_bad_schedule_names_the_file_and_the_expression() {
    let project = Project::new(
        LakeKind::Local,
        &FOLDERS.replace("'* * * * * *'", "'every hour'"),
    );
    let out = project.run(&["land", "--watch"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sources.yml") && stderr.contains("every hour"),
        "{stderr}"
    );
}

/// A source whose extract takes seconds: a PostgreSQL query sleeping in the server.
fn slow_source(name: &str) -> String {
    format!(
        "
sources:
  - name: {name}
    kind: postgres
    connection: '{}'
    tables:
      - name: numbers
        query: SELECT g AS n FROM generate_series(1, 3) AS g, pg_sleep(4) AS s
",
        pg_conn()
    )
}

/// Waits until the slow extract is running in PostgreSQL.
async fn extract_running(watcher: &mut Watcher, source: &str) {
    let client = pg().await;
    let app = format!("strata-land {source}.numbers");
    let started = Instant::now();
    loop {
        let rows = client
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'active' AND query LIKE '%pg_sleep%'",
                &[&app],
            )
            .await
            .unwrap();
        if !rows.is_empty() {
            return;
        }
        if let Some(status) = watcher.child.try_wait().unwrap() {
            panic!("{}", watcher.exited_early(status, "the extract"));
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no extract");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One SIGTERM during a batch lets it finish and commit; the watch then stops.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_batch_at_hand() {
    let source = format!("slow_finish_{}", std::process::id());
    let project = Project::new(LakeKind::Local, &slow_source(&source));
    let lake = project.lake();
    let mut watcher = Watcher::start(&project, &["land", "--watch"]);
    extract_running(&mut watcher, &source).await;
    watcher.signal(libc::SIGTERM);
    let out = watcher.stopped().await;
    assert!(out.contains("1 landed"), "{out}");
    assert_eq!(logged(&lake, "numbers").await.len(), 1);
    assert_eq!(
        project.scalar(&format!("SELECT sum(n) FROM bronze.{source}_numbers")),
        "6"
    );
}

/// A second signal abandons the batch: nothing of it is committed, and the next land lands it.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_abandons_the_batch_at_hand() {
    let source = format!("slow_abandon_{}", std::process::id());
    let project = Project::new(LakeKind::Local, &slow_source(&source));
    let lake = project.lake();
    let mut watcher = Watcher::start(&project, &["land", "--watch"]);
    extract_running(&mut watcher, &source).await;
    let started = Instant::now();
    watcher.signal(libc::SIGINT);
    tokio::time::sleep(Duration::from_millis(200)).await;
    watcher.signal(libc::SIGINT);
    let out = watcher.stopped().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "abandoning does not wait for the extract"
    );
    assert!(out.contains("abandoned"), "{out}");
    assert!(logged(&lake, "numbers").await.is_empty());

    let out = project.ok(&["land"]);
    assert!(out.contains("0 failed"), "{out}");
    assert_eq!(
        project.scalar(&format!("SELECT count(*) FROM bronze.{source}_numbers")),
        "3"
    );
}

const SHOP: &str = "
sources:
  - name: shop
    kind: folder
    location: drop
    tables:
      - name: orders
        pattern: 'orders/*.csv'
        format: csv
      - name: customers
        pattern: 'customers/*.csv'
        format: csv
";

/// A dbt project over the shop's bronze tables: an incremental model over orders (appending
/// rows landed after its last build) with a table downstream, and a model over customers.
fn shop_models(project: &Project) {
    write(
        project,
        "dbt_project.yml",
        "name: shop\nprofile: shop\nversion: '1.0'\nmodels:\n  shop:\n    +schema: gold\n",
    );
    write(
        project,
        "models/sources.yml",
        "version: 2\nsources:\n  - name: shop\n    schema: bronze\n    tables:\n      - name: orders\n      - name: customers\n",
    );
    write(
        project,
        "models/orders.sql",
        "{{ config(materialized='incremental') }}
select id, amount, _ingested_at from {{ source('shop', 'orders') }}
{% if is_incremental() %}
where _ingested_at > (select max(_ingested_at) from {{ this }})
{% endif %}
",
    );
    write(
        project,
        "models/revenue.sql",
        "{{ config(materialized='table') }}\nselect count(*) as orders, sum(amount) as revenue from {{ ref('orders') }}\n",
    );
    write(
        project,
        "models/customer_count.sql",
        "{{ config(materialized='table') }}\nselect count(*) as n from {{ source('shop', 'customers') }}\n",
    );
}

/// `build --watch` builds everything once, then after each land just what reads the tables
/// that received files: the incremental model takes the new rows, its child is rebuilt, and
/// the model over customers is left alone.
#[tokio::test(flavor = "multi_thread")]
async fn build_watch_rebuilds_what_reads_new_data() {
    let project = Project::new(LakeKind::Local, SHOP);
    shop_models(&project);
    write(&project, "drop/orders/1.csv", "id,amount\n1,10\n2,20\n");
    write(&project, "drop/customers/1.csv", "id,name\n1,ann\n");
    project.ok(&["land"]);

    let mut watcher = Watcher::start(&project, &["build", "--watch", "--interval", "1s"]);
    watcher.wait_for_output("Watching").await;
    assert_eq!(
        project.query("SELECT orders, revenue FROM gold.revenue")[1],
        ["2", "30"]
    );

    write(&project, "drop/orders/2.csv", "id,amount\n3,30\n");
    project.ok(&["land"]);
    watcher
        .wait_until("the rebuild", |w| {
            w.stdout().matches("Finished in").count() == 2
        })
        .await;
    watcher.signal(libc::SIGTERM);
    let out = watcher.stopped().await;
    assert!(out.contains("Landed in shop.orders"), "{out}");
    assert_eq!(
        project.query("SELECT orders, revenue FROM gold.revenue")[1],
        ["3", "60"]
    );
    assert_eq!(project.scalar("SELECT count(*) FROM gold.orders"), "3");
    // Two runs: the first built all three models, the second only orders and revenue.
    let runs = project.query("SELECT node, count(*) FROM _strata.runs GROUP BY node ORDER BY node");
    assert_eq!(
        runs[1..],
        [
            ["model.shop.customer_count", "1"],
            ["model.shop.orders", "2"],
            ["model.shop.revenue", "2"],
        ]
    );
}
