//! The modelled layers of the lake (silver, gold, any schema a model names): Delta tables at
//! `<lake>/<schema>/<table>` and views whose SQL is kept in the lake, so every session and the
//! server see what `strata run` built, at its latest version.

pub mod catalog;
mod lake_table;
pub mod views;

pub use catalog::LakeCatalog;
