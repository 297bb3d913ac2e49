//! Running SQL text against a session: statements parsed, rewritten where Strata extends the
//! dialect (named table-function arguments, PostgreSQL forms DataFusion does not plan, Delta
//! time travel), planned, executed and rendered. `strata sql`, the REPL and the server all
//! read SQL through here, so a statement means the same in each.

pub(crate) mod client_queries;
pub mod dialect;
pub(crate) mod exec;
pub(crate) mod ident;
pub(crate) mod int_literals;
pub(crate) mod names;
pub(crate) mod position;
pub(crate) mod render;
pub(crate) mod results;
pub(crate) mod rewrite;
pub(crate) mod search_path;
pub(crate) mod timetravel;

pub use exec::{Outcome, SqlError, run_statement, split_statements, stream_statement};
pub use names::ResultNames;
