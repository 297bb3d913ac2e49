//! Running SQL text against a session: statements parsed with DataFusion's parser, rewritten
//! where Strata extends the dialect, planned, executed and printed. The `sql` command uses it
//! now; the REPL and the server build on it.

pub mod exec;
pub mod print;
pub mod rewrite;

pub use exec::{Outcome, run_statement, split_statements};
pub use print::PrintFormat;
