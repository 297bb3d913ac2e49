//! Running SQL text against a session: statements parsed with DataFusion's parser, rewritten
//! where Strata extends the dialect, planned, executed and printed. The `sql` command and the
//! REPL use it; the server builds on it.

pub mod exec;
pub mod position;
pub mod print;
pub mod rewrite;

pub use exec::{Outcome, run_statement, split_statements, stream_statement};
pub use print::PrintFormat;
