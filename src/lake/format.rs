//! The raw file formats of the lake: what the generator writes, sources declare and bronze
//! reads back.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RawFormat {
    Csv,
    /// One JSON array document of records.
    Json,
    /// One JSON object per line.
    Ndjson,
    Xml,
    Parquet,
}

impl RawFormat {
    /// The file extension, which is also the format's name in manifests, logs and options.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Xml => "xml",
            Self::Parquet => "parquet",
        }
    }
}

impl fmt::Display for RawFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}
