//! Small files of one write pooled into one before the commit. In one process the write node
//! already hands every partition's small remainder to the last partition to finish (see
//! [`super::exec`]); a cluster's tasks run apart, so each writes its remainder as a file of
//! its own and a small model would be a file per task. Those files are read back here and
//! written again as one. What is read back is bounded by what one partition would have held
//! in memory anyway (a quarter of the target file size), so the client never streams a large
//! table; larger files are committed as they are.

use std::sync::Arc;

use deltalake::DeltaTableError;
use deltalake::datafile::writer::DeltaWriter;
use deltalake::kernel::Add;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::exec::WriteTarget;

/// `adds` with their small files (smallest first, together at most the held size) replaced
/// by one file holding the same rows. Fewer than two small files: `adds` as they are.
pub(super) async fn pooled(
    store: Arc<dyn ObjectStore>,
    target: &WriteTarget,
    mut adds: Vec<Add>,
) -> Result<Vec<Add>, DeltaTableError> {
    let held = target.held_size() as i64;
    adds.sort_by_key(|add| add.size);
    let mut total = 0;
    let small = adds
        .iter()
        .take_while(|add| {
            total += add.size;
            total <= held
        })
        .count();
    if small < 2 {
        return Ok(adds);
    }
    let large = adds.split_off(small);
    let mut writer: Option<DeltaWriter> = None;
    let mut paths = Vec::with_capacity(adds.len());
    for add in &adds {
        let path = Path::from_url_path(&add.path)?;
        // Small by choice, so read whole.
        let bytes = store.get(&path).await?.bytes().await?;
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()? {
            let batch = batch?;
            let writer = writer.get_or_insert_with(|| {
                DeltaWriter::new(Arc::clone(&store), target.writer_config(batch.schema()))
            });
            writer.write(&batch).await?;
        }
        paths.push(path);
    }
    let mut result = large;
    if let Some(writer) = writer {
        result.extend(writer.close().await?);
    }
    // Never committed, so nothing reads them: removed now rather than left for `vacuum`.
    for path in paths {
        if let Err(e) = store.delete(&path).await {
            tracing::warn!("removing {path}, pooled into another file: {e}");
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use object_store::local::LocalFileSystem;

    use super::*;

    fn target(size: u64) -> WriteTarget {
        WriteTarget {
            table: url::Url::parse("file:///unused").unwrap(),
            target_file_size: size,
            stats_num_columns: -1,
            stats_columns: None,
        }
    }

    /// One file per call, as a cluster task writes its remainder.
    async fn file(store: &Arc<dyn ObjectStore>, target: &WriteTarget, ids: Vec<i64>) -> Add {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(ids))])
                .unwrap();
        let mut writer = DeltaWriter::new(Arc::clone(store), target.writer_config(schema));
        writer.write(&batch).await.unwrap();
        writer.close().await.unwrap().remove(0)
    }

    fn rows(add: &Add) -> u64 {
        super::super::exec::rows_of(add)
    }

    #[tokio::test]
    async fn small_files_become_one_and_large_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let small = target(1 << 20);
        let mut adds = Vec::new();
        for part in 0..3 {
            adds.push(file(&store, &small, (part * 10..part * 10 + 5).collect()).await);
        }
        let pooled = pooled(Arc::clone(&store), &small, adds.clone())
            .await
            .unwrap();
        assert_eq!(pooled.len(), 1, "{pooled:?}");
        assert_eq!(rows(&pooled[0]), 15);
        for add in &adds {
            assert!(!dir.path().join(&add.path).exists(), "{} removed", add.path);
        }
        assert!(dir.path().join(&pooled[0].path).exists());

        // Files over the held size (here: any file at all) are committed as they are.
        let tiny = target(4);
        let kept = pooled_paths(&store, &tiny, &[1, 2]).await;
        assert_eq!(kept.0.len(), 2);
        assert_eq!(kept.0, kept.1, "nothing rewritten");
    }

    /// The paths written and the paths `pooled` returns, for one file per list of ids.
    async fn pooled_paths(
        store: &Arc<dyn ObjectStore>,
        target: &WriteTarget,
        ids: &[i64],
    ) -> (Vec<String>, Vec<String>) {
        let mut adds = Vec::new();
        for id in ids {
            adds.push(file(store, target, vec![*id]).await);
        }
        let mut written: Vec<String> = adds.iter().map(|a| a.path.clone()).collect();
        let mut result: Vec<String> = pooled(Arc::clone(store), target, adds)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.path)
            .collect();
        written.sort();
        result.sort();
        (written, result)
    }
}
