//! `strata source freshness` as dbt's: each source table's latest load (the maximum of its
//! `loaded_at_field`, or a bronze table's latest landing from the ingest log) against its
//! `warn_after` / `error_after`, one line each, dbt's `sources.json` (checked with
//! dbt-artifacts-parser) and a failing exit on an error.

mod common;

use chrono::{Duration, Utc};
use common::{LakeKind, Project, in_python};

/// `strata source freshness` with `args`: success, and stdout with stderr.
fn freshness(project: &Project, args: &[&str]) -> (bool, String) {
    let mut all = vec!["source", "freshness"];
    all.extend_from_slice(args);
    let out = project.run(&all);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `target/sources.json` as dbt-artifacts-parser reads it: `unique_id status` per result.
fn parsed_results(project: &Project) -> Vec<String> {
    let script = "import json, sys\nfrom dbt_artifacts_parser.parser import parse_sources\n\
                  sources = parse_sources(json.load(open(sys.argv[1])))\n\
                  assert sources.metadata.dbt_schema_version.endswith('/sources/v3.json')\n\
                  for r in sources.results:\n    print(r.unique_id, r.status.value)\n";
    let mut lines: Vec<String> = in_python(script, &project.path("target/sources.json"))
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn write(project: &Project, path: &str, text: &str) {
    let path = project.path(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The dbt project `fresh`, whose sources are declared by `sources_yml`.
fn dbt_project(project: &Project, sources_yml: &str) {
    write(
        project,
        "dbt_project.yml",
        "name: fresh\nconfig-version: 2\n",
    );
    write(project, "models/sources.yml", sources_yml);
}

const SEEDED_SOURCES: &str = r#"version: 2
sources:
  - name: ops
    schema: main
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 1, period: hour}
      error_after: {count: 1, period: day}
    tables:
      - name: warned
        identifier: loads
        freshness: {filter: "id < 3"}
      - name: stale
        identifier: loads
        freshness:
          error_after: {count: 90, period: minute}
          filter: "id < 3"
      - name: recent
        identifier: loads
        freshness: {filter: "id = 3"}
      - name: configured
        identifier: loads
        config:
          freshness: {warn_after: {count: 5, period: minute}, filter: "id = 3"}
      - name: off
        identifier: loads
        freshness: null
      - name: missing
        identifier: no_such_table
"#;

/// Thresholds on a seed whose load times are set relative to now: warn, error (stale), pass,
/// `filter`, dbt 1.10's `config: {freshness}`, `freshness: null`, and a table that cannot be
/// read; a selection of one passing table succeeds, with `--strict`.
#[test]
fn freshness_follows_the_thresholds_of_each_table() {
    let project = Project::new(LakeKind::Local, "sources: []\n");
    let at = |minutes: i64| {
        (Utc::now() - Duration::minutes(minutes))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    dbt_project(&project, SEEDED_SOURCES);
    write(
        &project,
        "seeds/loads.csv",
        &format!("id,loaded_at\n1,{}\n2,{}\n3,{}\n", at(120), at(180), at(10)),
    );
    project.ok(&["seed"]);

    let (ok, text) = freshness(&project, &[]);
    assert!(!ok, "an error fails the command: {text}");
    for (label, table) in [
        ("WARN", "warned"),
        ("ERROR STALE", "stale"),
        ("PASS", "recent"),
        ("WARN", "configured"),
        ("ERROR", "missing"),
    ] {
        assert!(
            text.lines().any(|l| l.contains(&format!("{label} "))
                && l.contains(&format!("freshness of ops.{table} "))),
            "{label} {table}: {text}"
        );
    }
    assert!(!text.contains("ops.off"), "{text}");
    assert!(
        text.contains("PASS=1 WARN=2 ERROR=1 RUNTIME ERROR=1 TOTAL=5"),
        "{text}"
    );
    assert_eq!(
        parsed_results(&project),
        [
            "source.fresh.ops.configured warn",
            "source.fresh.ops.missing runtime error",
            "source.fresh.ops.recent pass",
            "source.fresh.ops.stale error",
            "source.fresh.ops.warned warn",
        ]
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.path("target/sources.json")).unwrap())
            .unwrap();
    let stale = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "source.fresh.ops.stale")
        .unwrap();
    let age = stale["max_loaded_at_time_ago_in_s"].as_f64().unwrap();
    assert!((7200.0..7500.0).contains(&age), "{stale}");
    assert_eq!(
        stale["criteria"],
        serde_json::json!({
            "warn_after": {"count": 1, "period": "hour"},
            "error_after": {"count": 90, "period": "minute"},
            "filter": "id < 3",
        })
    );

    let (ok, text) = freshness(&project, &["-s", "source:ops.recent", "--strict"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("PASS=1 WARN=0 ERROR=0 RUNTIME ERROR=0 TOTAL=1"),
        "{text}"
    );
    assert_eq!(parsed_results(&project), ["source.fresh.ops.recent pass"]);
}

/// A bronze source without `loaded_at_field`: its latest load is when `strata land` last
/// landed a file of it, from the ingest log; a table nothing landed in cannot be checked.
fn bronze_freshness_reads_the_ingest_log(kind: LakeKind) {
    let project = Project::new(
        kind,
        "sources:\n  - name: shop\n    kind: folder\n    location: drop\n    tables:\n      - name: orders\n        pattern: \"orders/*.csv\"\n        format: csv\n      - name: customers\n        pattern: \"customers/*.csv\"\n        format: csv\n",
    );
    write(&project, "drop/orders/a.csv", "order_id,amount\n1,2.5\n");
    dbt_project(
        &project,
        "version: 2\nsources:\n  - name: shop\n    schema: bronze\n    freshness:\n      error_after: {count: 1, period: hour}\n    tables:\n      - name: orders\n      - name: orders_now\n        identifier: orders\n        freshness: {warn_after: {count: 0, period: minute}, filter: \"order_id > 0\"}\n      - name: customers\n",
    );
    project.ok(&["land"]);

    let (ok, text) = freshness(&project, &["-s", "source:shop.orders"]);
    assert!(ok, "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.path("target/sources.json")).unwrap())
            .unwrap();
    let result = &json["results"][0];
    assert_eq!(result["status"], "pass", "{json}");
    let landed = project.scalar("SELECT max(landed_at) FROM _strata.ingest_log");
    let max_loaded_at = result["max_loaded_at"].as_str().unwrap();
    assert_eq!(
        &max_loaded_at[..19],
        &landed.replace(' ', "T")[..19],
        "{json} vs {landed}"
    );

    let (ok, text) = freshness(&project, &["-s", "source:shop"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("nothing has landed in bronze for shop.customers yet"),
        "{text}"
    );
    assert!(
        text.contains("warning: models/sources.yml: source.fresh.shop.orders_now: freshness.filter `order_id > 0` needs a loaded_at_field"),
        "{text}"
    );
    assert_eq!(
        parsed_results(&project),
        [
            "source.fresh.shop.customers runtime error",
            "source.fresh.shop.orders pass",
            "source.fresh.shop.orders_now warn",
        ]
    );
}

#[test]
fn bronze_freshness_reads_the_ingest_log_on_local_disk() {
    bronze_freshness_reads_the_ingest_log(LakeKind::Local);
}

#[test]
fn bronze_freshness_reads_the_ingest_log_on_hdfs() {
    bronze_freshness_reads_the_ingest_log(LakeKind::Hdfs);
}

/// The example project's sources check out right after landing, with nothing reported as
/// unsupported about them.
#[test]
fn the_example_project_is_fresh_right_after_landing() {
    let project = Project::shop(LakeKind::Local);
    common::copy_example_project(project.dir.path());
    project.ok(&[
        "generate",
        "--out",
        "drop",
        "--scale",
        "500",
        "--batches",
        "1",
    ]);
    project.ok(&["land"]);
    let (ok, text) = freshness(&project, &["--strict"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("PASS=7 WARN=0 ERROR=0 RUNTIME ERROR=0 TOTAL=7"),
        "{text}"
    );
}
