//! Strata's own work on DataFusion plans, in one place: rules every session installs (one JSON
//! parse per row, limits that reach the scan, dedupe windows by hash grouping) and the build's
//! rewrites of a model's plan (repeated raw reads computed once, `unique`-shaped queries
//! answered from key hashes).
//! `session` installs the rules; `run` calls the rewrites.

pub mod first_rows;
pub mod grouped_window;
pub mod json_reads;
pub mod leaf_limits;
pub mod partitions;
pub mod reuse;
pub mod unique;
