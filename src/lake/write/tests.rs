//! Writes of real queries into a local lake: file counts for small and large outputs, one
//! commit per write, statistics in the log, and a failed write leaving the table as it was.

use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStoreExt;
use tempfile::TempDir;

use super::{CommitMetadata, DeltaWrite, WriteMode};
use crate::lake::context::{over_lake, state_builder};
use crate::lake::{Lake, LakeRoot, delta};

struct Fixture {
    _dir: TempDir,
    lake: Lake,
    ctx: SessionContext,
}

/// A local lake and a session planning queries into `partitions` partitions.
fn fixture(partitions: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(LakeRoot::Local(dir.path().join("lake"))).unwrap();
    let config = SessionConfig::new().with_target_partitions(partitions);
    let state = state_builder(config, Default::default()).build();
    let ctx = over_lake(&lake, state);
    Fixture {
        _dir: dir,
        lake,
        ctx,
    }
}

/// `n` rows of an id, a text and a float, spread over the session's partitions.
fn rows(n: u64) -> String {
    format!(
        "SELECT value AS id, concat('row ', value) AS label, value * 0.5 AS half \
         FROM unnest(range(0, {n})) AS t(value)"
    )
}

impl Fixture {
    async fn write(
        &self,
        sql: &str,
        mode: WriteMode,
        target_file_size: Option<u64>,
    ) -> Result<deltalake::DeltaTable, deltalake::DeltaTableError> {
        let path = object_store::path::Path::from("gold/t");
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        DeltaWrite {
            lake: &self.lake,
            path: &path,
            name: "t",
            mode,
            target_file_size,
            partition_by: &[],
            replace_where: None,
        }
        .run(&self.ctx.state(), plan, CommitMetadata::new())
        .await
    }

    /// Count and sum of ids of the table's latest version, read through delta-rs.
    async fn read(&self) -> (String, String) {
        let path = object_store::path::Path::from("gold/t");
        let table = delta::open(&self.lake, &path).await.unwrap().unwrap();
        let ctx = SessionContext::new();
        crate::lake::context::register_delta(&ctx, "t", &table)
            .await
            .unwrap();
        let batches = ctx
            .sql("SELECT cast(count(*) AS varchar), cast(sum(id) AS varchar) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = |i: usize| {
            arrow::util::display::array_value_to_string(batches[0].column(i), 0).unwrap()
        };
        (text(0), text(1))
    }

    /// The actions of commit `version`.
    async fn actions(&self, version: u64) -> Vec<serde_json::Value> {
        let file = object_store::path::Path::from(format!("gold/t/_delta_log/{version:020}.json"));
        let bytes = self
            .lake
            .store()
            .get(&file)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn adds(actions: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    actions.iter().filter_map(|a| a.get("add")).collect()
}

#[tokio::test]
async fn a_small_output_is_one_file_in_one_commit() {
    let f = fixture(4);
    let table = f
        .write(&rows(1000), WriteMode::Replace, None)
        .await
        .unwrap();
    assert_eq!(table.version(), Some(0));
    let actions = f.actions(0).await;
    assert_eq!(adds(&actions).len(), 1, "{actions:?}");
    assert!(actions.iter().any(|a| a.get("protocol").is_some()));
    assert!(actions.iter().any(|a| a.get("metaData").is_some()));
    assert_eq!(f.read().await, ("1000".into(), "499500".into()));
}

#[tokio::test]
async fn a_large_output_is_written_as_several_files_with_statistics() {
    let f = fixture(4);
    // A 256 KiB target: each partition's ~1 MiB of rows is its own files.
    let table = f
        .write(&rows(200_000), WriteMode::Replace, Some(256 * 1024))
        .await
        .unwrap();
    assert_eq!(table.version(), Some(0));
    let actions = f.actions(0).await;
    let files = adds(&actions);
    assert!(files.len() >= 4, "{} files", files.len());
    let mut rows = 0;
    for add in &files {
        let stats: serde_json::Value =
            serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
        rows += stats["numRecords"].as_u64().unwrap();
        assert!(stats["minValues"].get("id").is_some(), "{stats}");
    }
    assert_eq!(rows, 200_000);
    let info = actions.iter().find_map(|a| a.get("commitInfo")).unwrap();
    assert_eq!(info["operationMetrics"]["num_added_rows"], 200_000);
    assert_eq!(f.read().await, ("200000".into(), "19999900000".into()));
}

#[tokio::test]
async fn a_replace_removes_the_previous_files_in_the_same_commit() {
    let f = fixture(2);
    f.write(&rows(10), WriteMode::Replace, None).await.unwrap();
    let table = f.write(&rows(5), WriteMode::Replace, None).await.unwrap();
    assert_eq!(table.version(), Some(1));
    let actions = f.actions(1).await;
    assert_eq!(adds(&actions).len(), 1);
    assert_eq!(
        actions.iter().filter(|a| a.get("remove").is_some()).count(),
        1
    );
    assert_eq!(f.read().await, ("5".into(), "10".into()));
}

#[tokio::test]
async fn an_append_adds_files_and_a_new_column_evolves_the_schema() {
    let f = fixture(2);
    f.write(&rows(10), WriteMode::Append, None).await.unwrap();
    let table = f.write(&rows(10), WriteMode::Append, None).await.unwrap();
    assert_eq!(table.version(), Some(1));
    assert_eq!(f.read().await, ("20".into(), "90".into()));
    let wider = "SELECT value AS id, 'x' AS label, 1.0 AS half, true AS flag \
                 FROM unnest(range(0, 3)) AS t(value)";
    let table = f.write(wider, WriteMode::Append, None).await.unwrap();
    assert_eq!(table.version(), Some(2));
    let schema = table.snapshot().unwrap().schema();
    assert!(schema.field("flag").is_some());
    assert_eq!(f.read().await, ("23".into(), "93".into()));
}

#[tokio::test]
async fn a_write_failing_midway_leaves_the_previous_version() {
    let f = fixture(4);
    f.write(&rows(1000), WriteMode::Replace, None)
        .await
        .unwrap();
    // Fails on one row, after other partitions have written theirs.
    let failing = "SELECT value AS id, concat('row ', value) AS label, \
                   cast(1 / (value - 150000) AS double) AS half \
                   FROM unnest(range(0, 200000)) AS t(value)";
    let error = f
        .write(failing, WriteMode::Replace, Some(256 * 1024))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("Divide by zero"), "{error}");
    let path = object_store::path::Path::from("gold/t");
    assert_eq!(
        delta::latest_version(&f.lake, &path).await.unwrap(),
        Some(0)
    );
    assert_eq!(f.read().await, ("1000".into(), "499500".into()));
    // The files of the failed write were never committed.
    let table = delta::open(&f.lake, &path).await.unwrap().unwrap();
    assert_eq!(table.snapshot().unwrap().log_data().num_files(), 1);
}
