//! Schema-on-read over bronze, on a local lake and on the real HDFS: every table readable with
//! inferred and drifting schemas, nothing silently dropped (good rows + rejected records equal
//! what the generator's manifest says it wrote), table functions, bare paths, path refusal.

mod common;

use std::collections::BTreeMap;

use common::{LakeKind, Project};
use strata::generate::{GenerateArgs, Manifest, generate};

/// A shop project with two drifting batches generated and landed.
fn landed_shop(kind: LakeKind) -> (Project, Manifest) {
    let project = Project::shop(kind);
    let mut args = GenerateArgs::new(project.path("drop"));
    args.scale = 2000;
    args.batches = 2;
    let manifest = generate(&args).unwrap();
    project.ok(&["land"]);
    (project, manifest)
}

fn totals(manifest: &Manifest) -> BTreeMap<String, (u64, u64)> {
    let mut totals = BTreeMap::new();
    for file in &manifest.files {
        let t = totals.entry(file.entity.clone()).or_insert((0, 0));
        t.0 += file.valid_records;
        t.1 += file.dirt.malformed;
    }
    totals
}

fn reads_every_table_losslessly(kind: LakeKind) {
    let (project, manifest) = landed_shop(kind);
    for (entity, (valid, malformed)) in totals(&manifest) {
        let table = format!("bronze.shop_{entity}");
        let rows = project.scalar(&format!("SELECT count(*) FROM {table}"));
        assert_eq!(
            rows,
            valid.to_string(),
            "{table}: good rows = the manifest's valid records"
        );
        let rejected = project.scalar(&format!("SELECT count(*) FROM {table}__rejected"));
        assert_eq!(
            rejected,
            malformed.to_string(),
            "{table}: rejected = the manifest's malformed"
        );
        let files = project.scalar(&format!("SELECT count(DISTINCT _file) FROM {table}"));
        assert_eq!(files, "2", "{table}: _file names each raw file");
    }

    // Large files are read in parallel byte ranges; force that on small files: same rows.
    for table in ["orders", "events"] {
        let (valid, _) = totals(&manifest)[table];
        let ranged = project.scalar(&format!(
            "SET datafusion.optimizer.repartition_file_min_size = 1024; \
                 SET datafusion.execution.target_partitions = 7; \
                 SELECT count(*) FROM bronze.shop_{table}"
        ));
        assert_eq!(ranged, valid.to_string(), "{table} read in ranges");
    }

    // Drift: the rename shows as two columns, each null where its batch lacks it.
    let split = project.query(
        "SELECT count(total_amount) > 0, count(order_total) > 0, \
         count(*) FILTER (WHERE total_amount IS NOT NULL AND order_total IS NOT NULL) \
         FROM bronze.shop_orders",
    );
    assert_eq!(split[1], ["true", "true", "0"]);
    // Widened: quantity is Int32 in batch 1 and Int64 in batch 2.
    let types = project.query(
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_schema = 'bronze' AND table_name = 'shop_order_items' \
         AND column_name IN ('quantity', '_ingested_at') ORDER BY column_name",
    );
    assert_eq!(types[1], ["_ingested_at", "Timestamp(µs, \"UTC\")"]);
    assert_eq!(types[2], ["quantity", "Int64"]);
    // XML: nested elements flattened, attributes as columns.
    let cities = project.scalar(
        "SELECT count(address_city) > 0 AND count(id) = count(*) FROM bronze.shop_shipments",
    );
    assert_eq!(cities, "true");
    // Rejected records say where and why.
    let reject = project.query(
        "SELECT _file, line, reason FROM bronze.shop_orders__rejected ORDER BY _file, line LIMIT 1",
    );
    assert!(reject[1][0].contains("bronze/shop/orders/"), "{reject:?}");
    assert!(reject[1][1].parse::<u64>().unwrap() >= 2);
    assert!(!reject[1][2].is_empty());
}

#[test]
fn reads_every_table_losslessly_on_local_disk() {
    reads_every_table_losslessly(LakeKind::Local);
}

#[test]
fn reads_every_table_losslessly_on_hdfs() {
    reads_every_table_losslessly(LakeKind::Hdfs);
}

#[test]
fn table_functions_and_bare_paths_read_raw_files() {
    let (project, manifest) = landed_shop(LakeKind::Local);
    let totals = totals(&manifest);
    let count = |sql: &str| project.scalar(sql);
    assert_eq!(
        count("SELECT count(*) FROM read_csv('drop/orders/*.csv')"),
        totals["orders"].0.to_string()
    );
    assert_eq!(
        count("SELECT count(*) FROM read_xml('drop/shipments/*.xml', row_tag => 'shipment')"),
        totals["shipments"].0.to_string()
    );
    assert_eq!(
        count("SELECT count(*) FROM read_xml('drop/shipments/*.xml')"),
        totals["shipments"].0.to_string()
    );
    assert_eq!(
        count("SELECT count(*) FROM read_parquet('drop/order_items/*.parquet')"),
        totals["order_items"].0.to_string()
    );
    assert_eq!(
        count("SELECT count(*) FROM read_json('drop/products/*.json')"),
        totals["products"].0.to_string()
    );
    assert_eq!(
        count("SELECT count(*) FROM read_json('drop/payments/*.ndjson')"),
        totals["payments"].0.to_string()
    );
    let first = manifest
        .files
        .iter()
        .find(|f| f.entity == "orders")
        .unwrap();
    assert_eq!(
        count(&format!("SELECT count(*) FROM 'drop/{}'", first.path)),
        first.valid_records.to_string()
    );
    // The lake itself is readable by path too.
    let landed = count("SELECT count(*) FROM read_csv('lake/bronze/shop/orders/*/*.csv')");
    assert_eq!(landed, totals["orders"].0.to_string());
}

#[test]
fn a_raw_file_larger_than_a_scan_piece_reads_every_line_once() {
    // Over 64 MiB: the scan reads it as three or more byte ranges, whose ends fall inside lines.
    let project = Project::shop(LakeKind::Local);
    let dir = project.path("drop/big");
    std::fs::create_dir_all(&dir).unwrap();
    let n: u64 = 180_000;
    let pad_len = |i: u64| (i * 7919) % 800;
    let mut body = String::new();
    for i in 0..n {
        let pad = "x".repeat(pad_len(i) as usize);
        body.push_str(&format!("{{\"id\": {i}, \"pad\": \"{pad}\"}}\n"));
    }
    assert!(body.len() > 64 << 20, "{} bytes", body.len());
    std::fs::write(dir.join("big.ndjson"), body).unwrap();
    let expected = format!(
        "{n},{n},{},{}",
        n * (n - 1) / 2,
        (0..n).map(pad_len).sum::<u64>()
    );
    let got = project.query(
        "SET datafusion.execution.target_partitions = 3; \
         SELECT count(*), count(DISTINCT id), sum(id), sum(length(pad)) \
         FROM 'drop/big/big.ndjson'",
    );
    assert_eq!(got[1].join(","), expected);
}

/// With `[sql] read_roots` the local engine is confined as the server always is.
fn confine_sql(project: &Project) {
    let config = project.path("strata.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[sql]\nread_roots = []\n");
    std::fs::write(config, text).unwrap();
}

#[test]
fn paths_outside_the_lake_and_sources_are_refused() {
    let (project, _) = landed_shop(LakeKind::Local);
    confine_sql(&project);
    for sql in [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv('drop/../../etc/passwd')",
        "SELECT * FROM '/etc/hosts.csv'",
    ] {
        let out = project.run(&["sql", "-c", sql]);
        assert!(!out.status.success(), "{sql} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("refusing to read"), "{sql}: {stderr}");
    }
}

const DROP: &str = "sources:\n  - name: raw\n    kind: folder\n    location: drop\n    tables:\n      - name: orders\n        pattern: 'orders/*.csv'\n        format: csv\n";

/// A project whose lake holds `bronze/evil -> /etc` and whose source folder holds
/// `passwd.csv -> /etc/passwd`, a link that stays inside (`alias.csv`) and one good file.
fn with_symlinks_out(project: &Project) {
    let (lake, drop) = (project.path("lake"), project.path("drop"));
    std::fs::create_dir_all(lake.join("bronze")).unwrap();
    std::fs::create_dir_all(drop.join("orders")).unwrap();
    std::fs::write(drop.join("orders/a.csv"), "id,name\n1,x\n2,y\n").unwrap();
    std::os::unix::fs::symlink("/etc", lake.join("bronze/evil")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", drop.join("passwd.csv")).unwrap();
    std::os::unix::fs::symlink(drop.join("orders/a.csv"), drop.join("alias.csv")).unwrap();
}

#[test]
fn symlinks_out_of_the_lake_and_the_sources_are_refused() {
    let project = Project::new(LakeKind::Local, DROP);
    confine_sql(&project);
    with_symlinks_out(&project);
    for (sql, link) in [
        (
            "SELECT * FROM read_csv('lake/bronze/evil/passwd')",
            "bronze/evil",
        ),
        (
            "SELECT * FROM read_csv('lake/bronze/*/passwd')",
            "bronze/evil",
        ),
        ("SELECT * FROM read_csv('lake/bronze')", "bronze/evil"),
        ("SELECT * FROM 'drop/passwd.csv'", "drop/passwd.csv"),
        ("SELECT * FROM read_csv('drop/*.csv')", "drop/passwd.csv"),
        ("SELECT * FROM read_csv('drop')", "drop/passwd.csv"),
        ("SELECT * FROM read_csv('drop/p*')", "drop/passwd.csv"),
    ] {
        let out = project.run(&["sql", "--format", "csv", "-c", sql]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} must fail: {stdout}");
        assert!(
            stderr.contains("refusing to read") && stderr.contains(link),
            "{sql}: {stderr}"
        );
        assert!(
            !stdout.contains("root") && !stderr.contains("root:"),
            "{sql}"
        );
    }
    // What stays inside is read, links included; a glob that cannot reach the links is fine.
    assert_eq!(
        project.scalar("SELECT count(*) FROM read_csv('drop/orders/*.csv')"),
        "2"
    );
    assert_eq!(project.scalar("SELECT count(*) FROM 'drop/alias.csv'"), "2");
    let shown = project.scalar("SELECT DISTINCT _file FROM 'drop/alias.csv'");
    assert!(shown.ends_with("drop/alias.csv"), "{shown}");
}

#[test]
fn values_that_do_not_fit_fall_back_to_text() {
    let project = Project::new(
        LakeKind::Local,
        "sources:\n  - name: raw\n    kind: folder\n    location: drop\n    tables:\n      - name: prices\n        pattern: '*.csv'\n        format: csv\n",
    );
    std::fs::create_dir_all(project.path("drop")).unwrap();
    std::fs::write(
        project.path("drop/p.csv"),
        "sku,price\na,1.5\nb,N/A\nc,$1,234.50\n",
    )
    .unwrap();
    std::fs::write(project.path("drop/q.csv"), "sku,price\nd,2\n").unwrap();
    project.ok(&["land"]);
    let rows = project.query("SELECT sku, price FROM bronze.raw_prices ORDER BY sku");
    assert_eq!(rows[0], ["sku", "price"]);
    assert_eq!(rows[2], ["b", "N/A"], "text keeps every value");
    assert_eq!(
        rows.len(),
        4,
        "the unquoted currency line has too many fields: {rows:?}"
    );
    assert_eq!(
        project.scalar("SELECT count(*) FROM bronze.raw_prices__rejected"),
        "1"
    );
}

#[test]
fn describe_and_explore_profile_columns() {
    let (project, _) = landed_shop(LakeKind::Local);
    for out in [
        project.ok(&["sql", "-c", "DESCRIBE bronze.shop_orders"]),
        project.ok(&["explore", "bronze.shop_orders"]),
        project.ok(&["explore", "drop/orders/*.csv"]),
    ] {
        for word in [
            "column",
            "type",
            "nulls",
            "distinct_approx",
            "min",
            "max",
            "samples",
            "order_id",
            "_file",
        ] {
            assert!(out.contains(word), "{word} missing from:\n{out}");
        }
    }
    let json = project.ok(&["sql", "--format", "json", "-c", "SELECT 1 AS one"]);
    assert_eq!(json.trim(), r#"[{"one":1}]"#);
}

#[test]
fn sql_files_run_statement_by_statement() {
    let (project, _) = landed_shop(LakeKind::Local);
    std::fs::write(
        project.path("q.sql"),
        "CREATE VIEW recent AS SELECT order_id FROM bronze.shop_orders;\nSELECT count(*) > 0 AS ok FROM recent;\n",
    )
    .unwrap();
    let out = project.ok(&["sql", "--format", "csv", "-f", "q.sql"]);
    assert!(out.contains("ok\ntrue"), "{out}");
    std::fs::write(
        project.path("bad.sql"),
        "SELECT nope FROM bronze.shop_orders;",
    )
    .unwrap();
    let out = project.run(&["sql", "-f", "bad.sql"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.sql") && stderr.contains("nope"),
        "{stderr}"
    );
}
