//! Strata: a SQL-first lakehouse engine.
//!
//! The modules follow the data's journey: `generate` makes raw source data, `land` copies it
//! into the bronze layer, and everything rests on `lake` (storage, layout and the DataFusion
//! context over them), `meta` (Strata's own tables: the ingest log and the run log), `config`
//! and `session` (the one place a user's DataFusion session is built). `serve` puts the
//! warehouse on the PostgreSQL wire protocol; `repl` is the interactive shell.

pub mod bronze;
pub mod cli;
pub mod compile;
pub mod config;
pub mod confine;
pub mod explore;
pub mod generate;
pub mod graph;
pub mod jinja;
pub mod lake;
pub mod land;
pub mod machine;
pub mod meta;
pub mod plan;
pub mod project;
pub mod repl;
pub mod run;
pub mod serve;
pub mod session;
pub mod sql;
pub mod stop;
pub mod warehouse;
