//! dbt's artifacts and what reads them back, on a local lake: manifest.json, run_results.json
//! and catalog.json parsed by the dbt ecosystem's own parser (`dbt-artifacts-parser`), `retry`
//! of failed nodes and of a microbatch model's failed batch, `state:modified` selection and
//! `--defer` against a saved manifest.

mod common;

use common::{LakeKind, Project, in_python, outcome, sha256, write_files};

fn mini() -> Project {
    Project::new(LakeKind::Local, "sources: []\n").with_fixture("mini")
}

fn artifact(project: &Project, file: &str) -> serde_json::Value {
    let path = project.path(&format!("target/{file}"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Each result's unique id and status in the last run_results.json, sorted.
fn statuses(project: &Project) -> Vec<(String, String)> {
    let results = artifact(project, "run_results.json");
    let mut out: Vec<(String, String)> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The artifacts of a build and of `docs generate`, read by `dbt-artifacts-parser` (dbt's
/// schemas as pydantic models, which refuse unknown fields): every resource type lands in
/// its dbt class, checksums are dbt's (sha256 of the stripped file), results carry status,
/// timing, failures and relation, the catalog each built relation's columns and row count.
#[test]
fn artifacts_parse_as_dbt_artifacts() {
    let project = mini();
    write_files(
        &project,
        &[
            (
                "models/staging/unit.yml",
                "version: 2\nunit_tests:\n  - name: keeps_big_orders\n    model: stg_orders\n    overrides:\n      vars: {min_amount: 10}\n    given:\n      - input: ref('raw_orders')\n        rows:\n          - {order_id: 1, customer_id: 10, amount: 5, order_date: '2026-01-01', loaded_at: 1}\n          - {order_id: 2, customer_id: 10, amount: 50, order_date: '2026-01-01', loaded_at: 1}\n    expect:\n      rows:\n        - {order_id: 2}\n",
            ),
            (
                "snapshots/orders_history.sql",
                "{% snapshot orders_history %}\n{{ config(unique_key='order_id', strategy='check', check_cols='all') }}\nselect order_id, amount from {{ ref('raw_orders') }}\n{% endsnapshot %}\n",
            ),
        ],
    );
    // Parsing alone writes the manifest, as dbt's parse does.
    project.ok(&["ls"]);
    let manifest = artifact(&project, "manifest.json");
    assert_eq!(manifest["metadata"]["adapter_type"], "strata");
    assert!(manifest["nodes"]["model.mini.stg_orders"]["compiled_code"].is_null());

    project.ok(&["build"]);
    project.ok(&["docs", "generate"]);
    let stg = std::fs::read_to_string(project.path("models/staging/stg_orders.sql")).unwrap();
    let script = r#"
import json, sys
from dbt_artifacts_parser.parser import parse_manifest, parse_run_results, parse_catalog
target = sys.argv[1]
load = lambda name: json.load(open(f"{target}/{name}"))
m = parse_manifest(load("manifest.json"))
r = parse_run_results(load("run_results.json"))
c = parse_catalog(load("catalog.json"))
stg = m.nodes["model.mini.stg_orders"]
out = {
    "manifest": type(m).__name__,
    "kinds": sorted({type(n).__name__ + ":" + getattr(n.resource_type, "value", n.resource_type) for n in m.nodes.values()}),
    "stg_checksum": stg.checksum.checksum,
    "stg_compiled": "from" in (stg.compiled_code or ""),
    "stg_parents": stg.depends_on.nodes,
    "stg_children": sorted(m.child_map["model.mini.stg_orders"]),
    "generic": [n.test_metadata.name for n in m.nodes.values() if getattr(n, "test_metadata", None)],
    "unit_tests": sorted(m.unit_tests),
    "run_results": type(r).__name__,
    "which": r.args["which"],
    "statuses": sorted({getattr(x.status, "value", x.status) for x in r.results}),
    "test_failures": sorted({x.failures for x in r.results if x.unique_id.startswith("test.")}),
    "relation": [x.relation_name for x in r.results if x.unique_id == "model.mini.stg_orders"],
    "catalog": type(c).__name__,
    "columns": list(c.nodes["model.mini.fct_orders"].columns),
    "rows": c.nodes["model.mini.fct_orders"].stats["num_rows"].value,
    "view": c.nodes["model.mini.stg_orders"].metadata.type,
}
print(json.dumps(out))
"#;
    let out = in_python(script, &project.path("target"));
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["manifest"], "ManifestV12");
    assert_eq!(
        got["kinds"],
        serde_json::json!([
            "Nodes2:test",
            "Nodes4:model",
            "Nodes6:test",
            "Nodes7:snapshot",
            "Nodes:seed"
        ])
    );
    assert_eq!(got["stg_checksum"], sha256(stg.trim().as_bytes()));
    assert_eq!(got["stg_compiled"], true);
    assert_eq!(
        got["stg_parents"],
        serde_json::json!(["seed.mini.raw_orders"])
    );
    assert!(
        got["stg_children"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "unit_test.mini.stg_orders.keeps_big_orders"
            )),
        "{got}"
    );
    let generic = got["generic"].as_array().unwrap();
    for name in ["not_null", "unique", "relationships", "accepted_values"] {
        assert!(generic.contains(&serde_json::json!(name)), "{got}");
    }
    assert_eq!(
        got["unit_tests"],
        serde_json::json!(["unit_test.mini.stg_orders.keeps_big_orders"])
    );
    assert_eq!(got["run_results"], "RunResultsV6");
    assert_eq!(got["which"], "build");
    assert_eq!(got["statuses"], serde_json::json!(["pass", "success"]));
    assert_eq!(got["test_failures"], serde_json::json!([0]));
    assert_eq!(got["relation"], serde_json::json!(["silver.stg_orders"]));
    assert_eq!(got["catalog"], "CatalogV1");
    assert_eq!(got["rows"], 3.0);
    assert_eq!(got["view"], "VIEW");
    assert!(
        got["columns"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("order_id")),
        "{got}"
    );
}

/// A project whose model `broken` fails at run time (a cast of text to int), with a child
/// that is skipped and a sibling that builds.
fn failing_project() -> Project {
    let project = Project::new(LakeKind::Local, "sources: []\n");
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: rt\nconfig-version: 2\n"),
            (
                "models/base.sql",
                "{{ config(materialized='table') }}\nselect 1 as id, 'x' as code",
            ),
            (
                "models/broken.sql",
                "{{ config(materialized='table') }}\nselect id, cast(code as int) as n from {{ ref('base') }}",
            ),
            (
                "models/child.sql",
                "{{ config(materialized='table') }}\nselect * from {{ ref('broken') }}",
            ),
            (
                "models/sibling.sql",
                "{{ config(materialized='table') }}\nselect id from {{ ref('base') }}",
            ),
        ],
    );
    project
}

/// `retry` runs again, with the last command's arguments, only what errored or was skipped:
/// once the model is fixed, it and its skipped child, nothing else; then there is nothing left.
#[test]
fn retry_runs_only_what_did_not_succeed() {
    let project = failing_project();
    let (ok, text) = outcome(&project, &["retry"]);
    assert!(!ok, "{text}");
    assert!(text.contains("run_results.json is missing"), "{text}");

    let (ok, text) = outcome(&project, &["run", "--vars", "{x: 1}"]);
    assert!(!ok, "{text}");
    assert_eq!(
        statuses(&project),
        [
            ("model.rt.base".into(), "success".into()),
            ("model.rt.broken".into(), "error".into()),
            ("model.rt.child".into(), "skipped".into()),
            ("model.rt.sibling".into(), "success".into()),
        ]
    );
    let results = artifact(&project, "run_results.json");
    assert_eq!(results["args"]["which"], "run");
    assert_eq!(results["args"]["vars"], serde_json::json!({"x": 1}));

    // Still broken: the retry fails the same way and keeps what to retry.
    let (ok, text) = outcome(&project, &["retry"]);
    assert!(!ok, "{text}");
    write_files(
        &project,
        &[(
            "models/broken.sql",
            "{{ config(materialized='table') }}\nselect id, length(code) as n from {{ ref('base') }}",
        )],
    );
    let out = project.ok(&["retry"]);
    assert!(out.contains("Retrying 2 node(s) of the last run"), "{out}");
    assert!(
        out.contains("PASS=2 WARN=0 ERROR=0 SKIP=0 TOTAL=2"),
        "{out}"
    );
    assert_eq!(
        statuses(&project),
        [
            ("model.rt.broken".into(), "success".into()),
            ("model.rt.child".into(), "success".into()),
        ]
    );
    assert_eq!(
        artifact(&project, "run_results.json")["args"]["which"],
        "run"
    );
    assert_eq!(project.scalar("SELECT n FROM main.child"), "1");
    let out = project.ok(&["retry"]);
    assert!(out.contains("Nothing to retry"), "{out}");
}

/// A microbatch model one of whose batches fails runs every batch (dbt ≥ 1.9): the others are
/// committed, the model is a partial success with the failed window in `batch_results`, and
/// `retry` builds only that window.
#[test]
fn retry_builds_only_a_microbatch_models_failed_batch() {
    let today = chrono::Utc::now().date_naive();
    let day = |n: i64| (today - chrono::Duration::days(n)).to_string();
    let (d0, d1, d2) = (day(2), day(1), day(0));
    let project = Project::new(LakeKind::Local, "sources: []\n");
    let events = format!(
        "{{{{ config(materialized='table', event_time='at') }}}}\nselect cast(at as timestamp) as at, cast(v as int) as v from (values ('{d0} 06:00:00', 1), ('{d1} 06:00:00', 0), ('{d2} 06:00:00', 5)) t(at, v)"
    );
    let daily = |expression: &str| {
        format!(
            "{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='at', batch_size='day', begin='{d0}') }}}}\nselect at, {expression} as r from {{{{ ref('events') }}}}"
        )
    };
    write_files(
        &project,
        &[
            ("dbt_project.yml", "name: mb\nconfig-version: 2\n"),
            ("models/events.sql", &events),
            ("models/daily.sql", &daily("10 / v")),
        ],
    );
    let (ok, text) = outcome(&project, &["run"]);
    assert!(!ok, "{text}");
    assert!(text.contains("PARTIAL"), "{text}");
    assert!(
        text.contains(&format!("batch {d1} (2 of 3) failed")),
        "{text}"
    );
    let results = artifact(&project, "run_results.json");
    let daily_result = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.mb.daily")
        .unwrap()
        .clone();
    assert_eq!(daily_result["status"], "partial success");
    // dbt's own schema knows the status and the batches.
    let script = "import json, sys\nfrom dbt_artifacts_parser.parser import parse_run_results\nr = parse_run_results(json.load(open(sys.argv[1])))\nx = [x for x in r.results if x.unique_id == 'model.mb.daily'][0]\nprint(getattr(x.status, 'value', x.status), len(x.batch_results.successful), len(x.batch_results.failed))";
    let parsed = in_python(script, &project.path("target/run_results.json"));
    assert_eq!(parsed.trim(), "partial success 2 1");
    let window = |d: &str, e: &str| {
        serde_json::json!([format!("{d}T00:00:00+00:00"), format!("{e}T00:00:00+00:00")])
    };
    let next = (today + chrono::Duration::days(1)).to_string();
    assert_eq!(
        daily_result["batch_results"],
        serde_json::json!({"successful": [window(&d0, &d1), window(&d2, &next)], "failed": [window(&d1, &d2)]})
    );
    let rows =
        || project.query("SELECT cast(at as date) as d, r FROM daily ORDER BY d")[1..].to_vec();
    assert_eq!(
        rows(),
        [[d0.clone(), "10".into()], [d2.clone(), "2".into()]]
    );

    // Fixed: the retry builds d1's batch alone (the others keep their commits).
    write_files(&project, &[("models/daily.sql", &daily("20 / (v + 1)"))]);
    let out = project.ok(&["retry"]);
    assert!(
        out.contains(&format!("only its failed batches {d1}")),
        "{out}"
    );
    assert!(out.contains(&format!("1 batch: {d1}")), "{out}");
    assert_eq!(
        rows(),
        [
            [d0.clone(), "10".into()],
            [d1.clone(), "20".into()],
            [d2.clone(), "2".into()]
        ]
    );
    let results = artifact(&project, "run_results.json");
    assert_eq!(results["results"][0]["status"], "success");
    assert_eq!(
        results["results"][0]["batch_results"]["successful"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// Saves the project's manifest as a `--state` folder would hold it; returns the folder.
fn save_state(project: &Project) -> String {
    let state = project.path("prod-state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        project.path("target/manifest.json"),
        state.join("manifest.json"),
    )
    .unwrap();
    state.display().to_string()
}

/// The nodes `strata ls` lists, by name.
fn listed(project: &Project, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ls"];
    all.extend_from_slice(args);
    let mut names: Vec<String> = project
        .ok(&all)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect();
    names.sort();
    names
}

/// `state:modified` against a saved manifest selects exactly the edited model (and a new one),
/// `+` adds its children; a config change is `modified.configs`, not `.body`. A missing state
/// manifest is named.
#[test]
fn state_modified_selects_what_changed_since_the_saved_manifest() {
    let project = mini();
    project.ok(&["ls"]);
    let state = save_state(&project);

    assert!(listed(&project, &["-s", "state:modified", "--state", &state]).is_empty());
    let sql = project.path("models/staging/stg_orders.sql");
    let text = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(&sql, format!("{text}\n  and order_id > 0")).unwrap();
    assert_eq!(
        listed(&project, &["-s", "state:modified", "--state", &state]),
        ["stg_orders"]
    );
    let children = listed(&project, &["-s", "state:modified+", "--state", &state]);
    for name in [
        "stg_orders",
        "fct_orders",
        "dim_customers",
        "not_null_fct_orders_order_id",
    ] {
        assert!(children.contains(&name.to_string()), "{children:?}");
    }
    assert!(
        !children.contains(&"raw_orders".to_string()),
        "{children:?}"
    );

    write_files(&project, &[("models/marts/new_model.sql", "select 1 as x")]);
    let dbt_project = project.path("dbt_project.yml");
    let config = std::fs::read_to_string(&dbt_project)
        .unwrap()
        .replace("+tags: [nightly]", "+tags: [hourly]");
    std::fs::write(&dbt_project, config).unwrap();
    assert_eq!(
        listed(&project, &["-s", "state:new", "--state", &state]),
        ["new_model"]
    );
    assert_eq!(
        listed(
            &project,
            &[
                "-s",
                "state:modified.configs",
                "--exclude",
                "resource_type:test",
                "--state",
                &state
            ]
        ),
        ["dim_customers", "events_log", "fct_orders"]
    );
    assert_eq!(
        listed(&project, &["-s", "state:modified.body", "--state", &state]),
        ["stg_orders"]
    );

    let (ok, text) = outcome(
        &project,
        &["ls", "-s", "state:modified", "--state", "nowhere"],
    );
    assert!(!ok);
    assert!(text.contains("nowhere/manifest.json"), "{text}");
    let (ok, text) = outcome(&project, &["ls", "-s", "state:modified"]);
    assert!(!ok);
    assert!(text.contains("--state"), "{text}");
}

/// `--defer --state`: a model built alone reads its unbuilt parent from the relation the saved
/// manifest names (here the production schema an earlier build used), when the lake has it.
#[test]
fn defer_reads_an_unbuilt_parent_from_the_state_manifest() {
    let project = Project::new(LakeKind::Local, "sources: []\n");
    let dbt_project = |schema: &str| {
        format!(
            "name: df\nconfig-version: 2\nmodels:\n  df:\n    +schema: {schema}\n    +materialized: table\n"
        )
    };
    write_files(
        &project,
        &[
            ("dbt_project.yml", &dbt_project("prod")),
            ("models/parent.sql", "select 7 as id"),
            (
                "models/child.sql",
                "select id * 2 as doubled from {{ ref('parent') }}",
            ),
        ],
    );
    project.ok(&["run"]);
    let state = save_state(&project);

    write_files(&project, &[("dbt_project.yml", &dbt_project("dev"))]);
    let (ok, text) = outcome(&project, &["run", "-s", "child"]);
    assert!(!ok, "without --defer the dev parent is missing: {text}");
    let out = project.ok(&["compile", "-s", "child", "--defer", "--state", &state]);
    assert!(
        out.contains("Deferred model.df.parent to prod.parent"),
        "{out}"
    );
    let compiled = std::fs::read_to_string(project.path("target/compiled/df/models/child.sql"));
    assert!(compiled.unwrap().contains("prod"));
    let out = project.ok(&["run", "-s", "child", "--defer", "--state", &state]);
    assert!(
        out.contains("Deferred model.df.parent to prod.parent"),
        "{out}"
    );
    assert_eq!(project.scalar("SELECT doubled FROM dev.child"), "14");
    let (ok, _) = outcome(&project, &["sql", "-c", "SELECT * FROM dev.parent"]);
    assert!(!ok, "the parent was not built in dev");
}
