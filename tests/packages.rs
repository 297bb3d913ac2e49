//! dbt packages as projects use them: `strata deps` installing a package from a local git
//! repository (file URL, pinned revision, subdirectory) or a folder, the package's dispatched
//! macros, generic tests, models and seeds built like the project's own, a pivot whose columns
//! come from the data (rendered once its input is built), and dbt-utils-style idioms whose
//! results are compared with what the same SQL gives in PostgreSQL.

mod common;

use std::path::Path;
use std::process::Command;

use common::{LakeKind, Project, copy_tree, repo};

const NO_SOURCES: &str = "sources: []\n";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git repository holding the test package in `test_utils/`, tagged `v1`, with a later
/// commit that changes a macro (so a pinned revision can be told from the branch head).
fn package_repo() -> tempfile::TempDir {
    let repo_dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/packages"), repo_dir.path());
    let dir = repo_dir.path();
    git(dir, &["init", "--quiet", "-b", "main"]);
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "v1"]);
    git(dir, &["tag", "v1"]);
    let dispatch = dir.join("test_utils/macros/dispatch.sql");
    let text = std::fs::read_to_string(&dispatch).unwrap();
    std::fs::write(&dispatch, text.replace("'postgres '", "'unreleased '")).unwrap();
    git(dir, &["commit", "--quiet", "-am", "after v1"]);
    repo_dir
}

fn packages_project(repo_dir: &Path) -> Project {
    let project = Project::new(LakeKind::Local, NO_SOURCES).with_fixture("uses_packages");
    std::fs::write(
        project.path("packages.yml"),
        format!(
            "packages:\n  - git: \"file://{}\"\n    revision: v1\n    subdirectory: test_utils\n",
            repo_dir.display()
        ),
    )
    .unwrap();
    project
}

/// Rows of `sql` in PostgreSQL over the fixture's raw orders, as text.
async fn pg_rows(sql: &str) -> Vec<Vec<String>> {
    let client = common::pg().await;
    let raw = std::fs::read_to_string(
        repo().join("fixtures/projects/uses_packages/seeds/raw_orders.csv"),
    )
    .unwrap();
    let values: Vec<String> = raw
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let customer = if f[1].is_empty() { "null" } else { f[1] };
            format!(
                "({}, {customer}, '{}', {}::float8, date '{}')",
                f[0], f[2], f[3], f[4]
            )
        })
        .collect();
    let full = format!(
        "with raw_orders(order_id, customer_id, status, amount, order_date) as (values {}) {sql}",
        values.join(", ")
    );
    client
        .simple_query(&full)
        .await
        .unwrap_or_else(|e| panic!("{full}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Numbers written the same way whichever engine printed them (`10.5`, `10.50`, `10.500000`).
fn normalized(rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| match v.parse::<f64>() {
                    Ok(n) if v.contains('.') => format!("{n}"),
                    _ => v,
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_package_is_installed_and_built_like_the_projects_own() {
    let repo_dir = package_repo();
    let project = packages_project(repo_dir.path());

    // Before `deps`, the project says what is missing.
    let out = project.run(&["ls"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run strata deps"), "{stderr}");

    let out = project.ok(&["deps"]);
    assert!(out.contains("Installed test_utils"), "{out}");
    assert!(
        project
            .path("dbt_packages/test_utils/dbt_project.yml")
            .is_file()
    );
    assert!(!project.path("dbt_packages/test_utils/.git").exists());

    // The package's nodes are selected by package, with namespaced unique ids.
    let listed = project.ok(&["ls", "-s", "package:test_utils"]);
    for name in ["calendar", "pkg_codes", "not_null_calendar_date_day"] {
        assert!(listed.contains(name), "{listed}");
    }
    assert!(!listed.contains("orders_dedup"), "{listed}");

    let out = project.ok(&["build"]);
    assert!(out.contains("ERROR=0"), "{out}");
    assert!(out.contains("WARN=0"), "{out}");
    // The pivot reads the data of a model this run builds: checked once that is built.
    assert!(out.contains("right after their inputs are built"), "{out}");
    assert!(out.contains("model.shop_pkgs.status_pivot"), "{out}");
    assert!(
        out.contains("test_utils.calendar") || out.contains("main.calendar"),
        "{out}"
    );

    // Dispatch: strata__ before postgres__ before default__; the root project's variant first;
    // the package's vars; the package model, built in the same run.
    let greetings = project
        .query("SELECT greeting, shout, farewell, root_var, calendar_days FROM main.greetings");
    assert_eq!(
        greetings[1],
        [
            "postgres ann",
            "HEY!",
            "bye from the project, bob",
            "unset",
            "7"
        ]
    );
    // The package's seed is loaded too.
    assert_eq!(project.scalar("SELECT count(*) FROM main.pkg_codes"), "2");

    // A date spine (dbt.date_spine, its length queried while compiling) as generate_series.
    let days = project.query("SELECT cast(date_day as date) FROM main.calendar ORDER BY 1");
    let expected = pg_rows(
        "select d::date from generate_series(date '2026-01-01', date '2026-01-07', interval '1 day') d",
    )
    .await;
    assert_eq!(days[1..], expected[..]);

    // Surrogate keys over nullable columns, as the same SQL gives them in PostgreSQL.
    let keys = project.query("SELECT order_key FROM main.orders_keyed ORDER BY 1");
    let expected = pg_rows(
        "select md5(concat(coalesce(cast(order_id as varchar), '_null_'), '-', \
         coalesce(cast(customer_id as varchar), '_null_'))) from raw_orders order by 1",
    )
    .await;
    assert_eq!(keys[1..], expected[..]);
    // `star` with `except` (case-insensitive) leaves those columns out.
    assert_eq!(
        project.query("SELECT * FROM main.orders_keyed LIMIT 0")[0],
        ["order_key", "order_id", "customer_id", "status"]
    );

    // Deduplication keeps the latest row per key.
    let dedup = project.query(
        "SELECT order_id, status, amount, cast(order_date as varchar) FROM main.orders_dedup ORDER BY order_id",
    );
    let expected = pg_rows(
        "select distinct on (order_id) order_id, status, amount, order_date::text \
         from raw_orders order by order_id, order_date desc",
    )
    .await;
    assert_eq!(normalized(dedup[1..].to_vec()), normalized(expected));

    // The pivot's columns are the statuses in the data.
    let pivot = project.query("SELECT * FROM main.status_pivot ORDER BY order_id");
    assert_eq!(
        pivot[0],
        [
            "order_id",
            "placed_amount",
            "returned_amount",
            "shipped_amount"
        ]
    );
    let expected = pg_rows(
        "select order_id, sum(case when status = 'placed' then amount else 0 end), \
         sum(case when status = 'returned' then amount else 0 end), \
         sum(case when status = 'shipped' then amount else 0 end) \
         from (select distinct on (order_id) * from raw_orders order by order_id, order_date desc) d \
         group by order_id order by order_id",
    )
    .await;
    assert_eq!(normalized(pivot[1..].to_vec()), normalized(expected));

    // A union of relations with different columns: missing ones are null.
    let union =
        project.query("SELECT count(*), count(channel), count(customer_id) FROM main.all_orders");
    assert_eq!(union[1], ["7", "2", "3"]);
}

#[test]
fn a_local_package_installs_and_an_unreachable_hub_leaves_it_installed() {
    let project = Project::new(LakeKind::Local, NO_SOURCES).with_fixture("uses_packages");
    let package = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("fixtures/packages/test_utils"), package.path());
    let local = format!("packages:\n  - local: {}\n", package.path().display());
    std::fs::write(project.path("packages.yml"), &local).unwrap();
    let out = project.ok(&["deps"]);
    assert!(out.contains("Installed test_utils (local:"), "{out}");
    project.ok(&["compile", "-s", "package:test_utils"]);

    // A compile-time query that fails names the model, the macro and its line.
    std::fs::write(
        project.path("models/bad.sql"),
        "select {{ test_utils.column_values(ref('raw_orders'), 'no_such_column') | length }} as n",
    )
    .unwrap();
    project.ok(&["seed"]);
    let out = project.run(&["compile", "-s", "bad"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "dbt_packages/test_utils/macros/sql.sql:50: model.shop_pkgs.bad",
        "a compile-time query in macro test_utils.column_values failed",
        "no_such_column",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    std::fs::remove_file(project.path("models/bad.sql")).unwrap();

    // A hub package cannot be fetched here: deps fails naming it, and leaves the installed
    // package as it was.
    std::fs::write(
        project.path("packages.yml"),
        format!("{local}  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n"),
    )
    .unwrap();
    let out = project.run(&["deps"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dbt-labs/dbt_utils"), "{stderr}");
    assert!(stderr.contains("left as they were"), "{stderr}");
    assert!(
        project
            .path("dbt_packages/test_utils/dbt_project.yml")
            .is_file()
    );
    let leftovers: Vec<_> = std::fs::read_dir(project.path("dbt_packages"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["test_utils"]);
}
