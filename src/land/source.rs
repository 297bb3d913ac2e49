//! The extension point for source kinds: each kind lists the raw files it offers for a table
//! and opens them as byte streams. Landing does the rest the same way for every kind.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use super::LandError;
use super::declaration::TableDecl;

/// A stream of a raw file's bytes, in order.
pub type ByteStream = BoxStream<'static, Result<Bytes, LandError>>;

/// One file a source offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    /// Where the file comes from, as users would name it (a path or URL); logged verbatim.
    pub location: String,
    /// Size in bytes when the source knows it up front (for progress).
    pub size: Option<u64>,
    /// The file's extension(s) without the leading dot (`csv`, `csv.gz`), kept in bronze.
    pub extension: String,
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Lists the files currently offered for `table`, in a stable order.
    async fn discover(&self, table: &TableDecl) -> Result<Vec<RawFile>, LandError>;

    /// Opens one discovered file for reading.
    async fn open(&self, file: &RawFile) -> Result<ByteStream, LandError>;
}

/// The extension of a file name: everything after the first dot of the last segment, so that
/// compressed files keep both parts (`orders.csv.gz` → `csv.gz`).
pub fn extension_of(name: &str) -> String {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    file.trim_start_matches('.')
        .split_once('.')
        .map(|(_, ext)| ext.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::extension_of;

    #[test]
    fn extensions_keep_compression_suffixes() {
        assert_eq!(extension_of("/a/b/orders_2026-01-01.csv"), "csv");
        assert_eq!(extension_of("x/orders.csv.gz"), "csv.gz");
        assert_eq!(extension_of("README"), "");
        assert_eq!(extension_of(".hidden.json"), "json");
    }
}
