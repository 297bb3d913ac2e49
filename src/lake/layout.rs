//! Where things live inside a lake. Every path Strata writes is spelled here, once.

use chrono::NaiveDate;
use object_store::path::Path;

/// Strata's own metadata tables and scratch space.
const META: &str = "_strata";

/// Bronze directory of one landed table: `bronze/<source>/<table>`.
pub fn bronze_table(source: &str, table: &str) -> Path {
    Path::from_iter(["bronze", source, table])
}

/// One raw file in bronze: `bronze/<source>/<table>/ingest_date=YYYY-MM-DD/<batch>-<n>.<ext>`.
pub fn bronze_file(
    source: &str,
    table: &str,
    ingest_date: NaiveDate,
    batch: &str,
    n: usize,
    ext: &str,
) -> Path {
    let partition = format!("ingest_date={}", ingest_date.format("%Y-%m-%d"));
    let name = if ext.is_empty() {
        format!("{batch}-{n}")
    } else {
        format!("{batch}-{n}.{ext}")
    };
    Path::from_iter(["bronze", source, table, &partition, &name])
}

/// Folders under `_strata/` that are not metadata tables.
pub const META_SCRATCH: [&str; 2] = ["tmp", "views"];

/// Schemas that hold something other than modelled tables.
pub const RESERVED_SCHEMAS: [&str; 2] = ["bronze", META];

/// A model's Delta table: `<schema>/<name>`.
pub fn model_table(schema: &str, name: &str) -> Path {
    Path::from_iter([schema, name])
}

/// A view's definition: `_strata/views/<schema>/<name>.sql`.
pub fn view_file(schema: &str, name: &str) -> Path {
    Path::from_iter([META, "views", schema, &format!("{name}.sql")])
}

/// Folder of the view definitions of one schema.
pub fn view_dir(schema: &str) -> Path {
    Path::from_iter([META, "views", schema])
}

/// A Delta table of Strata's own metadata, e.g. `_strata/ingest_log`.
pub fn meta_table(name: &str) -> Path {
    Path::from_iter([META, name])
}

/// Scratch space for files being written; nothing under it is ever read as data.
pub fn tmp_dir() -> Path {
    Path::from_iter([META, "tmp"])
}

/// The scratch folder of one writer, `_strata/tmp/<owner>`: whose files are in it tells a
/// killed run's leftovers from a running one's.
pub fn tmp_owner_dir(owner: &str) -> Path {
    tmp_dir().join(owner)
}

/// A fresh scratch file name in `owner`'s scratch folder.
pub fn tmp_file(owner: &str) -> Path {
    tmp_owner_dir(owner).join(uuid::Uuid::new_v4().simple().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bronze_files_follow_the_documented_layout() {
        let date = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let p = bronze_file("shop", "orders", date, "20260102T000000000Z", 3, "csv");
        assert_eq!(
            p.as_ref(),
            "bronze/shop/orders/ingest_date=2026-01-02/20260102T000000000Z-3.csv"
        );
    }
}
