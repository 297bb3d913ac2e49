//! Shared test scaffolding: throwaway projects, the real `strata` binary, and the real HDFS
//! started by `scripts/hdfs`.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use strata::lake::{Lake, LakeRoot};
use tempfile::TempDir;

/// The repository root (where `scripts/` and the example project live).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The real HDFS NameNode URL. Taken from `STRATA_TEST_HDFS` (set by `scripts/test`), else
/// started with `scripts/hdfs start`. Panics when HDFS cannot be had: these tests never skip.
pub fn hdfs_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("STRATA_TEST_HDFS")
            && !url.is_empty()
        {
            return url;
        }
        let out = Command::new(repo().join("scripts/hdfs"))
            .arg("start")
            .output()
            .expect("run scripts/hdfs start");
        assert!(
            out.status.success(),
            "HDFS did not come up:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// Copies the directory tree `from` into `to`.
/// Copies the example project (the repository root's dbt project and its catalog) into `to`.
pub fn copy_example_project(to: &Path) {
    for part in [
        "catalog",
        "dbt_project.yml",
        "models",
        "macros",
        "seeds",
        "data-tests",
        "snapshots",
    ] {
        let from = repo().join(part);
        if from.is_dir() {
            copy_tree(&from, &to.join(part));
        } else {
            std::fs::copy(&from, to.join(part)).unwrap();
        }
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Where a test's lake lives.
#[derive(Debug, Clone, Copy)]
pub enum LakeKind {
    Local,
    Hdfs,
}

/// A throwaway project directory with its own lake, drop zone and sources declaration.
pub struct Project {
    pub dir: TempDir,
    pub lake_root: String,
    /// Environment variables every `strata` command of the project gets (credentials).
    pub envs: Vec<(String, String)>,
}

impl Project {
    /// A project whose `catalog/sources.yml` is `sources` and whose lake is fresh.
    pub fn new(kind: LakeKind, sources: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let lake_root = match kind {
            LakeKind::Local => dir.path().join("lake").display().to_string(),
            LakeKind::Hdfs => format!(
                "{}/strata-tests/{}",
                hdfs_url(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        std::fs::write(
            dir.path().join("strata.toml"),
            format!("[lake]\nroot = {lake_root:?}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
        std::fs::write(dir.path().join("catalog/sources.yml"), sources).unwrap();
        Self {
            dir,
            lake_root,
            envs: Vec::new(),
        }
    }

    /// A project using the repository's own `catalog/sources.yml` (the shop source over `drop/`).
    pub fn shop(kind: LakeKind) -> Self {
        let sources = std::fs::read_to_string(repo().join("catalog/sources.yml")).unwrap();
        Self::new(kind, &sources)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A `strata` command running in this project (lake settings from its strata.toml only).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("STRATA_LAKE")
            .env_remove("STRATA_PROJECT_DIR")
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and insists on success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "strata {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn lake(&self) -> Lake {
        Lake::open(LakeRoot::parse(&self.lake_root, self.dir.path()).unwrap()).unwrap()
    }
}

/// Writes `files` (path, text) into the project.
pub fn write_files(project: &Project, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = project.path(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// stdout and stderr of a command, and whether it succeeded.
pub fn outcome(project: &Project, args: &[&str]) -> (bool, String) {
    let out = project.run(args);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Ingest-log records of one table, oldest first.
pub async fn logged(lake: &Lake, table: &str) -> Vec<strata::meta::IngestRecord> {
    strata::meta::IngestLog::new()
        .records(lake)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.table_name == table)
        .collect()
}

/// Every file under `prefix` in the lake.
pub async fn files_under(lake: &Lake, prefix: &str) -> std::collections::BTreeSet<String> {
    use futures::TryStreamExt;
    lake.store()
        .list(Some(&object_store::path::Path::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Hex sha256 of a byte slice.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Project {
    /// Copies a fixture project (`fixtures/projects/<name>`) into this project's directory.
    pub fn with_fixture(self, name: &str) -> Self {
        copy_tree(
            &repo().join("fixtures/projects").join(name),
            self.dir.path(),
        );
        self
    }

    /// The fixture warehouse of the server and REPL tests (`fixtures/serve/warehouse`: a
    /// seed, a view and a described table), built with `strata build`.
    pub fn warehouse(kind: LakeKind) -> Self {
        let project = Project::new(kind, "sources: []\n");
        copy_tree(&repo().join("fixtures/serve/warehouse"), project.dir.path());
        project.ok(&["build"]);
        project
    }

    /// Runs a query and returns its CSV rows (header first).
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        csv_rows(&self.ok(&["sql", "--format", "csv", "-c", sql]))
    }

    /// The single value a query returns.
    pub fn scalar(&self, sql: &str) -> String {
        let rows = self.query(sql);
        assert_eq!(rows.len(), 2, "one header and one row for {sql}: {rows:?}");
        rows[1][0].clone()
    }
}

/// The actions of a local Delta table's commit `version`, one JSON value each.
pub fn commit_actions(table: &Path, version: u64) -> Vec<serde_json::Value> {
    let log = table.join(format!("_delta_log/{version:020}.json"));
    std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What a Python script (with the test venv's packages) prints, given `arg`; it must succeed.
pub fn in_python(script: &str, arg: &Path) -> String {
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The rows (header first) of what `strata sql --format csv` printed.
pub fn csv_rows(out: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(out.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// The Python with test-only packages (deltalake, psycopg) that `scripts/test` prepares.
pub fn python() -> String {
    std::env::var("STRATA_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = std::env::var("STRATA_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/strata"))
            .join("venv/bin/python");
        assert!(
            venv.exists(),
            "{} is missing: run scripts/test",
            venv.display()
        );
        venv.display().to_string()
    })
}

/// The test database's connection string. Never skips: these tests fail without PostgreSQL.
pub fn pg_conn() -> String {
    std::env::var("STRATA_TEST_PG")
        .ok()
        .filter(|s| !s.is_empty())
        .expect("STRATA_TEST_PG is not set: run the tests with scripts/test")
}

/// A connected client; its connection runs on the test's runtime.
pub async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg_conn(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is unreachable: {e}", pg_conn()));
    tokio::spawn(connection);
    client
}
