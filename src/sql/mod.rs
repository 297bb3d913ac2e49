//! Running SQL text against a session: statements parsed, rewritten where Strata extends the
//! dialect (named table-function arguments, PostgreSQL forms DataFusion does not plan, Delta
//! time travel), planned, executed and printed. `strata sql`, the REPL and the server all
//! read SQL through here, so a statement means the same in each.

pub mod dialect;
pub mod exec;
pub mod position;
pub mod print;
pub mod rewrite;
pub mod search_path;
pub mod timetravel;

pub use exec::{Outcome, SqlError, run_statement, split_statements, stream_statement};
pub use print::PrintFormat;
