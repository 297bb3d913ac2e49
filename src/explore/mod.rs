//! The first look at data: a table's (or raw path's) columns with their inferred types and
//! a profile of their values.

mod profile;

pub use profile::profile;
