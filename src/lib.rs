//! Strata: a SQL-first lakehouse engine. The modules below follow the data's journey, and each
//! uses only modules listed before it, but for `generate`, which publishes its events through
//! `land`'s NATS client.

pub(crate) mod machine; // what the host has (memory), for defaults sized by it
pub(crate) mod stop; // Ctrl-C and SIGTERM for long-running commands

pub mod lake; // storage, layout and the bare DataFusion context over the lake

pub mod config; // strata.toml

pub(crate) mod confine; // local reads kept inside their folders by real path

pub mod meta; // Strata's own tables: the ingest log and the run log

pub mod generate; // dirty raw source data

pub mod land; // raw files and rows copied unchanged into bronze

pub mod bronze; // schema-on-read tables and raw paths over bronze

pub(crate) mod warehouse; // the catalog of the modelled layers (silver, gold, ...)

pub(crate) mod plan; // Strata's plan rules and rewrites

pub mod session; // the one place a user's DataFusion session is built

pub(crate) mod explore; // a first look at a table's columns and values

pub mod sql; // running SQL text: its dialect, time travel, results and their renderer

pub mod jinja; // the template runtime dbt projects are written in

pub mod project; // a dbt project read into nodes

pub mod compile; // nodes rendered to SQL

pub(crate) mod graph; // the DAG and node selection

pub(crate) mod run; // building models and running tests

pub mod serve; // the warehouse on the PostgreSQL wire protocol

pub(crate) mod repl; // the interactive shell

pub mod cli; // the commands
