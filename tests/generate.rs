//! `strata::generate` checked against independent readers: every file is parsed here with the
//! csv, serde_json, quick-xml and parquet crates, and what they see must match the manifest.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use quick_xml::events::Event;
use serde_json::Value;
use sha2::{Digest, Sha256};
use strata::generate::{DirtCounts, FileEntry, GenerateArgs, Manifest, generate};
use strata::lake::RawFormat;

/// Small and dirty: enough records that every kind of dirt shows up, fast in a debug build.
fn dirty_args(out: &Path) -> GenerateArgs {
    let mut args = GenerateArgs::new(out.to_path_buf());
    args.scale = 3000;
    args.batches = 3;
    args.null_rate = 0.05;
    args.duplicate_rate = 0.05;
    args.malformed_rate = 0.05;
    args.late_rate = 0.1;
    args
}

fn run(args: &GenerateArgs) -> Manifest {
    generate(args).unwrap_or_else(|e| panic!("generate failed: {e}"))
}

fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else {
                let bytes = fs::read(&path).unwrap();
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let (a, b, c) = (tempdir(), tempdir(), tempdir());
    run(&dirty_args(a.path()));
    run(&dirty_args(b.path()));
    let mut other = dirty_args(c.path());
    other.seed = 7;
    run(&other);
    let (a, b, c) = (tree(a.path()), tree(b.path()), tree(c.path()));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs between runs", path.display());
    }
    assert_eq!(a.keys().collect::<Vec<_>>(), c.keys().collect::<Vec<_>>());
    let differing = a.iter().filter(|(path, bytes)| c[*path] != **bytes).count();
    assert_eq!(differing, a.len(), "every file should depend on the seed");
}

/// What an independent reader saw in one file.
#[derive(Debug, PartialEq)]
struct Seen {
    records: u64,
    malformed: u64,
}

#[test]
fn manifest_tells_the_truth_about_every_file() {
    let dir = tempdir();
    let manifest = run(&dirty_args(dir.path()));
    assert_eq!(Manifest::read(dir.path()).unwrap(), manifest);
    assert_eq!(manifest.files.len(), 7 * 3);
    let paths: Vec<_> = manifest.files.iter().map(|f| f.path.clone()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);

    let mut total = DirtCounts::default();
    for file in &manifest.files {
        let bytes = fs::read(dir.path().join(&file.path)).unwrap();
        assert_eq!(bytes.len() as u64, file.bytes, "{}", file.path);
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            file.sha256,
            "{}",
            file.path
        );
        let seen = read_file(file, &bytes);
        assert_eq!(
            seen,
            Seen {
                records: file.records,
                malformed: file.dirt.malformed
            },
            "{}",
            file.path
        );
        assert_eq!(file.valid_records, file.records - file.dirt.malformed);
        if matches!(file.format, RawFormat::Json | RawFormat::Parquet) {
            assert_eq!(file.dirt.malformed, 0, "{}", file.path);
        }
        if file.batch == 1 {
            assert_eq!(file.dirt.late, 0, "{}", file.path);
        }
        total += file.dirt;
    }
    // Every kind of dirt occurs somewhere at these rates.
    let json = serde_json::to_value(total).unwrap();
    for (kind, count) in json.as_object().unwrap() {
        assert!(count.as_u64().unwrap() > 0, "no {kind} anywhere");
    }
    let totals = &manifest.totals["orders"];
    let orders: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.entity == "orders")
        .collect();
    assert_eq!(totals.files, 3);
    assert_eq!(
        totals.records,
        orders.iter().map(|f| f.records).sum::<u64>()
    );
}

/// Parses `bytes` as the manifest says it is stored and checks the columns on the way.
fn read_file(file: &FileEntry, bytes: &[u8]) -> Seen {
    let text = || std::str::from_utf8(bytes).expect("text files are UTF-8");
    match file.format {
        RawFormat::Csv => {
            let (header, lines) = csv_lines(text());
            assert_eq!(header, file.columns, "{}", file.path);
            seen(lines.iter().map(|line| line.fields.is_some()))
        }
        RawFormat::Ndjson => seen(text().lines().map(|line| {
            let value = serde_json::from_str::<Value>(line).ok();
            let object = value.as_ref().and_then(Value::as_object);
            if let Some(object) = object {
                assert_eq!(keys(object), set(&file.columns), "{}: {line}", file.path);
            }
            object.is_some()
        })),
        RawFormat::Json => {
            let values: Vec<Value> = serde_json::from_slice(bytes).expect("a JSON array");
            for value in &values {
                assert_eq!(keys(value.as_object().unwrap()), set(&file.columns));
            }
            // One object per line, for line-oriented tools.
            assert_eq!(
                text().lines().count(),
                values.len().max(1) + usize::from(!values.is_empty())
            );
            seen(values.iter().map(|_| true))
        }
        RawFormat::Xml => {
            let lines: Vec<&str> = text().lines().collect();
            assert!(lines[0].starts_with("<?xml"));
            assert_eq!(lines[1], "<shipments>");
            assert_eq!(lines[lines.len() - 1], "</shipments>");
            let mut all_children = BTreeSet::new();
            let result =
                seen(
                    lines[2..lines.len() - 1]
                        .iter()
                        .map(|line| match xml_children(line) {
                            Some(children) => {
                                all_children.extend(children);
                                true
                            }
                            None => false,
                        }),
                );
            assert_eq!(all_children, set(&file.columns), "{}", file.path);
            result
        }
        RawFormat::Parquet => {
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
                    .expect("a Parquet file");
            let names: Vec<String> = reader
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            assert_eq!(names, file.columns);
            let rows = reader.metadata().file_metadata().num_rows() as u64;
            Seen {
                records: rows,
                malformed: 0,
            }
        }
    }
}

fn seen(valid: impl Iterator<Item = bool>) -> Seen {
    let mut result = Seen {
        records: 0,
        malformed: 0,
    };
    for ok in valid {
        result.records += 1;
        result.malformed += u64::from(!ok);
    }
    result
}

fn keys(object: &serde_json::Map<String, Value>) -> BTreeSet<String> {
    object.keys().cloned().collect()
}

fn set(columns: &[String]) -> BTreeSet<String> {
    columns.iter().cloned().collect()
}

struct CsvLine<'a> {
    raw: &'a str,
    /// `None` when a reader must reject the line.
    fields: Option<Vec<String>>,
}

/// Reads a CSV file the way a line-oriented reader does: each physical line on its own.
fn csv_lines(text: &str) -> (Vec<String>, Vec<CsvLine<'_>>) {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let records = lines
        .map(|raw| {
            let parsed: Vec<_> = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(raw.as_bytes())
                .records()
                .collect();
            let fields = match parsed.as_slice() {
                [Ok(record)] if record.len() == header.len() => {
                    // Readers that insist on balanced quotes agree.
                    assert_eq!(raw.matches('"').count() % 2, 0, "{raw}");
                    Some(record.iter().map(String::from).collect())
                }
                _ => None,
            };
            CsvLine { raw, fields }
        })
        .collect();
    (header, records)
}

/// The `id` attribute and child element names of a well-formed `<shipment>` line, or `None`
/// when an XML reader must reject it.
fn xml_children(line: &str) -> Option<BTreeSet<String>> {
    let mut reader = quick_xml::Reader::from_str(line);
    let mut depth = 0;
    let mut names = BTreeSet::new();
    loop {
        let name_of = |e: &quick_xml::events::BytesStart| {
            String::from_utf8(e.name().as_ref().to_vec()).unwrap()
        };
        match reader.read_event() {
            Err(_) => return None,
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    assert_eq!(name_of(&e), "shipment");
                    assert!(e.try_get_attribute("id").ok()??.value.starts_with(b"SHP-"));
                    names.insert("id".to_string());
                } else if depth == 1 {
                    names.insert(name_of(&e));
                }
                depth += 1;
            }
            Ok(Event::Empty(e)) if depth == 1 => {
                names.insert(name_of(&e));
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Eof) => return (depth == 0 && !names.is_empty()).then_some(names),
            Ok(_) => {}
        }
    }
}

#[test]
fn orders_dirt_counts_are_exact() {
    let dir = tempdir();
    let manifest = run(&dirty_args(dir.path()));
    for file in manifest.files.iter().filter(|f| f.entity == "orders") {
        let text = fs::read_to_string(dir.path().join(&file.path)).unwrap();
        let (header, lines) = csv_lines(&text);
        let column = |name: &str| header.iter().position(|c| c == name).unwrap();
        let (id, customer, ts, total) = (
            column("order_id"),
            column("customer_id"),
            column("order_ts"),
            header
                .iter()
                .position(|c| c == "total_amount" || c == "order_total")
                .unwrap(),
        );
        let day = NaiveDate::parse_from_str(&file.date, "%Y-%m-%d").unwrap();
        let mut dirt = DirtCounts {
            malformed: lines.iter().filter(|l| l.fields.is_none()).count() as u64,
            ..DirtCounts::default()
        };
        let mut earlier_lines = HashSet::new();
        let mut earlier_ids = HashSet::new();
        for line in &lines {
            let Some(fields) = &line.fields else { continue };
            if !earlier_lines.insert(line.raw) {
                dirt.exact_duplicates += 1;
            } else if !earlier_ids.insert(fields[id].clone()) {
                dirt.near_duplicates += 1;
            }
            dirt.null_required += u64::from(fields[customer].is_empty() || fields[ts].is_empty());
            dirt.currency_strings += u64::from(fields[total].contains('$'));
            let negative = fields[total].starts_with('-');
            let absurd = if fields[ts].is_empty() {
                false
            } else {
                let (when, iso) = parse_ts(&fields[ts]);
                dirt.mixed_date_formats += u64::from(!iso);
                let absurd = !(2000..=2090).contains(&when.date().year_ce().1);
                dirt.late += u64::from(!absurd && when.date() < day);
                absurd
            };
            dirt.out_of_range += u64::from(negative || absurd);
        }
        assert_eq!(dirt, file.dirt, "{}", file.path);
    }
}

/// A timestamp in any of the orders feed's formats, in UTC, and whether it was ISO 8601.
fn parse_ts(text: &str) -> (NaiveDateTime, bool) {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return (t.naive_utc(), true);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return (
            DateTime::from_timestamp(seconds, 0).unwrap().naive_utc(),
            false,
        );
    }
    let t = NaiveDateTime::parse_from_str(text, "%m/%d/%Y %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .unwrap_or_else(|_| panic!("unknown timestamp format: {text}"));
    (t, false)
}

#[test]
fn schema_drifts_from_the_second_batch_unless_disabled() {
    let dir = tempdir();
    let mut args = dirty_args(dir.path());
    args.scale = 300;
    let manifest = run(&args);
    let has = |file: &FileEntry, column: &str| file.columns.iter().any(|c| c == column);
    for file in &manifest.files {
        let drifted = file.batch >= 2;
        match file.entity.as_str() {
            "customers" => assert_eq!(has(file, "loyalty_tier"), drifted),
            "orders" => {
                assert_eq!(has(file, "order_total"), drifted);
                assert_eq!(has(file, "total_amount"), !drifted);
            }
            "payments" => assert_eq!(has(file, "fee"), drifted),
            "events" => assert_eq!(has(file, "device"), drifted),
            "order_items" => {
                let reader = ParquetRecordBatchReaderBuilder::try_new(
                    fs::File::open(dir.path().join(&file.path)).unwrap(),
                )
                .unwrap();
                let schema = reader.schema();
                let (quantity, price) = if drifted {
                    (DataType::Int64, DataType::Float64)
                } else {
                    (DataType::Int32, DataType::Float32)
                };
                assert_eq!(
                    schema.field_with_name("quantity").unwrap().data_type(),
                    &quantity
                );
                assert_eq!(
                    schema.field_with_name("unit_price").unwrap().data_type(),
                    &price
                );
            }
            _ => {}
        }
    }

    let steady = tempdir();
    let mut args = dirty_args(steady.path());
    args.scale = 300;
    args.no_drift = true;
    let manifest = run(&args);
    assert!(!manifest.drift);
    for file in &manifest.files {
        let first = manifest
            .files
            .iter()
            .find(|f| f.entity == file.entity && f.batch == 1)
            .unwrap();
        assert_eq!(file.columns, first.columns, "{}", file.path);
    }
}

#[test]
fn clean_run_has_no_dirt_and_consistent_references() {
    let dir = tempdir();
    let mut args = dirty_args(dir.path());
    args.clean = true;
    let manifest = run(&args);
    assert!(!manifest.drift);
    for file in &manifest.files {
        assert!(file.dirt.is_clean(), "{}: {:?}", file.path, file.dirt);
        assert_eq!(file.records, file.valid_records);
        let bytes = fs::read(dir.path().join(&file.path)).unwrap();
        assert_eq!(read_file(file, &bytes).malformed, 0, "{}", file.path);
    }
    let texts = |entity: &str| texts(&manifest, dir.path(), entity);
    let csv_column = |entity: &str, column: &str| csv_column(&manifest, dir.path(), entity, column);
    let customers: HashSet<String> = csv_column("customers", "customer_id").into_iter().collect();
    let order_ids = csv_column("orders", "order_id");
    let orders: HashSet<String> = order_ids.iter().cloned().collect();
    assert_eq!(
        orders.len(),
        order_ids.len(),
        "order ids are unique when clean"
    );
    assert_eq!(orders.len(), 3000);
    for customer in csv_column("orders", "customer_id") {
        assert!(
            customers.contains(&customer),
            "order of unknown customer {customer}"
        );
    }

    let products: HashSet<String> = texts("products")
        .iter()
        .flat_map(|text| serde_json::from_str::<Vec<Value>>(text).unwrap())
        .map(|p| p["product_id"].to_string())
        .collect();
    let mut lines_per_order: HashMap<String, usize> = HashMap::new();
    for file in manifest.files.iter().filter(|f| f.entity == "order_items") {
        let reader = ParquetRecordBatchReaderBuilder::try_new(
            fs::File::open(dir.path().join(&file.path)).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let order_id = batch
                .column_by_name("order_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let product_id = batch
                .column_by_name("product_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            assert_eq!(product_id.null_count(), 0);
            for i in 0..batch.num_rows() {
                let order = order_id.value(i).to_string();
                assert!(orders.contains(&order), "line of unknown order {order}");
                assert!(products.contains(&product_id.value(i).to_string()));
                *lines_per_order.entry(order).or_default() += 1;
            }
        }
    }
    assert_eq!(lines_per_order.len(), orders.len(), "every order has lines");

    // Payments carry their order's total.
    let totals: HashMap<String, f64> = order_ids
        .iter()
        .cloned()
        .zip(
            csv_column("orders", "total_amount")
                .iter()
                .map(|t| t.parse().unwrap()),
        )
        .collect();
    for text in texts("payments") {
        for line in text.lines() {
            let payment: Value = serde_json::from_str(line).unwrap();
            let order = payment["order_id"].to_string();
            let amount = payment["amount"].as_f64().unwrap();
            assert!((amount - totals[&order]).abs() < 0.005, "{line}");
        }
    }
    for text in texts("shipments") {
        for line in text.lines().filter(|l| l.starts_with("<shipment ")) {
            let start = line.find("<order_id>").unwrap() + "<order_id>".len();
            let end = line.find("</order_id>").unwrap();
            assert!(orders.contains(&line[start..end]), "{line}");
        }
    }
}

fn texts(manifest: &Manifest, dir: &Path, entity: &str) -> Vec<String> {
    manifest
        .files
        .iter()
        .filter(|f| f.entity == entity)
        .map(|f| fs::read_to_string(dir.join(&f.path)).unwrap())
        .collect()
}

fn csv_column(manifest: &Manifest, dir: &Path, entity: &str, column: &str) -> Vec<String> {
    let mut values = Vec::new();
    for text in texts(manifest, dir, entity) {
        let (header, lines) = csv_lines(&text);
        let i = header.iter().position(|c| c == column).unwrap();
        values.extend(lines.into_iter().map(|l| l.fields.unwrap()[i].clone()));
    }
    values
}

#[test]
fn formats_flag_limits_the_entities_written() {
    let dir = tempdir();
    let mut args = GenerateArgs::new(dir.path().to_path_buf());
    args.scale = 200;
    args.batches = 2;
    args.formats = vec![RawFormat::Csv];
    let manifest = run(&args);
    assert_eq!(manifest.formats, vec![RawFormat::Csv]);
    let entities: BTreeSet<&str> = manifest.files.iter().map(|f| f.entity.as_str()).collect();
    assert_eq!(entities, BTreeSet::from(["customers", "orders"]));
    assert!(manifest.files.iter().all(|f| f.format == RawFormat::Csv));
    let mut on_disk: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, ["customers", "manifest.json", "orders"]);
}

#[test]
fn defaults_match_the_documented_flags() {
    let args = GenerateArgs::new(PathBuf::from("x"));
    assert_eq!((args.scale, args.seed, args.batches), (10_000, 42, 3));
    assert_eq!(args.formats.len(), 5);
    assert_eq!(
        (
            args.null_rate,
            args.duplicate_rate,
            args.malformed_rate,
            args.late_rate
        ),
        (0.01, 0.01, 0.005, 0.02)
    );
    assert!(!args.no_drift && !args.clean);
    let mut bad = args.clone();
    bad.null_rate = 1.5;
    assert!(
        generate(&bad)
            .unwrap_err()
            .to_string()
            .contains("--null-rate")
    );
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
