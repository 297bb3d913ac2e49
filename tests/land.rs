//! Landing raw files into bronze, on a local lake and on the real HDFS: byte-identical copies,
//! the documented layout, idempotent reruns, atomic visibility under a kill, clear failures.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{LakeKind, Project, sha256};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata::generate::{GenerateArgs, generate};
use strata::lake::Lake;
use strata::meta::IngestLog;

/// Every file under `bronze/` with its sha256.
async fn bronze(lake: &Lake) -> BTreeMap<String, String> {
    let paths: Vec<Path> = lake
        .store()
        .list(Some(&Path::from("bronze")))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .unwrap_or_default();
    let mut files = BTreeMap::new();
    for path in paths {
        let bytes = lake
            .store()
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        files.insert(path.to_string(), sha256(&bytes));
    }
    files
}

/// Every regular file under `dir` (recursively) with its sha256.
fn sources(dir: &std::path::Path, ext: &str) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file() && e.path().to_string_lossy().ends_with(ext))
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            (e.path().display().to_string(), sha256(&bytes))
        })
        .collect()
}

fn sorted_values(map: &BTreeMap<String, String>) -> Vec<String> {
    let mut v: Vec<String> = map.values().cloned().collect();
    v.sort();
    v
}

async fn lands_everything_once(kind: LakeKind) {
    let project = Project::shop(kind);
    let mut args = GenerateArgs::new(project.path("drop"));
    args.scale = 300;
    args.batches = 2;
    generate(&args).unwrap();
    let offered: BTreeMap<String, String> = ["csv", "json", "parquet", "ndjson", "xml"]
        .iter()
        .flat_map(|ext| sources(&project.path("drop"), &format!(".{ext}")))
        .filter(|(path, _)| !path.ends_with("manifest.json"))
        .collect();
    assert_eq!(offered.len(), 14, "7 tables × 2 batches: {offered:?}");

    let out = project.ok(&["land"]);
    assert!(
        out.contains("14 landed, 0 already landed, 0 failed"),
        "{out}"
    );

    let lake = project.lake();
    let landed = bronze(&lake).await;
    assert_eq!(
        sorted_values(&landed),
        sorted_values(&offered),
        "bronze holds exact copies"
    );
    let layout = regex::Regex::new(
        r"^bronze/shop/[a-z_]+/ingest_date=\d{4}-\d{2}-\d{2}/\d{8}T\d{9}Z-\d+\.(csv|json|parquet|ndjson|xml)$",
    )
    .unwrap();
    for path in landed.keys() {
        assert!(layout.is_match(path), "unexpected bronze path {path}");
    }

    let log = IngestLog::new().records(&lake).await.unwrap();
    assert_eq!(log.len(), 14);
    for record in &log {
        assert_eq!(landed.get(&record.bronze_path), Some(&record.sha256));
        assert_eq!(offered.get(&record.source_path), Some(&record.sha256));
        assert!(
            record
                .bronze_path
                .starts_with(&format!("bronze/shop/{}/", record.table_name))
        );
    }

    // Rerunning is a no-op.
    let out = project.ok(&["land"]);
    assert!(
        out.contains("0 landed, 14 already landed, 0 failed"),
        "{out}"
    );
    assert_eq!(bronze(&lake).await, landed);
    assert_eq!(IngestLog::new().records(&lake).await.unwrap().len(), 14);

    // A new drop lands alone; the same content under another name does not land again.
    let orders = project.path("drop/orders");
    std::fs::write(
        orders.join("orders_late.csv"),
        "order_id,customer_id\n1,2\n",
    )
    .unwrap();
    let first = std::fs::read_dir(&orders)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&first, orders.join("orders_copy.csv")).unwrap();
    let out = project.ok(&["land", "-s", "shop.orders"]);
    assert!(
        out.contains("1 landed, 3 already landed, 0 failed"),
        "{out}"
    );
    assert_eq!(bronze(&lake).await.len(), 15);
}

#[tokio::test(flavor = "multi_thread")]
async fn lands_everything_once_on_local_disk() {
    lands_everything_once(LakeKind::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lands_everything_once_on_hdfs() {
    lands_everything_once(LakeKind::Hdfs).await;
}

const BLOBS: &str = "
sources:
  - name: raw
    kind: folder
    location: drop
    tables:
      - name: blobs
        pattern: '*.csv'
        format: csv
";

/// When a test kills a landing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillWhen {
    /// Once a first file is in bronze.
    Landed,
    /// Once a scratch file is being written (a half-written one is left behind).
    Writing,
}

/// Every file (and, on a local lake, every entry of any kind) under `_strata/tmp`, as the file
/// system sees it: object_store's local listing hides the `#` names of half-written files.
async fn scratch(project: &Project, kind: LakeKind, lake: &Lake) -> Vec<String> {
    match kind {
        LakeKind::Local => walkdir::WalkDir::new(project.path("lake/_strata/tmp"))
            .min_depth(1)
            .into_iter()
            .filter_map(Result::ok)
            .map(|e| e.path().display().to_string())
            .collect(),
        LakeKind::Hdfs => common::files_under(lake, "_strata/tmp")
            .await
            .into_iter()
            .collect(),
    }
}

/// A landing killed midway shows no partial file in bronze, and a rerun completes it, landing
/// each file once and leaving `_strata/tmp` empty.
async fn survives_a_kill(kind: LakeKind, files: usize, size: usize, when: KillWhen) {
    let project = Project::new(kind, BLOBS);
    std::fs::create_dir_all(project.path("drop")).unwrap();
    let mut seed = [7u8; 32];
    for i in 0..files {
        // Distinct pseudo-random content per file, cheap to make.
        seed = sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), seed))
            .into();
        let block: Vec<u8> = seed
            .iter()
            .cycle()
            .take(size)
            .enumerate()
            .map(|(j, b)| b ^ (j / 32) as u8)
            .collect();
        std::fs::write(project.path(&format!("drop/blob_{i:03}.csv")), block).unwrap();
    }
    let offered = sources(&project.path("drop"), ".csv");
    let lake = project.lake();

    let mut child = project
        .command(&["land", "--concurrency", "2"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let due = match when {
            KillWhen::Landed => !bronze(&lake).await.is_empty(),
            KillWhen::Writing => !scratch(&project, kind, &lake).await.is_empty(),
        };
        if due {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("land finished ({status}) before it could be interrupted: use more data");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nothing landed in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the kill interrupted the landing");

    let after_kill = bronze(&lake).await;
    assert!(
        after_kill.len() < files,
        "the kill came midway ({} landed)",
        after_kill.len()
    );
    if when == KillWhen::Writing {
        let left = scratch(&project, kind, &lake).await;
        assert!(!left.is_empty(), "the kill left a scratch file");
        eprintln!("left by the kill: {left:?}");
    }
    let complete: Vec<String> = sorted_values(&offered);
    for (path, sha) in &after_kill {
        assert!(
            complete.contains(sha),
            "{path} is a partial or foreign file"
        );
    }

    let out = project.ok(&["land"]);
    assert!(out.contains("0 failed"), "{out}");
    assert_eq!(
        sorted_values(&bronze(&lake).await),
        complete,
        "each file exactly once"
    );
    let log = IngestLog::new().records(&lake).await.unwrap();
    let mut logged: Vec<String> = log.iter().map(|r| r.sha256.clone()).collect();
    logged.sort();
    assert_eq!(logged, complete, "the log lists exactly what landed");
    assert_eq!(
        scratch(&project, kind, &lake).await,
        Vec::<String>::new(),
        "no scratch file is left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_kill_on_local_disk() {
    survives_a_kill(LakeKind::Local, 40, 8 << 20, KillWhen::Landed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_kill_on_hdfs() {
    survives_a_kill(LakeKind::Hdfs, 12, 1 << 20, KillWhen::Landed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_mid_copy_leaves_no_scratch_files_on_local_disk() {
    survives_a_kill(LakeKind::Local, 6, 48 << 20, KillWhen::Writing).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_mid_copy_leaves_no_scratch_files_on_hdfs() {
    survives_a_kill(LakeKind::Hdfs, 6, 16 << 20, KillWhen::Writing).await;
}

/// A land beside a running one keeps the running one's scratch files: only a gone process's
/// are stale.
#[tokio::test(flavor = "multi_thread")]
async fn a_land_keeps_the_scratch_files_of_a_running_land() {
    let project = Project::new(LakeKind::Local, BLOBS);
    std::fs::create_dir_all(project.path("drop")).unwrap();
    std::fs::write(project.path("drop/a.csv"), "a\n1\n").unwrap();
    // A scratch folder owned by this (running) test process, as a land in it would name it.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .replace('-', "");
    let live = project.path(&format!(
        "lake/_strata/tmp/{host}.{boot}.{}.{start}",
        std::process::id()
    ));
    let dead = project.path(&format!(
        "lake/_strata/tmp/{host}.{boot}.{}.{start}",
        u32::MAX
    ));
    for dir in [&live, &dead] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("0123#1"), "partial").unwrap();
    }
    project.ok(&["land"]);
    assert!(
        live.join("0123#1").exists(),
        "a running land's file is kept"
    );
    assert!(!dead.exists(), "a gone process's folder is removed");
}

#[test]
fn a_missing_source_fails_naming_its_location() {
    let project = Project::new(
        LakeKind::Local,
        &BLOBS.replace("location: drop", "location: nowhere"),
    );
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nowhere") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_file_fails_alone() {
    let project = Project::new(LakeKind::Local, BLOBS);
    std::fs::create_dir_all(project.path("drop")).unwrap();
    std::fs::write(project.path("drop/good.csv"), "a,b\n1,2\n").unwrap();
    std::os::unix::fs::symlink("/nonexistent/file.csv", project.path("drop/broken.csv")).unwrap();
    let out = project.run(&["land"]);
    assert!(
        !out.status.success(),
        "a failed file makes land exit non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.csv"), "{stderr}");
    let lake = project.lake();
    let log = IngestLog::new().records(&lake).await.unwrap();
    assert_eq!(log.len(), 1, "only the file that landed is logged");
    assert!(log[0].source_path.ends_with("good.csv"));
}

/// A folder source with one good file, a link to `/etc/passwd` and a link to a folder outside.
fn drop_with_symlinks_out(follow: bool) -> (Project, tempfile::TempDir) {
    let declaration = if follow {
        BLOBS.replace(
            "location: drop",
            "location: drop\n    follow_symlinks: true",
        )
    } else {
        BLOBS.to_string()
    };
    let project = Project::new(LakeKind::Local, &declaration);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("elsewhere.csv"), "e\n1\n").unwrap();
    std::fs::create_dir_all(project.path("drop")).unwrap();
    std::fs::write(project.path("drop/good.csv"), "a,b\n1,2\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", project.path("drop/passwd.csv")).unwrap();
    std::os::unix::fs::symlink(outside.path(), project.path("drop/ext")).unwrap();
    std::os::unix::fs::symlink(project.path("drop/good.csv"), project.path("drop/same.csv"))
        .unwrap();
    (project, outside)
}

#[tokio::test(flavor = "multi_thread")]
async fn symlinks_out_of_a_source_folder_are_not_landed() {
    let (project, _outside) = drop_with_symlinks_out(false);
    let out = project.run(&["land"]);
    assert!(
        !out.status.success(),
        "a refused link makes land exit non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("drop/passwd.csv")
            && stderr.contains("drop/ext")
            && stderr.contains("follow_symlinks"),
        "{stderr}"
    );
    let lake = project.lake();
    let log = IngestLog::new().records(&lake).await.unwrap();
    let passwd = sha256(&std::fs::read("/etc/passwd").unwrap());
    assert!(log.iter().all(|r| r.sha256 != passwd), "{log:?}");
    assert_eq!(
        log.len(),
        1,
        "good.csv (and its link inside, the same content) landed once"
    );
    assert!(log[0].source_path.ends_with("good.csv"));
    assert!(!bronze(&lake).await.values().any(|sha| *sha == passwd));
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_symlinks_lands_what_links_point_to() {
    let (project, _outside) = drop_with_symlinks_out(true);
    let out = project.ok(&["land"]);
    assert!(out.contains("0 failed"), "{out}");
    let lake = project.lake();
    let mut landed: Vec<String> = IngestLog::new()
        .records(&lake)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.source_path.rsplit('/').next().unwrap().to_string())
        .collect();
    landed.sort();
    assert_eq!(landed, ["elsewhere.csv", "good.csv", "passwd.csv"]);
}

#[test]
fn an_unreachable_hdfs_fails_naming_the_uri() {
    let project = Project::new(LakeKind::Local, BLOBS);
    std::fs::create_dir_all(project.path("drop")).unwrap();
    let out = project.run(&["land", "--lake", "hdfs://127.0.0.1:1/lake"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hdfs://127.0.0.1:1/lake"), "{stderr}");
}

#[test]
fn a_bad_declaration_names_file_and_line() {
    let project = Project::new(
        LakeKind::Local,
        &BLOBS.replace("format: csv", "format: exel"),
    );
    let out = project.run(&["land"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sources.yml") && stderr.contains("line"),
        "{stderr}"
    );
}
