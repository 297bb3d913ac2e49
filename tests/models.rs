//! SQL models run like dbt's, on a local lake and on the real HDFS: every materialization,
//! incremental merges across batches with updated and late rows, selection, static checks
//! before anything runs, test severities, failure isolation, and Delta tables another reader
//! opens with the same rows.

mod common;

use std::process::Command;

use common::{LakeKind, Project, commit_actions, in_python, outcome, write_files};

const NO_SOURCES: &str = "sources: []\n";

fn mini(kind: LakeKind) -> Project {
    Project::new(kind, NO_SOURCES).with_fixture("mini")
}

/// The second batch of raw orders: order 2 updated, order 4 new, order 0 late (an old date).
const BATCH_2: &str = "order_id,customer_id,amount,order_date,loaded_at
1,10,100.0,2026-01-01,1
2,11,55.0,2026-01-01,2
3,10,25.5,2026-01-02,1
4,12,10.0,2026-01-03,2
0,12,7.25,2025-12-31,2
";

fn builds_every_materialization(kind: LakeKind) {
    let project = mini(kind);
    let out = project.ok(&["build"]);
    assert!(
        out.contains("PASS=11 WARN=0 ERROR=0 SKIP=0 TOTAL=11"),
        "{out}"
    );
    // seed, view, table (through an ephemeral model), incremental with and without a key
    assert_eq!(project.scalar("SELECT count(*) FROM raw.raw_orders"), "3");
    assert_eq!(
        project.scalar("SELECT sum(amount_cents) FROM silver.stg_orders"),
        "17550"
    );
    let dims = project
        .query("SELECT customer_id, name, orders FROM gold.dim_customers ORDER BY customer_id");
    assert_eq!(
        dims[1..],
        [
            ["10", "ADA", "2"],
            ["11", "GRACE", "1"],
            ["12", "LINUS", "0"]
        ]
    );
    let kinds = project.query(
        "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables \
         WHERE table_schema IN ('raw', 'silver', 'gold') ORDER BY 1",
    );
    assert_eq!(
        kinds[1..],
        [
            ["gold.dim_customers", "BASE TABLE"],
            ["gold.events_log", "BASE TABLE"],
            ["gold.fct_orders", "BASE TABLE"],
            ["raw.raw_customers", "BASE TABLE"],
            ["raw.raw_orders", "BASE TABLE"],
            ["silver.stg_orders", "VIEW"],
        ]
    );

    // Written types are the query's final types (a CASE mixing 0 and a decimal is a decimal).
    let amount =
        project.query("SELECT arrow_typeof(amount), sum(amount) FROM gold.fct_orders GROUP BY 1");
    assert_eq!(amount[1], ["Decimal128(22, 2)", "175.50"]);

    // Batch 2: the keyed model merges (update + late + new), the keyless one appends.
    std::fs::write(project.path("seeds/raw_orders.csv"), BATCH_2).unwrap();
    let out = project.ok(&["build"]);
    assert!(out.contains("incremental gold.fct_orders"), "{out}");
    let orders = project.query("SELECT order_id, amount FROM gold.fct_orders ORDER BY order_id");
    assert_eq!(
        orders[1..],
        [
            ["0", "7.25"],
            ["1", "100.00"],
            ["2", "55.00"],
            ["3", "25.50"],
            ["4", "10.00"]
        ]
    );
    assert_eq!(project.scalar("SELECT count(*) FROM gold.events_log"), "6");
    assert_eq!(
        project.scalar("SELECT count(*) FROM gold.events_log WHERE loaded_at = 2"),
        "3"
    );

    // --full-refresh rebuilds from scratch.
    project.ok(&["run", "-s", "events_log", "--full-refresh"]);
    assert_eq!(project.scalar("SELECT count(*) FROM gold.events_log"), "5");

    // Every node of every run is in the run log, with the Delta version it wrote.
    let runs = project.query(
        "SELECT count(DISTINCT run_id), max(delta_version) FROM _strata.runs WHERE node = 'model.mini.fct_orders'",
    );
    assert_eq!(runs[1], ["2", "1"]);
}

#[test]
fn builds_every_materialization_on_local_disk() {
    builds_every_materialization(LakeKind::Local);
}

#[test]
fn builds_every_materialization_on_hdfs() {
    builds_every_materialization(LakeKind::Hdfs);
}

/// `strata sql` keeps a query's limit and offset on every kind of relation a build makes (a
/// seed, a view, tables and incremental tables, read for no columns) and on the run log.
#[test]
fn limits_hold_on_every_materialization() {
    let project = mini(LakeKind::Local);
    project.ok(&["build"]);
    let relations = project.query(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables \
         WHERE table_schema NOT IN ('information_schema', 'pg_catalog', 'bronze', 'public') \
         ORDER BY 1",
    );
    let relations: Vec<&str> = relations[1..].iter().map(|r| r[0].as_str()).collect();
    assert!(relations.len() >= 6, "{relations:?}");
    for relation in relations {
        let count: usize = project
            .scalar(&format!("SELECT count(*) FROM {relation}"))
            .parse()
            .unwrap();
        for (clause, expected) in [
            ("LIMIT 1", count.min(1)),
            ("LIMIT 2 OFFSET 1", count.saturating_sub(1).min(2)),
        ] {
            let rows = project.query(&format!("SELECT 1 FROM {relation} {clause}"));
            assert_eq!(rows.len() - 1, expected, "{relation} {clause}: {rows:?}");
        }
    }
}

/// The versions fixture's feed folder (its `ranked` model reads `seeds/feed.csv` raw).
const FEED_FOLDER: &str = "sources:
  - name: raw
    kind: folder
    location: seeds
    tables:
      - name: feed
        pattern: 'feed.csv'
        format: csv
";

/// Re-sent records are collapsed the way dbt users write it: `row_number() ... = 1` with a
/// `count(*)` over the same keys. Strata plans that as one pass of hash grouping; it must
/// agree with the whole window, NULL keys included (they form one partition, as in the window).
#[test]
fn a_dedupe_matches_the_whole_window() {
    let project = Project::new(LakeKind::Local, FEED_FOLDER).with_fixture("versions");
    let build = project.run(&["build"]);
    let (out, err) = (
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr),
    );
    assert!(
        build.status.success() && out.contains("PASS=4 WARN=0 ERROR=0 SKIP=0 TOTAL=4"),
        "{out}\n{err}"
    );
    // Writing a timestamp (windowed.seen_at) to Delta logs nothing.
    assert!(err.is_empty(), "{err}");
    let kept = project.query(
        "SELECT k1, k2, val, n_versions FROM silver.ranked WHERE version_rank = 1 \
         ORDER BY k1 NULLS LAST, k2 NULLS LAST",
    );
    assert_eq!(
        kept[1..],
        [
            ["1", "1", "b", "3"],
            ["1", "2", "d", "1"],
            ["1", "", "j", "1"],
            ["2", "1", "e", "3"],
            ["3", "1", "g", "1"],
            ["4", "4", "l", "1"],
            ["", "1", "i", "2"],
            ["", "", "k", "1"],
        ]
    );
}

#[test]
fn selection_follows_dbt_syntax() {
    let project = mini(LakeKind::Local);
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ls"];
        all.extend_from_slice(args);
        project
            .ok(&all)
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect()
    };
    let downstream = names(&["-s", "stg_orders+", "--exclude", "resource_type:test"]);
    assert_eq!(
        downstream,
        ["stg_orders", "dim_customers", "events_log", "fct_orders"]
    );
    assert_eq!(names(&["-s", "+stg_orders"]), ["raw_orders", "stg_orders"]);
    assert_eq!(
        names(&[
            "-s",
            "tag:nightly",
            "--exclude",
            "resource_type:test",
            "fct_orders"
        ]),
        ["dim_customers", "events_log"]
    );
    assert_eq!(names(&["-s", "path:models/staging"]), ["stg_orders"]);
}

#[test]
fn static_errors_are_reported_before_anything_runs() {
    let project = mini(LakeKind::Local);
    std::fs::write(
        project.path("models/marts/dim_customers.sql"),
        "select customer_id, no_such_column from {{ ref('customer_base') }}",
    )
    .unwrap();
    for command in ["compile", "build"] {
        let out = project.run(&[command]);
        assert!(!out.status.success(), "{command} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("models/marts/dim_customers.sql") && stderr.contains("no_such_column"),
            "{command}: {stderr}"
        );
    }
    assert!(
        !project.path("lake/raw").exists(),
        "nothing ran, not even seeds"
    );

    std::fs::write(
        project.path("models/marts/dim_customers.sql"),
        "select * from {{ ref('nope') }}",
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&project.run(&["compile"]).stderr).to_string();
    assert!(
        stderr.contains("nope") && stderr.contains("dim_customers"),
        "{stderr}"
    );
}

/// The line a compile error names, read out of `stderr` after `file line `.
fn error_line(stderr: &str, file: &str) -> usize {
    let after = stderr
        .split_once(&format!("{file} line "))
        .unwrap_or_else(|| panic!("no {file} line in: {stderr}"))
        .1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

#[test]
fn compile_errors_name_the_compiled_file_and_the_models_own_line() {
    let project = mini(LakeKind::Local);
    // A bad column inside a macro's expansion, and one written in the model (below a config
    // line, in a model whose ephemeral parent becomes a CTE above it in the compiled SQL).
    std::fs::write(
        project.path("macros/fees.sql"),
        "{% macro with_fee(column) -%}\n    {{ column }}\n      + fee_cents\n{%- endmacro %}\n",
    )
    .unwrap();
    std::fs::write(
        project.path("models/marts/fees.sql"),
        "select order_id,\n       {{ with_fee('amount') }} as total\nfrom {{ ref('stg_orders') }}\n",
    )
    .unwrap();
    std::fs::write(
        project.path("models/marts/dim_customers.sql"),
        "{{ config(materialized='table') }}\nselect c.customer_id,\n       c.no_such_column\nfrom {{ ref('customer_base') }} c\n",
    )
    .unwrap();
    let out = project.run(&["build"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let compiled_line = |file: &str| {
        let line = error_line(&stderr, file);
        let text = std::fs::read_to_string(project.path(file))
            .unwrap_or_else(|e| panic!("{file} is written: {e}\n{stderr}"));
        text.lines().nth(line - 1).unwrap_or_default().to_string()
    };

    let fees = "target/compiled/mini/models/marts/fees.sql";
    assert!(compiled_line(fees).contains("fee_cents"), "{stderr}");
    assert!(
        stderr.contains("in SQL expanded from the Jinja on models/marts/fees.sql line 2"),
        "{stderr}"
    );

    let dim = "target/compiled/mini/models/marts/dim_customers.sql";
    assert!(compiled_line(dim).contains("c.no_such_column"), "{stderr}");
    assert!(
        error_line(&stderr, dim) > 3,
        "the CTE comes first: {stderr}"
    );
    assert!(
        stderr.contains("(models/marts/dim_customers.sql line 3, column 8)"),
        "{stderr}"
    );

    // Nodes that plan are written too: models, and generic tests under their properties file.
    assert!(
        project
            .path("target/compiled/mini/models/staging/stg_orders.sql")
            .is_file()
    );
    assert!(
        project
            .path("target/compiled/mini/models/marts/schema.yml/not_null_fct_orders_order_id.sql")
            .is_file()
    );
}

/// dbt reads nothing from a `*-paths` folder that is not there and says nothing (its own
/// example projects name absent `macros` and `analysis` folders); Strata runs too, and warns
/// naming dbt_project.yml, the key and the folder, for every `*-paths` key.
#[test]
fn a_configured_folder_that_does_not_exist_is_named_in_a_warning() {
    let project = mini(LakeKind::Local);
    let yml = project.path("dbt_project.yml");
    let original = std::fs::read_to_string(&yml)
        .unwrap()
        .replace("test-paths: [\"data-tests\"]\n", "");
    std::fs::rename(project.path("data-tests"), project.path("tests")).unwrap();
    for (key, folders) in [
        ("model-paths", "[\"models\", \"modles\"]"),
        ("seed-paths", "[\"seeds\", \"sedes\"]"),
        ("macro-paths", "[\"macros\", \"macro\"]"),
        ("test-paths", "[\"tests\", \"test\"]"),
        ("docs-paths", "[\"models\", \"docs\"]"),
        ("snapshot-paths", "[\"snapshots\"]"),
        ("analysis-paths", "[\"analyses\"]"),
        ("asset-paths", "[\"assets\"]"),
    ] {
        std::fs::write(&yml, format!("{original}{key}: {folders}\n")).unwrap();
        let missing = folders.rsplit('"').nth(1).unwrap();
        let out = project.run(&["ls"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ls with {key}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "warning: dbt_project.yml: {key} names the folder '{missing}', which does not exist"
            )),
            "ls with {key}: {stderr}"
        );
    }
    // Folders left at their defaults may be absent without a word (mini has no snapshots/).
    std::fs::write(&yml, &original).unwrap();
    let out = project.run(&["build"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("does not exist"), "{stderr}");
}

/// A child process killed (SIGKILL) and reaped when dropped, panics included.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a child prints, as they come.
fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `strata build` killed with SIGKILL after one table committed and before the run log was
/// written: the next run records that version under the killed run, and
/// `SET strata.as_of_run` to the killed run reads it.
fn a_killed_builds_commits_are_recorded_by_the_next_run(kind: LakeKind) {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let project = Project::new(kind, NO_SOURCES);
    let lake = project.lake();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let files = |prefix: &str| runtime.block_on(common::files_under(&lake, prefix));
    let write = |rel: &str, text: &str| {
        let path = project.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "dbt_project.yml",
        "name: killed\nprofile: killed\nmodels:\n  killed:\n    +materialized: table\n",
    );
    write("models/first.sql", "select 1 as id");
    // Runs until killed, after `first` (which it reads) has committed.
    write(
        "models/slow.sql",
        "select (select count(*) from {{ ref('first') }}) as n, sum(value % 7) as s \
         from range(0, 1000000000000)",
    );
    let mut build = project
        .command(&["build"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = lines_of(build.stdout.take().unwrap());
    let mut build = Killed(build);
    let committed = "main/first/_delta_log/00000000000000000000.json";
    let deadline = Instant::now() + Duration::from_secs(300);
    while !files("main/first/_delta_log").contains(committed) {
        assert!(Instant::now() < deadline, "first never committed");
        assert!(
            build.0.try_wait().unwrap().is_none(),
            "the build ended by itself"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    build.0.kill().unwrap();
    build.0.wait().unwrap();
    let printed: Vec<String> = stdout.try_iter().collect();
    let run_id = printed
        .iter()
        .find_map(|l| Some(l.split_once("(run ")?.1.strip_suffix(')')?.to_string()))
        .unwrap_or_else(|| panic!("the build prints its run id first: {printed:?}"));
    assert!(
        files("_strata/runs").is_empty(),
        "the killed build wrote no run log"
    );

    // The next run records version 0 of main.first under the killed run.
    write("models/first.sql", "select 1 as id union all select 2");
    let out = project.ok(&["run", "-s", "first"]);
    assert!(
        out.contains(&format!(
            "Recorded main.first version 0 in _strata.runs: committed by run {run_id} (build)"
        )),
        "{out}"
    );
    let rows = project.query(&format!(
        "SELECT node, status, delta_version, rows FROM _strata.runs WHERE run_id = '{run_id}'"
    ));
    assert_eq!(rows[1..], [["model.killed.first", "interrupted", "0", "1"]]);
    // Once only.
    let out = project.ok(&["run", "-s", "first"]);
    assert!(!out.contains("Recorded"), "{out}");

    // The server pins the killed run's version.
    let mut serve = project
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = lines_of(serve.stdout.take().unwrap());
    let _serve = Killed(serve);
    let addr = loop {
        let line = served
            .recv_timeout(Duration::from_secs(120))
            .expect("strata serve prints where it listens");
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim().to_string();
        }
    };
    let (host, port) = addr.rsplit_once(':').unwrap();
    let psql = Command::new("psql")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-d",
            "strata",
            "-Atq",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", &format!("SET strata.as_of_run = '{run_id}'")])
        .args(["-c", "SELECT count(*) FROM main.first"])
        .args(["-c", "RESET strata.as_of_run"])
        .args(["-c", "SELECT count(*) FROM main.first"])
        .output()
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&psql.stdout), "1\n2\n");
}

#[test]
fn a_killed_builds_commits_are_recorded_by_the_next_run_on_local_disk() {
    a_killed_builds_commits_are_recorded_by_the_next_run(LakeKind::Local);
}

#[test]
fn a_killed_builds_commits_are_recorded_by_the_next_run_on_hdfs() {
    a_killed_builds_commits_are_recorded_by_the_next_run(LakeKind::Hdfs);
}

#[test]
fn cycles_are_reported_with_their_path() {
    let project = mini(LakeKind::Local);
    std::fs::write(
        project.path("models/staging/stg_orders.sql"),
        "select * from {{ ref('fct_orders') }}",
    )
    .unwrap();
    let out = project.run(&["ls"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cycle") && stderr.contains("fct_orders") && stderr.contains("stg_orders"),
        "{stderr}"
    );
}

#[test]
fn a_failing_model_keeps_its_previous_table_and_skips_its_children() {
    let project = mini(LakeKind::Local);
    project.ok(&["build"]);
    // Fails only when executed: every name is a string that is not a number.
    std::fs::write(
        project.path("models/marts/dim_customers.sql"),
        "select cast(name as bigint) as customer_id, name, 0 as orders from {{ ref('customer_base') }}",
    )
    .unwrap();
    let out = project.run(&["build"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ERROR table gold.dim_customers"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SKIP  test relationships_fct_orders_customer_id"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK    incremental gold.fct_orders"),
        "independent models still run: {stdout}"
    );
    // The old version is still there and readable.
    assert_eq!(
        project.scalar("SELECT count(*) FROM gold.dim_customers WHERE name = 'ADA'"),
        "1"
    );
}

#[test]
fn test_severities_decide_the_exit_code() {
    let project = mini(LakeKind::Local);
    // Customer 10 gets a third order: the warn-severity accepted_values test warns.
    std::fs::write(
        project.path("seeds/raw_orders.csv"),
        "order_id,customer_id,amount,order_date,loaded_at\n1,10,1,2026-01-01,1\n2,10,1,2026-01-01,1\n3,10,1,2026-01-01,1\n",
    )
    .unwrap();
    let out = project.ok(&["build"]);
    assert!(
        out.contains("WARN  test accepted_values_dim_customers_orders"),
        "{out}"
    );
    assert!(out.contains("1 failing"), "{out}");
    // A negative amount fails the error-severity singular test: non-zero exit.
    std::fs::write(
        project.path("seeds/raw_orders.csv"),
        "order_id,customer_id,amount,order_date,loaded_at\n1,10,-5,2026-01-01,1\n",
    )
    .unwrap();
    project.ok(&["seed"]);
    project.ok(&["run", "--vars", "{min_amount: -100}", "--full-refresh"]);
    let out = project.run(&["test"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  test assert_no_negative_amounts"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-5"),
        "the failing rows are shown: {stdout}"
    );
}

#[test]
fn a_unique_test_passes_on_distinct_keys_and_shows_the_repeated_ones() {
    let project = mini(LakeKind::Local);
    let schema = project.path("models/marts/schema.yml");
    let yml = std::fs::read_to_string(&schema).unwrap().replace(
        "  - name: dim_customers\n    columns:\n",
        "  - name: dim_customers\n    columns:\n      - name: name\n        tests: [unique]\n",
    );
    std::fs::write(&schema, yml).unwrap();
    let out = project.ok(&["build"]);
    assert!(
        out.contains("PASS  test unique_dim_customers_name"),
        "{out}"
    );
    // Two customers named Ada (one spelled in lower case): one repeated name, two rows.
    std::fs::write(
        project.path("seeds/raw_customers.csv"),
        "customer_id,name\n10,Ada\n11,Grace\n12,ada\n13,Linus\n",
    )
    .unwrap();
    let out = project.run(&["build"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  test unique_dim_customers_name"),
        "{stdout}"
    );
    assert!(stdout.contains("1 failing"), "{stdout}");
    assert!(stdout.contains("| ADA          | 2         |"), "{stdout}");
}

/// A small model's table is one Parquet file, committed once per build; a rebuild adds its new
/// file and removes the old one in the same commit.
#[test]
fn a_small_table_is_one_file_committed_once_per_build() {
    let project = mini(LakeKind::Local);
    project.ok(&["build"]);
    let table = project.path("lake/gold/dim_customers");
    let count = |actions: &[serde_json::Value], kind: &str| {
        actions.iter().filter(|a| a.get(kind).is_some()).count()
    };
    let first = commit_actions(&table, 0);
    assert_eq!(count(&first, "add"), 1, "{first:?}");
    assert_eq!(count(&first, "metaData"), 1, "{first:?}");
    project.ok(&["run", "-s", "dim_customers"]);
    let second = commit_actions(&table, 1);
    assert_eq!(count(&second, "add"), 1, "{second:?}");
    assert_eq!(count(&second, "remove"), 1, "{second:?}");
    assert!(!table.join("_delta_log/00000000000000000002.json").exists());
    let info = second.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["operationMetrics"]["num_added_rows"], 3, "{info}");
    assert!(info.get("strataRun").is_some(), "the run's stamp: {info}");
    let dims = project.query("SELECT count(*) FROM gold.dim_customers");
    assert_eq!(dims[1], ["3"]);
}

#[test]
fn delta_tables_open_in_another_reader() {
    let project = mini(LakeKind::Local);
    project.ok(&["build"]);
    std::fs::write(project.path("seeds/raw_orders.csv"), BATCH_2).unwrap();
    project.ok(&["build"]);
    let table = project.path("lake/gold/fct_orders");
    // os._exit skips interpreter teardown, where deltalake's runtime threads now and then
    // abort the process ("terminate called without an active exception") after the answer.
    let out = in_python(
        "import os, sys, deltalake; t = deltalake.DeltaTable(sys.argv[1]); \
         rows = sorted(t.to_pyarrow_table().to_pylist(), key=lambda r: r['order_id']); \
         print(t.version(), [(r['order_id'], float(r['amount'])) for r in rows], flush=True); \
         os._exit(0)",
        &table,
    );
    assert_eq!(
        out.trim(),
        "1 [(0, 7.25), (1, 100.0), (2, 55.0), (3, 25.5), (4, 10.0)]"
    );
}

/// Sources declared as dbt-duckdb projects declare them (`read_csv(..., header = true, delim =
/// '|')`, a quoted path, `{name}`/`{identifier}`), raw files in the project read by its models,
/// any local file read by `strata sql` as DuckDB reads it (unless `[sql] read_roots` confines
/// it), and models found by their bare names after a build.
#[test]
fn duckdb_style_sources_local_files_and_unqualified_names() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let files = [
        (
            "dbt_project.yml",
            "name: duck\nconfig-version: 2\nmodels:\n  duck:\n    +materialized: table\nseeds:\n  duck:\n    zips:\n      +column_types: {zip: varchar}\n",
        ),
        ("seeds/zips.csv", "zip,n\n01234,1\n"),
        ("raw_data/people.csv", "id|name\n1|ann\n2|bob\n3|cy\n"),
        ("raw_data/scores.csv", "id,score\n1,3.5\n3,1.25\n"),
        (
            "raw_data/visits.ndjson",
            "{\"id\": 1, \"n\": 2}\n{\"id\": 1, \"n\": 5}\n",
        ),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    meta:\n      external_location: \"read_csv('raw_data/{name}.csv', header = true, delim = '|', auto_detect = true)\"\n    tables:\n      - name: people\n      - name: scores\n        meta:\n          external_location: \"'raw_data/{identifier}.csv'\"\n      - name: visits\n        meta:\n          external_location: \"read_json_auto('raw_data/visits.ndjson')\"\n",
        ),
        (
            "models/customers.sql",
            "select p.id, p.name, s.score, (select sum(n) from {{ source('raw', 'visits') }} v where v.id = p.id) as visits\nfrom {{ source('raw', 'people') }} p left join {{ source('raw', 'scores') }} s on p.id = s.id",
        ),
        // A model reading a file in DuckDB's spelling, and dbt's flags.
        (
            "models/direct.sql",
            "select count(*) as people, '{{ flags.WHICH }}' as which\nfrom read_csv('raw_data/people.csv', header = true,\n  delim = '|')",
        ),
    ];
    for (path, text) in files {
        let path = project.path(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let out = project.run(&["build"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("PASS=3 WARN=0 ERROR=0"), "{stdout}");
    assert_eq!(
        project.query("SELECT people, which FROM direct")[1],
        ["3", "build"]
    );
    // A seed's `column_types` is applied (so not reported): the zip code keeps its zero.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("column_types"));
    assert_eq!(project.scalar("SELECT zip FROM zips"), "01234");
    // `customers` is found in the target schema without naming it.
    let rows = project.query("SELECT id, name, score, visits FROM customers ORDER BY id");
    assert_eq!(
        rows[1..],
        [
            ["1", "ann", "3.5", "7"],
            ["2", "bob", "", ""],
            ["3", "cy", "1.25", ""]
        ]
    );
    // A CTE of the same name still wins, as in PostgreSQL.
    assert_eq!(
        project.scalar("WITH customers AS (SELECT 1 AS id) SELECT count(*) FROM customers"),
        "1"
    );

    // Any local file is read by the local engine, in DuckDB's spelling too.
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("data.csv");
    std::fs::write(&outside, "a;b\n1;x\n2;y\n").unwrap();
    let read = format!(
        "SELECT count(*) FROM read_csv('{}', sep = ';')",
        outside.display()
    );
    assert_eq!(project.scalar(&read), "2");

    // `[sql] read_roots` confines it to the lake, the sources, the project and those roots.
    let config = project.path("strata.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[sql]\nread_roots = []\n");
    std::fs::write(&config, text).unwrap();
    let out = project.run(&["sql", "-c", &read]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to read"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM 'raw_data/scores.csv'"),
        "2"
    );
}

/// Keys Strata reads but does not apply are reported once per run, naming the file, the node
/// and the key; `--strict` (or `[project] strict = true`) makes them errors.
#[test]
fn unsupported_configs_warn_once_and_strict_refuses_them() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let files = [
        (
            "dbt_project.yml",
            "name: t\nconfig-version: 2\nquery-comment: strata\nmodels:\n  t:\n    +materialized: table\n    +grants:\n      select: [bi]\n",
        ),
        (
            "models/a.sql",
            "{{ config(materialized_view_refresh='auto', incremental_strategy='merge') }}\nselect 1 as id",
        ),
        ("models/b.sql", "select id from {{ ref('a') }}"),
        (
            "models/c.py",
            "def model(dbt, session):\n    return dbt.ref('a')\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        policy_tags: [pii]\nexposures:\n  - name: dash\n    type: dashboard\nsources:\n  - name: s\n    tables:\n      - name: t\n        config:\n          quoting: {identifier: true}\n",
        ),
    ];
    for (path, text) in files {
        let path = project.path(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let out = project.run(&["build"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "warning: models/a.sql: model.t.a: `materialized_view_refresh` is not supported yet; the model is built without it",
        "warning: models/a.sql: model.t.a: `grants` is not supported yet; the model is built without it",
        "warning: models/b.sql: model.t.b: `grants` is not supported yet",
        "warning: dbt_project.yml: the project: `query-comment` is not supported yet",
        "warning: models/schema.yml: the properties file: `exposures` is not supported yet",
        "warning: models/schema.yml: model 'a', column 'id': `policy_tags` is not supported yet",
        "warning: models/c.py: model.t.c: `python model` is not supported yet; it is not built (Strata runs SQL models)",
        "warning: models/schema.yml: source.t.s.t: `quoting` is not supported yet; the source is read without it",
    ] {
        assert_eq!(stderr.matches(expected).count(), 1, "{expected}\n{stderr}");
    }
    // `merge` is what Strata does: not reported.
    assert!(!stderr.contains("incremental_strategy"), "{stderr}");

    let out = project.run(&["build", "--strict"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("strict mode"), "{stderr}");
    assert!(stderr.contains("`grants`"), "{stderr}");

    let config = project.path("strata.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[project]\nstrict = true\n");
    std::fs::write(&config, text).unwrap();
    assert!(!project.run(&["compile"]).status.success());
}

/// The raw customers a snapshot test's source reads, as `id,region,name,updated_at` rows.
fn write_customers(project: &Project, rows: &[&str]) {
    let mut text = String::from("id,region,name,updated_at\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    std::fs::create_dir_all(project.path("raw_data")).unwrap();
    std::fs::write(project.path("raw_data/customers.csv"), text).unwrap();
}

/// Snapshots as dbt keeps them: a `{% snapshot %}` block with the timestamp strategy and
/// `hard_deletes: invalidate`, and the YAML form with the check strategy over a two-column key,
/// `hard_deletes: new_record`, `dbt_valid_to_current` and renamed meta columns; a model reading
/// a snapshot is built after it; each run is one Delta commit, earlier ones read by time travel.
fn snapshots_keep_every_version(kind: LakeKind) {
    let project = Project::new(kind, NO_SOURCES);
    let files = [
        ("dbt_project.yml", "name: snap\nconfig-version: 2\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    meta:\n      external_location: \"read_csv('raw_data/{name}.csv', header = true)\"\n    tables:\n      - name: customers\n",
        ),
        (
            "snapshots/customers.sql",
            "{% snapshot customers_history %}\n{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at', hard_deletes='invalidate') }}\nselect id, name, cast(updated_at as timestamp) as updated_at\nfrom {{ source('raw', 'customers') }}\n{% endsnapshot %}\n",
        ),
        (
            "snapshots/snapshots.yml",
            "version: 2\nsnapshots:\n  - name: customers_checked\n    relation: source('raw', 'customers')\n    config:\n      unique_key: [id, region]\n      strategy: check\n      check_cols: [name]\n      hard_deletes: new_record\n      dbt_valid_to_current: \"cast('2199-12-31' as timestamp)\"\n      snapshot_meta_column_names:\n        dbt_valid_from: valid_from\n        dbt_valid_to: valid_to\n    columns:\n      - name: valid_from\n        tests: [not_null]\n",
        ),
        (
            "models/current_customers.sql",
            "{{ config(materialized='table') }}\nselect id, name from {{ ref('customers_history') }} where dbt_valid_to is null",
        ),
    ];
    for (path, text) in files {
        let path = project.path(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    write_customers(
        &project,
        &[
            "1,eu,ann,2026-01-01",
            "2,us,bob,2026-01-01",
            "3,eu,cy,2026-01-01",
        ],
    );
    let listed = project.ok(&["ls", "-s", "resource_type:snapshot"]);
    assert!(listed.contains("customers_history"), "{listed}");
    assert!(listed.contains("customers_checked"), "{listed}");
    let out = project.run(&["build"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 snapshot(s)"), "{stdout}");
    assert!(stdout.contains("ERROR=0"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("not supported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM current_customers"),
        "3"
    );
    let history = "SELECT id, name, cast(updated_at as varchar) AS u, cast(dbt_valid_from as varchar) AS f, \
                   dbt_valid_to IS NULL AS open, dbt_scd_id IS NOT NULL AS k FROM customers_history ORDER BY id, f";
    assert_eq!(
        project.query(history)[1..],
        [
            [
                "1",
                "ann",
                "2026-01-01T00:00:00",
                "2026-01-01T00:00:00",
                "true",
                "true"
            ],
            [
                "2",
                "bob",
                "2026-01-01T00:00:00",
                "2026-01-01T00:00:00",
                "true",
                "true"
            ],
            [
                "3",
                "cy",
                "2026-01-01T00:00:00",
                "2026-01-01T00:00:00",
                "true",
                "true"
            ],
        ]
    );

    // Ann renamed, Bob deleted, Dee new.
    write_customers(
        &project,
        &[
            "1,eu,anna,2026-01-02",
            "3,eu,cy,2026-01-01",
            "4,us,dee,2026-01-02",
        ],
    );
    let out = project.ok(&["snapshot"]);
    assert!(out.contains("version 1"), "{out}");
    let closed = "SELECT id, name, cast(dbt_valid_to as varchar) AS t FROM customers_history \
                  WHERE dbt_valid_to IS NOT NULL ORDER BY id";
    let rows = project.query(closed);
    assert_eq!(rows[1], ["1", "ann", "2026-01-02T00:00:00"]);
    assert_eq!(rows[2][..2], ["2", "bob"]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        project
            .query("SELECT id, name FROM customers_history WHERE dbt_valid_to IS NULL ORDER BY id")
            [1..],
        [["1", "anna"], ["3", "cy"], ["4", "dee"]]
    );
    // new_record: Bob's last version closed and a deleted version opened; current versions
    // hold dbt_valid_to_current.
    let checked = "SELECT id, name, dbt_is_deleted FROM customers_checked \
                   WHERE valid_to = cast('2199-12-31' as timestamp) ORDER BY id";
    assert_eq!(
        project.query(checked)[1..],
        [
            ["1", "anna", "False"],
            ["2", "bob", "True"],
            ["3", "cy", "False"],
            ["4", "dee", "False"]
        ]
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_checked"),
        "6"
    );
    // The first version of the history, by Delta time travel.
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_history VERSION AS OF 0"),
        "3"
    );

    // Nothing changed: nothing is added (a deleted key stays deleted once).
    project.ok(&["snapshot"]);
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_history"),
        "5"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_checked"),
        "6"
    );

    // Bob is back.
    write_customers(
        &project,
        &[
            "1,eu,anna,2026-01-02",
            "2,us,bob,2026-01-03",
            "3,eu,cy,2026-01-01",
            "4,us,dee,2026-01-02",
        ],
    );
    project.ok(&["snapshot", "-s", "customers_checked", "customers_history"]);
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_history"),
        "6"
    );
    assert_eq!(
        project.query(checked)[1..],
        [
            ["1", "anna", "False"],
            ["2", "bob", "False"],
            ["3", "cy", "False"],
            ["4", "dee", "False"]
        ]
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_checked"),
        "7"
    );
    // Each snapshot run that changed something was one commit (the one with nothing to
    // change made none): version 0 created it, 1 and 2 merged.
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_checked VERSION AS OF 1"),
        "6"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM customers_checked VERSION AS OF 2"),
        "7"
    );
}

#[test]
fn snapshots_keep_every_version_on_local_disk() {
    snapshots_keep_every_version(LakeKind::Local);
}

#[test]
fn snapshots_keep_every_version_on_hdfs() {
    snapshots_keep_every_version(LakeKind::Hdfs);
}

/// The example project over the generator's drops, landed and built one after the other: the
/// snapshot of customers keeps a closed and a current version of a customer the CRM re-sent
/// changed; the unit test of stg_payments runs before its model; the contract of
/// agg_daily_revenue keeps its check as a Delta constraint; the microbatch model takes the
/// late events of an older month only when that month is backfilled.
#[test]
fn the_example_project_keeps_history_unit_tests_contracts_and_microbatches_across_drops() {
    let project = Project::shop(LakeKind::Local);
    common::copy_example_project(&project.path(""));
    let mut args = strata::generate::GenerateArgs::new(project.path("stage"));
    args.scale = 2000;
    strata::generate::generate(&args).unwrap();
    let drop = |days: &[&str]| {
        for entity in std::fs::read_dir(project.path("stage")).unwrap() {
            let entity = entity.unwrap().path();
            if !entity.is_dir() {
                continue;
            }
            let to = project.path("drop").join(entity.file_name().unwrap());
            std::fs::create_dir_all(&to).unwrap();
            for file in std::fs::read_dir(&entity).unwrap() {
                let file = file.unwrap().path();
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                if days.iter().any(|day| name.contains(day)) {
                    std::fs::copy(&file, to.join(&name)).unwrap();
                }
            }
        }
    };
    // The drifted columns arrive with the second drop, which the project expects.
    drop(&["2026-01-01", "2026-01-02"]);
    project.ok(&["land"]);
    let out = project.ok(&["build"]);
    assert!(out.contains("ERROR=0"), "{out}");
    let unit_test = out
        .find("PASS  test stg_payments_cleans_amounts_times_and_webhook_retries")
        .expect("the unit test ran");
    assert!(
        unit_test < out.find("table silver.stg_payments").unwrap(),
        "{out}"
    );
    let log: String = std::fs::read_dir(project.path("lake/gold/agg_daily_revenue/_delta_log"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        log.contains(r#""delta.constraints.orders_check_1":"orders > 0""#),
        "{log}"
    );
    let january = "SELECT web_events FROM gold.agg_monthly_web_traffic \
                   WHERE month_start = DATE '2026-01-01'";
    let january_events = "SELECT count(*) FROM gold.fct_web_events \
                          WHERE event_ts >= TIMESTAMP '2026-01-01 00:00:00' \
                          AND event_ts < TIMESTAMP '2026-02-01 00:00:00'";
    let first = project.scalar(january);
    assert_eq!(first, project.scalar(january_events));
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM snapshots.customers_history WHERE dbt_valid_to IS NOT NULL"
        ),
        "0"
    );
    drop(&["2026-01-03"]);
    project.ok(&["land"]);
    assert!(project.ok(&["build"]).contains("ERROR=0"));
    // The build ran the current month and the one before: January keeps its first count
    // until a backfill of January takes in the third drop's events.
    assert_eq!(project.scalar(january), first);
    project.ok(&[
        "run",
        "-s",
        "agg_monthly_web_traffic",
        "--event-time-start",
        "2026-01-01",
        "--event-time-end",
        "2026-02-01",
    ]);
    assert_eq!(project.scalar(january), project.scalar(january_events));
    assert_ne!(project.scalar(january), first);
    let closed: u64 = project
        .scalar("SELECT count(*) FROM snapshots.customers_history WHERE dbt_valid_to IS NOT NULL")
        .parse()
        .unwrap();
    assert!(closed > 0, "a re-sent customer changed in the third drop");
    let current_not_staged = "SELECT count(*) FROM (\
        SELECT customer_id, email, city, segment, loyalty_tier FROM snapshots.customers_history \
        WHERE dbt_valid_to IS NULL \
        EXCEPT \
        SELECT customer_id, email, city, segment, loyalty_tier FROM silver.stg_customers)";
    assert_eq!(project.scalar(current_not_staged), "0");
    assert_eq!(
        project.scalar(
            "SELECT count(*) - count(DISTINCT customer_id) FROM snapshots.customers_history \
             WHERE dbt_valid_to IS NULL"
        ),
        "0",
        "one current version per customer"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM silver.stg_customers"),
        project
            .scalar("SELECT count(*) FROM snapshots.customers_history WHERE dbt_valid_to IS NULL"),
    );
}

/// A project whose source `raw.orders` reads `raw_data/orders.csv`.
fn orders_project(kind: LakeKind, models: &[(&str, &str)]) -> Project {
    let project = Project::new(kind, NO_SOURCES);
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: inc\nconfig-version: 2\n"),
            (
                "models/sources.yml",
                "version: 2\nsources:\n  - name: raw\n    meta:\n      external_location: \"read_csv('raw_data/{name}.csv', header = true)\"\n    tables:\n      - name: orders\n",
            ),
        ],
    );
    write_files(&project, models);
    project
}

/// The rows `raw.orders` reads next.
fn write_orders(project: &Project, text: &str) {
    write_files(project, &[("raw_data/orders.csv", text)]);
}

/// A model's latest Delta version, from the run log.
fn last_version(project: &Project, model: &str) -> String {
    project.scalar(&format!(
        "SELECT max(delta_version) FROM _strata.runs WHERE node = 'model.inc.{model}'"
    ))
}

/// Every strategy as dbt documents it: delete+insert replaces all rows of a key (one commit),
/// merge updates only `merge_update_columns` (or all but `merge_exclude_columns`) and honours
/// `incremental_predicates` on dbt's aliases, append adds; an unknown strategy stops the run before it starts.
/// (dbt-duckdb 1.11 gives the same rows for this project.)
fn incremental_strategies_follow_dbt(kind: LakeKind) {
    let select = "select cast(id as int) as id, cast(line as int) as line, cast(amount as int) as amount, status from {{ source('raw', 'orders') }}";
    let model = |config: &str| {
        format!("{{{{ config(materialized='incremental', {config}) }}}}\n{select}\n")
    };
    let files = [
        (
            "models/di.sql",
            model("incremental_strategy='delete+insert', unique_key='id'"),
        ),
        (
            "models/upd.sql",
            model(
                "incremental_strategy='merge', unique_key=['id', 'line'], merge_update_columns=['amount']",
            ),
        ),
        (
            "models/excl.sql",
            model(
                "incremental_strategy='merge', unique_key=['id', 'line'], merge_exclude_columns=['status']",
            ),
        ),
        (
            "models/pred.sql",
            model("unique_key=['id', 'line'], incremental_predicates=['DBT_INTERNAL_DEST.id > 1']"),
        ),
        ("models/app.sql", model("incremental_strategy='append'")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let project = orders_project(kind, &files);
    write_orders(
        &project,
        "id,line,amount,status\n1,1,10,new\n1,2,20,new\n2,1,5,new\n",
    );
    let out = project.run(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("not supported"), "{stderr}");

    write_orders(
        &project,
        "id,line,amount,status\n1,1,11,paid\n2,1,6,paid\n3,1,7,new\n",
    );
    project.ok(&["run"]);
    let rows = |model: &str| {
        project.query(&format!(
            "SELECT id, line, amount, status FROM {model} ORDER BY id, line, amount"
        ))[1..]
            .to_vec()
    };
    // delete+insert: order 1's two lines gave way to its one new line.
    assert_eq!(
        rows("di"),
        [
            ["1", "1", "11", "paid"],
            ["2", "1", "6", "paid"],
            ["3", "1", "7", "new"]
        ]
    );
    assert_eq!(last_version(&project, "di"), "1");
    let kept_status = [
        ["1", "1", "11", "new"],
        ["1", "2", "20", "new"],
        ["2", "1", "6", "new"],
        ["3", "1", "7", "new"],
    ];
    assert_eq!(rows("upd"), kept_status);
    assert_eq!(rows("excl"), kept_status);
    // The predicate keeps order 1 from matching: its new line is inserted beside the old.
    assert_eq!(
        rows("pred"),
        [
            ["1", "1", "10", "new"],
            ["1", "1", "11", "paid"],
            ["1", "2", "20", "new"],
            ["2", "1", "6", "paid"],
            ["3", "1", "7", "new"]
        ]
    );
    assert_eq!(rows("app").len(), 6);

    write_files(
        &project,
        &[(
            "models/bad.sql",
            "{{ config(materialized='incremental', incremental_strategy='upsert') }}\nselect 1 as id",
        )],
    );
    // Found by the check before the run: nothing runs.
    let (ok, out) = outcome(&project, &["run", "-s", "bad"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("model 'bad': incremental_strategy 'upsert' is not one Strata has"),
        "{out}"
    );
}

#[test]
fn incremental_strategies_follow_dbt_on_local_disk() {
    incremental_strategies_follow_dbt(LakeKind::Local);
}

#[test]
fn incremental_strategies_follow_dbt_on_hdfs() {
    incremental_strategies_follow_dbt(LakeKind::Hdfs);
}

/// `on_schema_change`: ignore keeps the table's columns, fail refuses (nothing written),
/// append_new_columns adds columns (removed ones null in new rows), sync_all_columns adds and
/// drops them; each change is named in the run's output.
#[test]
fn schema_changes_follow_on_schema_change() {
    let select = "select cast(id as int) as id{% if not var('narrow', false) %}, cast(amount as int) as amount{% endif %}{% if var('wide', false) %}, status{% endif %} from {{ source('raw', 'orders') }}";
    let model = |policy: &str| {
        format!(
            "{{{{ config(materialized='incremental', on_schema_change='{policy}') }}}}\n{select}\n"
        )
    };
    let files = [
        ("models/ign.sql", model("ignore")),
        ("models/fails.sql", model("fail")),
        ("models/adds.sql", model("append_new_columns")),
        ("models/syncs.sql", model("sync_all_columns")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let project = orders_project(LakeKind::Local, &files);
    write_orders(&project, "id,amount,status\n1,10,new\n");
    project.ok(&["run"]);

    write_orders(&project, "id,amount,status\n2,20,paid\n");
    let out = project.run(&["run", "--vars", "{wide: true}"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the query's columns differ from the table's (new columns status) and on_schema_change is fail; nothing was written"),
        "{stdout}"
    );
    assert!(stdout.contains("schema change: new columns status; new columns added (on_schema_change: append_new_columns)"), "{stdout}");
    assert_eq!(project.scalar("SELECT count(*) FROM fails"), "1");
    let columns =
        |model: &str| project.query(&format!("SELECT * FROM {model} ORDER BY id"))[0].join(",");
    assert_eq!(columns("ign"), "id,amount");
    assert_eq!(project.scalar("SELECT count(*) FROM ign"), "2");
    assert_eq!(columns("adds"), "id,amount,status");
    assert_eq!(
        project.query("SELECT id, status IS NULL FROM adds ORDER BY id")[1..],
        [["1", "true"], ["2", "false"]]
    );

    write_orders(&project, "id,amount,status\n3,30,late\n");
    let out = project.ok(&[
        "run",
        "-s",
        "adds",
        "syncs",
        "ign",
        "--vars",
        "{wide: true, narrow: true}",
    ]);
    assert!(out.contains("removed columns amount"), "{out}");
    assert_eq!(
        project.query("SELECT id, amount, status FROM adds ORDER BY id")[1..],
        [["1", "10", ""], ["2", "20", "paid"], ["3", "", "late"]]
    );
    assert_eq!(
        project.query("SELECT id, amount FROM ign ORDER BY id")[1..],
        [["1", "10"], ["2", "20"], ["3", ""]]
    );
    // sync_all_columns: amount dropped (the table rewritten in one commit), status kept.
    assert_eq!(columns("syncs"), "id,status");
    assert_eq!(
        project.query("SELECT id, status FROM syncs ORDER BY id")[1..],
        [["1", ""], ["2", "paid"], ["3", "late"]]
    );
    assert_eq!(last_version(&project, "syncs"), "2");
}

/// `partition_by` lays tables out as Delta partitions; insert_overwrite replaces the
/// partitions the new rows touch and keeps the others.
#[test]
fn insert_overwrite_replaces_the_partitions_it_touches() {
    let select =
        "select cast(day as date) as day, cast(id as int) as id from {{ source('raw', 'orders') }}";
    let table = format!("{{{{ config(materialized='table', partition_by='day') }}}}\n{select}\n");
    let overwrite = format!(
        "{{{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by=['day']) }}}}\n{select}\n"
    );
    let project = orders_project(
        LakeKind::Local,
        &[
            ("models/by_day.sql", &table),
            ("models/ovr.sql", &overwrite),
        ],
    );
    write_orders(
        &project,
        "day,id\n2026-01-01,1\n2026-01-01,2\n2026-01-02,3\n",
    );
    project.ok(&["run"]);
    for model in ["by_day", "ovr"] {
        let dir = std::fs::read_dir(project.path("lake"))
            .unwrap()
            .flatten()
            .map(|schema| schema.path().join(model))
            .find(|p| p.join("_delta_log").exists())
            .unwrap();
        let log =
            std::fs::read_to_string(dir.join("_delta_log/00000000000000000000.json")).unwrap();
        assert!(log.contains(r#""partitionColumns":["day"]"#), "{log}");
        assert!(dir.join("day=2026-01-01").is_dir(), "{}", dir.display());
    }

    write_orders(
        &project,
        "day,id\n2026-01-02,4\n2026-01-02,5\n2026-01-03,6\n",
    );
    project.ok(&["run", "-s", "ovr"]);
    assert_eq!(
        project.query("SELECT cast(day as varchar), id FROM ovr ORDER BY id")[1..],
        [
            ["2026-01-01", "1"],
            ["2026-01-01", "2"],
            ["2026-01-02", "4"],
            ["2026-01-02", "5"],
            ["2026-01-03", "6"]
        ]
    );
    assert_eq!(last_version(&project, "ovr"), "1");
}

/// Microbatch models: the first build runs every batch from `begin`, one commit each, reading
/// refs with an `event_time` only in the batch's window; a later run redoes the current batch
/// and `lookback` earlier; `--event-time-start/--event-time-end` backfill; a failed batch leaves
/// the others committed (the model a partial success).
fn microbatch_runs_batch_by_batch(kind: LakeKind) {
    let today = chrono::Utc::now().date_naive();
    let day = |n: i64| (today - chrono::Duration::days(n)).to_string();
    let (d0, d1, d2) = (day(2), day(1), day(0));
    let events = "{{ config(materialized='table', event_time='at') }}\nselect cast(at as timestamp) as at, cast(id as int) as id, cast(v as int) as v from {{ source('raw', 'orders') }}";
    let daily = format!(
        "{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='at', batch_size='day', begin='{d0}', lookback=1) }}}}\nselect at, id, 10 / v as r from {{{{ ref('events') }}}}"
    );
    let project = orders_project(
        kind,
        &[("models/events.sql", events), ("models/daily.sql", &daily)],
    );
    let write = |rows: &[(&str, i32, i32)]| {
        let mut text = String::from("at,id,v\n");
        for (at, id, v) in rows {
            text.push_str(&format!("{at} 06:00:00,{id},{v}\n"));
        }
        write_orders(&project, &text);
    };
    write(&[(&d0, 1, 1), (&d0, 2, 2), (&d1, 3, 5), (&d2, 4, 10)]);
    let out = project.ok(&["run"]);
    assert!(
        out.contains(&format!("3 batches: {d0}, {d1}, {d2}")),
        "{out}"
    );
    assert_eq!(last_version(&project, "daily"), "2");
    let rows = || project.query("SELECT id, r FROM daily ORDER BY id")[1..].to_vec();
    assert_eq!(rows(), [["1", "10"], ["2", "5"], ["3", "2"], ["4", "1"]]);

    // A later run: the current batch and one before it; d0's change waits for a backfill.
    write(&[(&d0, 1, 10), (&d0, 2, 2), (&d1, 3, 1), (&d2, 4, 10)]);
    let out = project.ok(&["run"]);
    assert!(out.contains(&format!("2 batches: {d1}, {d2}")), "{out}");
    assert_eq!(rows(), [["1", "10"], ["2", "5"], ["3", "10"], ["4", "1"]]);
    let out = project.ok(&[
        "run",
        "-s",
        "daily",
        "--event-time-start",
        &d0,
        "--event-time-end",
        &d1,
    ]);
    assert!(out.contains(&format!("1 batch: {d0}")), "{out}");
    assert_eq!(rows(), [["1", "1"], ["2", "5"], ["3", "10"], ["4", "1"]]);

    // d2's batch divides by zero: d0 and d1 are committed, the model a partial success naming
    // the failed batch.
    write(&[(&d0, 1, 5), (&d0, 2, 2), (&d1, 3, 2), (&d2, 4, 0)]);
    project.ok(&["run", "-s", "events"]);
    let out = project.run(&["run", "-s", "daily", "--event-time-start", &d0]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("batch {d2} (3 of 3) failed"))
            && stdout.contains(&format!("2 of 3 batches committed: {d0}, {d1}")),
        "{stdout}"
    );
    assert_eq!(rows(), [["1", "2"], ["2", "5"], ["3", "5"], ["4", "1"]]);
}

#[test]
fn microbatch_runs_batch_by_batch_on_local_disk() {
    microbatch_runs_batch_by_batch(LakeKind::Local);
}

#[test]
fn microbatch_runs_batch_by_batch_on_hdfs() {
    microbatch_runs_batch_by_batch(LakeKind::Hdfs);
}

/// A source with `config: {event_time: ..}` read by a microbatch model: each batch's
/// `source()` returns only the rows of its window, and the batch is `model.batch` in the SQL
/// (none outside a batch).
fn microbatch_reads_a_sources_window(kind: LakeKind) {
    let today = chrono::Utc::now().date_naive();
    let day = |n: i64| (today - chrono::Duration::days(n)).to_string();
    let (d0, d1, d2) = (day(2), day(1), day(0));
    let daily = format!(
        "{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='at', batch_size='day', begin='{d0}') }}}}\nselect cast(at as timestamp) as at, cast(id as int) as id, count(*) over () as seen, '{{{{ model.batch.id }}}}' as batch, '{{{{ model.batch.event_time_start }}}}' as batch_start from {{{{ source('raw', 'orders') }}}}"
    );
    let plain =
        "{{ config(materialized='table') }}\nselect '{{ model.batch is none }}' as no_batch";
    let project = orders_project(
        kind,
        &[("models/daily.sql", &daily), ("models/plain.sql", plain)],
    );
    write_files(
        &project,
        &[(
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    meta:\n      external_location: \"read_csv('raw_data/{name}.csv', header = true)\"\n    tables:\n      - name: orders\n        config:\n          event_time: at\n",
        )],
    );
    write_orders(
        &project,
        &format!(
            "at,id\n{d0} 06:00:00,1\n{d0} 07:00:00,2\n{d0} 08:00:00,3\n{d1} 06:00:00,4\n{d2} 06:00:00,5\n{d2} 07:00:00,6\n"
        ),
    );
    let out = project.ok(&["run"]);
    assert!(
        out.contains(&format!("3 batches: {d0}, {d1}, {d2}")),
        "{out}"
    );
    // `seen`: the rows the batch's query read, only those of its own day.
    let rows = project.query("SELECT id, seen, batch, batch_start FROM daily ORDER BY id");
    let id = |d: &str| d.replace('-', "");
    let expected: Vec<Vec<String>> = [
        (1, 3, &d0),
        (2, 3, &d0),
        (3, 3, &d0),
        (4, 1, &d1),
        (5, 2, &d2),
        (6, 2, &d2),
    ]
    .iter()
    .map(|(n, seen, d)| vec![n.to_string(), seen.to_string(), id(d)])
    .collect();
    let got: Vec<Vec<String>> = rows[1..].iter().map(|r| r[..3].to_vec()).collect();
    assert_eq!(got, expected);
    assert!(
        rows[1][3].starts_with(&format!("{d0} 00:00:00")),
        "{rows:?}"
    );
    assert_eq!(project.scalar("SELECT no_batch FROM plain"), "True");
}

#[test]
fn microbatch_reads_a_sources_window_on_local_disk() {
    microbatch_reads_a_sources_window(LakeKind::Local);
}

#[test]
fn microbatch_reads_a_sources_window_on_hdfs() {
    microbatch_reads_a_sources_window(LakeKind::Hdfs);
}

/// `strata show`: a model's first rows (`--limit`, `--output json`), an ephemeral model's, an
/// inline query's with refs, vars and macros; an unbuilt parent and a bad column are errors
/// naming the model and the line; nothing is written to the lake.
#[test]
fn show_previews_models_without_building_them() {
    let project = orders_project(
        LakeKind::Local,
        &[
            (
                "models/stg.sql",
                "{{ config(materialized='table') }}\nselect cast(order_id as int) as order_id, upper(country) as country from {{ source('raw', 'orders') }}",
            ),
            (
                "models/eph.sql",
                "{{ config(materialized='ephemeral') }}\nselect order_id, country from {{ ref('stg') }} where order_id > 5",
            ),
            (
                "models/top.sql",
                "select * from {{ ref('eph') }} order by order_id",
            ),
            (
                "macros/shout.sql",
                "{% macro shout(column) %}upper({{ column }}){% endmacro %}",
            ),
        ],
    );
    let mut orders = String::from("order_id,country\n");
    for i in 1..=7 {
        orders.push_str(&format!("{i},c{i}\n"));
    }
    write_orders(&project, &orders);

    let (ok, text) = outcome(&project, &["show", "-s", "top"]);
    assert!(!ok);
    assert!(
        text.contains("models/top.sql: model.inc.top reads main.stg, which is not built: run model.inc.stg first"),
        "{text}"
    );

    project.ok(&["run", "-s", "stg"]);
    let out = project.ok(&["show", "-s", "stg"]);
    assert!(out.starts_with("Previewing node 'stg':"), "{out}");
    assert!(
        out.contains("C5") && !out.contains("C6"),
        "five rows by default: {out}"
    );

    let text = project.ok(&["show", "-s", "stg", "--limit", "2", "--output", "json"]);
    assert!(
        text.contains(r#"{"order_id":1,"country":"C1"}"#),
        "columns in the model's order: {text}"
    );
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"node": "stg", "show": [
            {"order_id": 1, "country": "C1"}, {"order_id": 2, "country": "C2"}
        ]})
    );
    let all = project.ok(&["show", "-s", "stg", "--limit", "-1", "--output", "json"]);
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["show"].as_array().unwrap().len(), 7);

    // An ephemeral model, and a view reading it that was never built.
    let eph = project.ok(&["show", "-s", "eph", "--output", "json"]);
    assert!(
        eph.contains("\"C6\"") && eph.contains("\"C7\"") && !eph.contains("\"C5\""),
        "{eph}"
    );
    let top = project.ok(&["show", "-s", "top", "--limit", "1"]);
    assert!(top.contains("C6") && !top.contains("C7"), "{top}");

    let inline = project.ok(&[
        "show",
        "--inline",
        "select {{ shout(\"'done'\") }} as word, count(*) as n from {{ ref('stg') }} where order_id <= {{ var('upto', 3) }}",
        "--vars",
        "{upto: 4}",
        "--output",
        "json",
    ]);
    let inline: serde_json::Value = serde_json::from_str(&inline).unwrap();
    assert_eq!(
        inline,
        serde_json::json!({"node": "inline_query", "show": [{"word": "DONE", "n": 4}]})
    );

    write_files(
        &project,
        &[(
            "models/bad.sql",
            "select order_id,\n  no_such_column\nfrom {{ ref('stg') }}",
        )],
    );
    let (ok, text) = outcome(&project, &["show", "-s", "bad"]);
    assert!(!ok);
    assert!(
        text.contains(
            "target/compiled/inc/models/bad.sql line 2, column 3 (models/bad.sql line 2, column 3)"
        ) && text.contains("no_such_column"),
        "{text}"
    );

    // Nothing was built by the previews.
    let (ok, text) = outcome(&project, &["sql", "-c", "select * from top"]);
    assert!(!ok, "{text}");
    assert_eq!(
        project.scalar("SELECT count(*) FROM _strata.runs"),
        "1",
        "only the run of stg is recorded"
    );
}

const UNIT_TESTS: &str = r#"version: 2
unit_tests:
  - name: cleans_orders
    model: stg_orders
    overrides:
      vars: {min_amount: 10}
    given:
      - input: source('raw', 'orders')
        rows:
          - {order_id: 1, country: fr, amount: 5, status: SHIPPED}
          - {order_id: 2, country: de, amount: 50, status: Placed}
    expect:
      rows:
        - {order_id: 2, country: DE, status: placed}
  - name: report_joins_countries
    model: order_report
    given:
      - input: ref('stg_orders')
        format: csv
        rows: |
          order_id,country,amount,status
          7,FR,1.5,placed
          8,XX,2.0,placed
    expect:
      format: csv
      fixture: report_expected
  - name: only_new_orders
    model: new_orders
    overrides:
      macros: {is_incremental: true}
    given:
      - input: ref('stg_orders')
        format: sql
        rows: "select 1 as order_id, 10.0 as amount union all select 5 as order_id, 20.0 as amount"
      - input: this
        rows: [{order_id: 3, amount: 1.0}]
    expect:
      rows: [{order_id: 5}]
  - name: wrong_on_purpose
    model: stg_orders
    config: {tags: [broken]}
    given:
      - input: source('raw', 'orders')
        rows: [{order_id: 1, country: fr, amount: 5, status: X}]
    expect:
      rows: [{order_id: 1, country: FR, status: y}]
"#;

/// dbt's unit tests: inputs given as dict rows, CSV text, SQL or a fixture file (a seed not
/// given is read from its CSV), vars and `is_incremental` overridden, run by `strata test`
/// without building anything and by `strata build` before their model, whose build a failing
/// one stops; a failure prints the row diff.
#[test]
fn unit_tests_run_on_given_rows() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    write_files(
        &project,
        &[
            (
                "dbt_project.yml",
                "name: ut\nconfig-version: 2\nvars:\n  min_amount: 0\n",
            ),
            ("seeds/countries.csv", "code,name\nFR,France\nDE,Germany\n"),
            (
                "models/sources.yml",
                "version: 2\nsources:\n  - name: raw\n    meta:\n      external_location: \"read_csv('raw_data/{name}.csv', header = true)\"\n    tables:\n      - name: orders\n",
            ),
            (
                "raw_data/orders.csv",
                "order_id,country,amount,status\n1,fr,12.5,SHIPPED\n2,de,3.0,placed\n",
            ),
            (
                "models/stg_orders.sql",
                "select order_id, upper(country) as country, amount, lower(status) as status\nfrom {{ source('raw', 'orders') }} where amount > {{ var('min_amount') }}",
            ),
            (
                "models/order_report.sql",
                "{{ config(materialized='table') }}\nselect o.order_id, c.name as country_name, o.amount * 2 as doubled\nfrom {{ ref('stg_orders') }} o join {{ ref('countries') }} c on o.country = c.code",
            ),
            (
                "models/new_orders.sql",
                "{{ config(materialized='incremental', unique_key='order_id') }}\nselect order_id, amount from {{ ref('stg_orders') }}\n{% if is_incremental() %}where order_id > (select max(order_id) from {{ this }}){% endif %}",
            ),
            ("models/unit.yml", UNIT_TESTS),
            (
                "tests/fixtures/report_expected.csv",
                "order_id,country_name,doubled\n7,France,3.0\n",
            ),
        ],
    );
    let listed = project.ok(&["ls", "-s", "test_type:unit"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");

    // On an empty lake: the inputs are typed from the rows, nothing is built.
    let (ok, out) = outcome(
        &project,
        &["test", "-s", "test_type:unit", "--exclude", "tag:broken"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3"),
        "{out}"
    );
    assert!(!out.contains("not supported"), "{out}");
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('stg_orders', 'order_report', 'countries')"
        ),
        "0"
    );

    // A failure shows which rows differ.
    let (ok, out) = outcome(&project, &["test", "-s", "wrong_on_purpose"]);
    assert!(!ok, "{out}");
    assert!(out.contains("actual differs from expected"), "{out}");
    assert!(out.contains("--- | 1        | FR      | y"), "{out}");
    assert!(out.contains("+++ | 1        | FR      | x"), "{out}");

    // In a build each unit test runs before its model, on inputs typed like the built ones.
    let (ok, out) = outcome(&project, &["build", "--exclude", "tag:broken"]);
    assert!(ok, "{out}");
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {out}"))
    };
    assert!(
        at("test cleans_orders") < at("view main.stg_orders"),
        "{out}"
    );
    assert!(
        at("test report_joins_countries") < at("table main.order_report"),
        "{out}"
    );
    assert_eq!(project.scalar("SELECT count(*) FROM order_report"), "2");
    project.ok(&["test", "-s", "test_type:unit", "--exclude", "tag:broken"]);

    // A failing unit test skips its model and what is built from it.
    let (ok, out) = outcome(&project, &["build", "-s", "stg_orders+"]);
    assert!(!ok, "{out}");
    assert!(out.contains("SKIP  view main.stg_orders"), "{out}");
    assert!(out.contains("SKIP  table main.order_report"), "{out}");
    assert!(out.contains("PASS  test cleans_orders"), "{out}");
}

/// An enforced contract: the planned columns and types must be the declared ones before
/// anything is written (dbt's mismatch table otherwise); the table gets the declared column
/// order; `not_null` and `check` constraints stop a write that breaks them; `primary_key` is
/// reported as not enforced.
#[test]
fn contracts_are_checked_before_writing() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let model = |rows: &str| {
        format!(
            "{{{{ config(materialized='table') }}}}\nselect cast(id as int) as id, cast(score as decimal(10, 2)) as score, name\nfrom (values {rows}) t(id, name, score)"
        )
    };
    let schema = |score_type: &str| {
        format!(
            "version: 2\nmodels:\n  - name: customers\n    config:\n      contract: {{enforced: true}}\n    constraints:\n      - type: primary_key\n        columns: [id]\n    columns:\n      - name: id\n        data_type: integer\n        constraints:\n          - type: not_null\n          - type: check\n            expression: id > 0\n      - name: name\n        data_type: varchar(20)\n      - name: score\n        data_type: {score_type}\n"
        )
    };
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: c\nconfig-version: 2\n"),
            (
                "models/customers.sql",
                &model("(1, 'ann', 5.5), (2, 'bob', 7.25)"),
            ),
            ("models/schema.yml", &schema("numeric(10,2)")),
        ],
    );
    let (ok, out) = outcome(&project, &["build"]);
    assert!(ok, "{out}");
    assert!(!out.contains("not supported"), "{out}");
    assert!(
        out.contains("the primary_key constraint is not enforced by Strata"),
        "{out}"
    );
    let columns = project.query("SELECT * FROM customers ORDER BY id");
    assert_eq!(columns[0], ["id", "name", "score"]);
    assert_eq!(columns[1], ["1", "ann", "5.50"]);
    // The check constraint is the Delta table's too, for other writers.
    let config = table_configuration(&project, "customers");
    assert!(config.contains("delta.constraints.id_check_1"), "{config}");
    project.ok(&["build"]);

    // A declared type the query does not produce: nothing runs, the diff names the column.
    std::fs::write(project.path("models/schema.yml"), schema("bigint")).unwrap();
    let (ok, out) = outcome(&project, &["build"]);
    assert!(!ok, "{out}");
    assert!(out.contains("model.c.customers"), "{out}");
    assert!(out.contains("enforced contract that failed"), "{out}");
    assert!(
        out.contains("| score       | Decimal128(10, 2) | bigint        | data type mismatch |"),
        "{out}"
    );

    // Rows breaking a constraint: the write fails, the table keeps its version.
    std::fs::write(project.path("models/schema.yml"), schema("numeric(10,2)")).unwrap();
    std::fs::write(
        project.path("models/customers.sql"),
        model("(1, 'ann', 5.5), (0, 'zed', 1.0)"),
    )
    .unwrap();
    let (ok, out) = outcome(&project, &["build"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("check constraint (id > 0) is violated"),
        "{out}"
    );
    std::fs::write(
        project.path("models/customers.sql"),
        model("(1, 'ann', 5.5), (null, 'zed', 1.0)"),
    )
    .unwrap();
    let (ok, out) = outcome(&project, &["build"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("not_null constraint on column 'id' is violated"),
        "{out}"
    );
    assert_eq!(project.scalar("SELECT count(*) FROM customers"), "2");
}

/// Hooks: `pre_hook`/`post_hook` (folder configs and `config()`, rendered with `this`) run
/// around their model, `on-run-start`/`on-run-end` around the run, each SQL run by Strata (a
/// view a hook creates is kept in the lake); a failing hook fails its model, or the run.
#[test]
fn hooks_run_around_nodes_and_the_run() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let dbt_project = |start: &str| {
        format!(
            "name: h\nconfig-version: 2\non-run-start:\n  - \"{start}\"\non-run-end: \"create or replace view main.run_end as select '{{{{ target.name }}}}' as target\"\nmodels:\n  h:\n    +pre-hook: \"create or replace view main.pre_{{{{ this.identifier }}}} as select 1 as ok\"\n"
        )
    };
    write_files(
        &project,
        &[
            (
                "dbt_project.yml",
                &dbt_project("create or replace view main.run_marker as select 'started' as state"),
            ),
            (
                "models/a.sql",
                "{{ config(materialized='table', post_hook=['create or replace view main.a_count as select count(*) as n from {{ this }}']) }}\nselect 1 as id union all select 2",
            ),
            (
                "models/b.sql",
                "{{ config(pre_hook='select * from no_such_table') }}\nselect 1 as id",
            ),
        ],
    );
    let (ok, out) = outcome(&project, &["run"]);
    assert!(!ok, "{out}");
    assert!(out.contains("pre-hook 2 of model.h.b"), "{out}");
    assert!(out.contains("no_such_table"), "{out}");
    assert!(!out.contains("not supported"), "{out}");
    assert_eq!(project.scalar("SELECT n FROM main.a_count"), "2");
    assert_eq!(project.scalar("SELECT ok FROM main.pre_a"), "1");
    assert_eq!(
        project.scalar("SELECT state FROM main.run_marker"),
        "started"
    );
    assert_eq!(project.scalar("SELECT target FROM main.run_end"), "dev");

    // A failing on-run-start fails the run before any model.
    std::fs::write(
        project.path("dbt_project.yml"),
        dbt_project("select * from missing_start_table"),
    )
    .unwrap();
    let (ok, out) = outcome(&project, &["run", "-s", "a"]);
    assert!(!ok, "{out}");
    assert!(out.contains("on-run-start 1"), "{out}");
    assert!(!out.contains("table main.a"), "{out}");
}

/// A data test's `warn_if` / `error_if`, `limit`, `where` and `store_failures` /
/// `store_failures_as`: the failing rows are kept in `<schema>_dbt_test__audit`.
#[test]
fn test_configs_decide_and_keep_failures() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let test = |name: &str, config: &str| {
        format!(
            "          - accepted_values:\n              name: {name}\n              arguments:\n                values: [a, b, c]\n              config: {config}\n"
        )
    };
    let properties = format!(
        "version: 2\nmodels:\n  - name: letters\n    columns:\n      - name: code\n        data_tests:\n{}{}{}{}",
        test(
            "few_values",
            "{warn_if: '>5', error_if: '>10', store_failures: true}"
        ),
        test(
            "limited",
            "{limit: 3, error_if: '>5', store_failures_as: view}"
        ),
        test("filtered", "{where: \"code < 'd'\"}"),
        test("strict", "{error_if: '>5'}"),
    );
    let codes: String = ('a'..='l').map(|c| format!("{c}\n")).collect();
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: tc\nconfig-version: 2\n"),
            ("seeds/codes.csv", &format!("code\n{codes}")),
            ("models/letters.sql", "select code from {{ ref('codes') }}"),
            ("models/schema.yml", &properties),
        ],
    );
    let (ok, out) = outcome(&project, &["build"]);
    assert!(!ok, "{out}");
    assert!(!out.contains("not supported"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(&format!("test {name} ")))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .to_string()
    };
    assert!(line("few_values").contains("WARN"), "{out}");
    assert!(line("few_values").contains("[9 failing"), "{out}");
    assert!(line("limited").contains("WARN"), "{out}");
    assert!(line("limited").contains("[3 failing"), "{out}");
    assert!(line("filtered").contains("PASS"), "{out}");
    assert!(line("strict").contains("FAIL"), "{out}");
    assert!(
        out.contains("failing rows stored in main_dbt_test__audit.few_values"),
        "{out}"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM main_dbt_test__audit.few_values"),
        "9"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM main_dbt_test__audit.limited"),
        "3"
    );
    let kinds = project.query(
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_schema = 'main_dbt_test__audit' ORDER BY 1",
    );
    assert_eq!(
        kinds[1..],
        [["few_values", "BASE TABLE"], ["limited", "VIEW"]]
    );
}

/// The add actions of the Delta commit `version` of table `model` (schema `main`): each file's
/// path and its statistics' minimum and maximum of `column`.
fn added_files(project: &Project, model: &str, version: u64, column: &str) -> Vec<(i64, i64)> {
    commit_actions(&project.path(&format!("lake/main/{model}")), version)
        .iter()
        .filter_map(|a| a.get("add"))
        .map(|add| {
            let stats: serde_json::Value =
                serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            (
                stats["minValues"][column].as_i64().unwrap(),
                stats["maxValues"][column].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The commit info of version `version` of table `model` (schema `main`).
fn commit_info(project: &Project, model: &str, version: u64) -> serde_json::Value {
    commit_actions(&project.path(&format!("lake/main/{model}")), version)
        .into_iter()
        .find_map(|a| a.get("commitInfo").cloned())
        .unwrap()
}

/// `cluster_by` (and `tblproperties`' `delta.targetFileSize`): after the model's write an
/// OPTIMIZE commit Z-orders its files by the column, naming it in `zOrderBy`, the rows
/// unchanged, each file then holding its own range of the column, so a filter on it reads
/// one file's rows; an unknown column, or clustering a view, stops the build before it runs.
#[test]
fn cluster_by_z_orders_the_tables_files() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let model = |cluster: &str| {
        format!(
            "{{{{ config(materialized='table', cluster_by={cluster}, tblproperties={{'delta.targetFileSize': 2048}}) }}}}\nselect value as id, (value * 7919) % 1000 as k from range(30000)"
        )
    };
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: cl\nconfig-version: 2\n"),
            ("models/events.sql", &model("['k']")),
        ],
    );
    let (ok, out) = outcome(&project, &["build"]);
    assert!(ok, "{out}");
    assert!(!out.contains("not supported"), "{out}");
    let version: u64 = project
        .scalar("SELECT max(delta_version) FROM _strata.runs WHERE node = 'model.cl.events'")
        .parse()
        .unwrap();
    let info = commit_info(&project, "events", version);
    assert_eq!(info["operation"], "OPTIMIZE", "{info}");
    assert_eq!(info["operationParameters"]["zOrderBy"], "[\"k\"]", "{info}");
    assert_eq!(
        commit_info(&project, "events", version - 2)["operation"],
        "WRITE"
    );
    // The rows are the query's.
    assert_eq!(
        project.query("SELECT count(*), sum(id), sum(k) FROM events")[1],
        project.query("SELECT count(*), sum(value), sum((value * 7919) % 1000) FROM range(30000)")
            [1]
    );
    // Each file holds its own range of k: a filter on k needs one of them.
    let mut files = added_files(&project, "events", version, "k");
    files.sort();
    assert!(files.len() > 2, "{files:?}");
    for pair in files.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping ranges: {files:?}");
    }
    let holding_k_500 = files
        .iter()
        .filter(|(lo, hi)| (*lo..=*hi).contains(&500))
        .count();
    assert!(
        holding_k_500 <= 2 && holding_k_500 < files.len(),
        "{files:?}"
    );

    // dbt-databricks's `zorder` is the same; an unknown column stops the build before it runs.
    std::fs::write(project.path("models/events.sql"), model("['nope']")).unwrap();
    for command in ["compile", "build"] {
        let (ok, out) = outcome(&project, &[command]);
        assert!(!ok, "{out}");
        assert!(
            out.contains("models/events.sql")
                && out.contains("model 'events'")
                && out.contains("`cluster_by` names the column 'nope'"),
            "{out}"
        );
    }
    let unchanged: u64 = project
        .scalar("SELECT max(delta_version) FROM _strata.runs WHERE node = 'model.cl.events'")
        .parse()
        .unwrap();
    assert_eq!(unchanged, version);
    write_files(
        &project,
        &[(
            "models/viewed.sql",
            "{{ config(materialized='view', zorder='id') }}\nselect 1 as id",
        )],
    );
    std::fs::write(project.path("models/events.sql"), model("'k'")).unwrap();
    let (ok, out) = outcome(&project, &["compile"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("`zorder` applies to table and incremental models, not to a view model"),
        "{out}"
    );
}

/// The Delta table properties of `main.<model>`, as another reader (delta-rs's Python) sees them.
fn table_configuration(project: &Project, model: &str) -> String {
    in_python(
        "import sys, deltalake; print(deltalake.DeltaTable(sys.argv[1]).metadata().configuration)",
        &project.path(&format!("lake/main/{model}")),
    )
}

/// A contract's `check` constraint changed between builds replaces the table's Delta
/// constraint (rows the old one refused but the new one allows are written), and one the
/// contract no longer declares is dropped from the table.
#[test]
fn changed_check_constraints_replace_the_tables() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let schema = |constraints: &str| {
        format!(
            "version: 2\nmodels:\n  - name: scores\n    config:\n      contract: {{enforced: true}}\n    columns:\n      - name: id\n        data_type: integer\n        constraints:\n{constraints}      - name: score\n        data_type: integer\n"
        )
    };
    let model = |rows: &str| {
        format!(
            "{{{{ config(materialized='table') }}}}\nselect cast(id as int) as id, cast(score as int) as score from (values {rows}) t(id, score)"
        )
    };
    let positive =
        "          - type: check\n            name: positive_id\n            expression: id > 0\n";
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: cc\nconfig-version: 2\n"),
            ("models/scores.sql", &model("(1, 5), (2, 7)")),
            ("models/schema.yml", &schema(positive)),
        ],
    );
    project.ok(&["build"]);
    let config = table_configuration(&project, "scores");
    assert!(
        config.contains("'delta.constraints.positive_id': 'id > 0'"),
        "{config}"
    );

    // Unchanged: no constraint commit.
    let before = std::fs::read_dir(project.path("lake/main/scores/_delta_log"))
        .unwrap()
        .count();
    project.ok(&["build"]);
    let after = std::fs::read_dir(project.path("lake/main/scores/_delta_log"))
        .unwrap()
        .count();
    assert_eq!(after, before + 1, "one write, no constraint commits");

    // The expression changes: id 0 is allowed now, and the table's constraint is the new one.
    let non_negative =
        "          - type: check\n            name: positive_id\n            expression: id >= 0\n";
    std::fs::write(project.path("models/schema.yml"), schema(non_negative)).unwrap();
    std::fs::write(project.path("models/scores.sql"), model("(0, 5), (2, 7)")).unwrap();
    let (ok, out) = outcome(&project, &["build"]);
    assert!(ok, "{out}");
    let config = table_configuration(&project, "scores");
    assert!(
        config.contains("'delta.constraints.positive_id': 'id >= 0'"),
        "{config}"
    );
    assert_eq!(project.scalar("SELECT min(id) FROM scores"), "0");

    // Renamed: the old name goes, the new one comes.
    let renamed =
        "          - type: check\n            name: known_id\n            expression: id >= 0\n";
    std::fs::write(project.path("models/schema.yml"), schema(renamed)).unwrap();
    project.ok(&["build"]);
    let config = table_configuration(&project, "scores");
    assert!(config.contains("delta.constraints.known_id"), "{config}");
    assert!(!config.contains("positive_id"), "{config}");

    // Removed: dropped from the table.
    std::fs::write(
        project.path("models/schema.yml"),
        schema("          - type: not_null\n"),
    )
    .unwrap();
    project.ok(&["build"]);
    let config = table_configuration(&project, "scores");
    assert!(!config.contains("delta.constraints"), "{config}");
}

/// Unit tests as dbt runs them beyond plain inputs: a given ephemeral model's rows replace its
/// CTE, `overrides.macros` sets what a macro call returns (a project macro or dbt's own),
/// `overrides.env_vars` what `env_var` answers; an override of no macro fails naming the test,
/// and `versions` (Strata has no model versions) is reported as not applied.
#[test]
fn unit_tests_give_ephemeral_rows_and_override_macros_and_env_vars() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let unit_tests = |extra_macro: &str| {
        format!(
            r#"version: 2
unit_tests:
  - name: scaled_and_taxed
    model: report
    overrides:
      env_vars: {{FACTOR: 3}}
      macros:
        tax_rate: 0.5
        current_timestamp: "cast('2024-01-01 00:00:00' as timestamp)"{extra_macro}
    given:
      - input: ref('eph')
        rows: [{{id: 1, amount: 10}}, {{id: 2, amount: 4}}]
    expect:
      rows:
        - {{id: 1, scaled: 30, taxed: 5.0, at: "2024-01-01 00:00:00"}}
        - {{id: 2, scaled: 12, taxed: 2.0, at: "2024-01-01 00:00:00"}}
  - name: versioned
    model: report
    versions: {{include: [1]}}
    given:
      - input: ref('eph')
        rows: []
    expect:
      rows: []
"#
        )
    };
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: uo\nconfig-version: 2\n"),
            ("seeds/amounts.csv", "id,amount\n7,100\n"),
            ("macros/tax.sql", "{% macro tax_rate() %}0.2{% endmacro %}"),
            (
                "models/eph.sql",
                "{{ config(materialized='ephemeral') }}\nselect id, amount from {{ ref('amounts') }}",
            ),
            (
                "models/report.sql",
                "select id, amount * {{ env_var('FACTOR', '1') }} as scaled, amount * {{ tax_rate() }} as taxed, {{ current_timestamp() }} as at from {{ ref('eph') }}",
            ),
            ("models/unit.yml", &unit_tests("")),
        ],
    );
    let (ok, out) = outcome(&project, &["test", "-s", "scaled_and_taxed"]);
    assert!(ok, "{out}");
    assert!(out.contains("PASS=1"), "{out}");
    assert!(!out.contains("overrides"), "{out}");
    assert!(out.contains("`versions` is not supported yet"), "{out}");

    // Without the overrides the model reads its seed, the environment and the macro.
    project.ok(&["build", "--exclude", "test_type:unit"]);
    assert_eq!(
        project.query("SELECT id, scaled, taxed FROM report")[1],
        ["7", "100", "20.0"]
    );

    let (ok, out) = outcome(&project, &["test", "-s", "scaled_and_taxed"]);
    assert!(ok, "{out}");
    std::fs::write(
        project.path("models/unit.yml"),
        unit_tests("\n        no_such_macro: 1"),
    )
    .unwrap();
    let (ok, out) = outcome(&project, &["test", "-s", "scaled_and_taxed"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("unit test scaled_and_taxed")
            && out.contains("overrides.macros.no_such_macro: no macro of that name"),
        "{out}"
    );
}

/// Hooks in dbt's dict form (`{sql: ..., transaction: ...}`, `before_begin()`,
/// `after_commit()`) run their SQL; `on-run-end` sees dbt's `results` and `schemas`.
#[test]
fn hook_dicts_run_and_on_run_end_sees_the_results() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let dbt_project = r#"name: hd
config-version: 2
on-run-end:
  - "create or replace view main.run_results as {% for r in results %}select '{{ r.node.unique_id }}' as id, '{{ r.status }}' as status, {{ r.adapter_response.rows_affected or 0 }} as rows_affected, {{ r.execution_time >= 0 }} as timed, '{{ r.message }}' as message{% if not loop.last %} union all {% endif %}{% endfor %}"
  - "create or replace view main.run_schemas as select '{{ schemas | join(',') }}' as schemas, '{{ database_schemas | length }}' as pairs"
models:
  hd:
    +post-hook:
      - sql: "create or replace view main.{{ this.identifier }}_folder as select 3 as ok"
        transaction: true
"#;
    write_files(
        &project,
        &[
            ("dbt_project.yml", dbt_project),
            (
                "models/a.sql",
                "{{ config(materialized='table', post_hook={'sql': 'create or replace view main.a_post as select 1 as ok', 'transaction': false}) }}\nselect 1 as id union all select 2",
            ),
            (
                "models/b.sql",
                "{{ config(pre_hook=before_begin('create or replace view main.b_pre as select 2 as ok'), post_hook=[after_commit('create or replace view main.b_post as select 4 as ok')]) }}\nselect 1 as id",
            ),
        ],
    );
    let (ok, out) = outcome(&project, &["run"]);
    assert!(ok, "{out}");
    assert!(!out.contains("not supported"), "{out}");
    assert_eq!(project.scalar("SELECT ok FROM main.a_post"), "1");
    assert_eq!(project.scalar("SELECT ok FROM main.a_folder"), "3");
    assert_eq!(project.scalar("SELECT ok FROM main.b_pre"), "2");
    assert_eq!(project.scalar("SELECT ok FROM main.b_post"), "4");
    assert_eq!(project.scalar("SELECT ok FROM main.b_folder"), "3");
    let results = project.query(
        "SELECT id, status, rows_affected, timed, message FROM main.run_results ORDER BY id",
    );
    assert_eq!(
        results[1..],
        [
            ["model.hd.a", "success", "2", "true", "OK"],
            ["model.hd.b", "success", "0", "true", "OK"]
        ]
    );
    assert_eq!(
        project.query("SELECT * FROM main.run_schemas")[1],
        ["main", "1"]
    );
}

/// `--store-failures` (test and build): every data test keeps its failing rows as if
/// configured `store_failures: true`, but one whose config says `store_failures: false`.
#[test]
fn store_failures_flag_keeps_every_tests_failures() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: sf\nconfig-version: 2\n"),
            (
                "models/letters.sql",
                "select * from (values ('a'), (null), (null)) t(code)",
            ),
            (
                "models/schema.yml",
                "version: 2\nmodels:\n  - name: letters\n    columns:\n      - name: code\n        data_tests:\n          - not_null\n          - accepted_values:\n              arguments:\n                values: [b]\n              config: {store_failures: false}\n",
            ),
            // dbt's should_store_failures() follows the flag: this test fails only with it.
            (
                "tests/flagged.sql",
                "select code from {{ ref('letters') }} where code = 'a' and {{ should_store_failures() }}",
            ),
        ],
    );
    project.ok(&["run"]);
    let (ok, out) = outcome(&project, &["test", "-s", "flagged"]);
    assert!(ok, "{out}");
    let (ok, out) = outcome(&project, &["test", "--store-failures"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("failing rows stored in main_dbt_test__audit.not_null_letters_code"),
        "{out}"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM main_dbt_test__audit.not_null_letters_code"),
        "2"
    );
    assert_eq!(
        project.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main_dbt_test__audit'"
        ),
        "2"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM main_dbt_test__audit.flagged"),
        "1"
    );
    let (ok, out) = outcome(&project, &["run", "--store-failures"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("--store-failures is for test and build"),
        "{out}"
    );
}

/// An incremental model's bad config (an unknown strategy, insert_overwrite without
/// partition_by, microbatch without event_time, a merge key the model does not return) is
/// found by the static check: `compile` and `build` name each model and its file, nothing runs.
#[test]
fn incremental_config_errors_are_found_before_anything_runs() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    let model = |config: &str| {
        format!(
            "{{{{ config(materialized='incremental', {config}) }}}}\nselect 1 as id, date '2026-01-01' as day"
        )
    };
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: ic\nconfig-version: 2\n"),
            (
                "models/fine.sql",
                "{{ config(materialized='table') }}\nselect 1 as id",
            ),
            ("models/upsert.sql", &model("incremental_strategy='upsert'")),
            (
                "models/overwrite.sql",
                &model("incremental_strategy='insert_overwrite'"),
            ),
            (
                "models/batches.sql",
                &model("incremental_strategy='microbatch', batch_size='day', begin='2026-01-01'"),
            ),
            ("models/merged.sql", &model("unique_key='order_id'")),
            (
                "models/updated.sql",
                &model("unique_key='id', merge_update_columns=['amount']"),
            ),
        ],
    );
    for command in ["compile", "build"] {
        let (ok, out) = outcome(&project, &[command]);
        assert!(!ok, "{out}");
        for (file, message) in [
            (
                "models/upsert.sql",
                "incremental_strategy 'upsert' is not one Strata has",
            ),
            (
                "models/overwrite.sql",
                "'insert_overwrite' needs partition_by",
            ),
            ("models/batches.sql", "'microbatch' needs `event_time`"),
            (
                "models/merged.sql",
                "`unique_key` names the column 'order_id'",
            ),
            (
                "models/updated.sql",
                "`merge_update_columns` names the column 'amount'",
            ),
        ] {
            let model = file.trim_start_matches("models/").trim_end_matches(".sql");
            assert!(
                out.contains(&format!("model.ic.{model} ({file})"))
                    && out.contains(&format!("model '{model}': "))
                    && out.contains(message),
                "{command} {file}: {out}"
            );
        }
    }
    assert!(!project.path("lake/main/fine").exists(), "nothing ran");
}

/// A `cluster_by` OPTIMIZE that fails after the write (an incremental model whose table does
/// not take the clustered column: `on_schema_change: ignore`) fails the model saying the
/// written version is the table's and readable; it is.
#[test]
fn a_failed_cluster_by_leaves_the_written_version_readable() {
    let project = Project::new(LakeKind::Local, NO_SOURCES);
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: cf\nconfig-version: 2\n"),
            (
                "models/grown.sql",
                "{{ config(materialized='incremental') }}\nselect value as id from range(10)",
            ),
        ],
    );
    project.ok(&["build"]);
    std::fs::write(
        project.path("models/grown.sql"),
        "{{ config(materialized='incremental', cluster_by='k') }}\nselect value as id, value % 3 as k from range(10)",
    )
    .unwrap();
    let (ok, out) = outcome(&project, &["build"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("main.grown: version 1 is written and readable, but Z-ordering it by k (cluster_by) failed")
            && out.contains("the table has no column 'k'"),
        "{out}"
    );
    assert_eq!(project.scalar("SELECT count(*) FROM grown"), "20");
}
