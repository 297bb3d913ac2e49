//! From a table's declared format and options to the reader that decodes its files.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::BronzeError;
use super::decode::RawFormatReader;
use super::formats::{csv::CsvFormat, json::JsonArrayFormat, json::NdjsonFormat, xml::XmlFormat};
use crate::lake::RawFormat;

/// How the files of a table are read.
#[derive(Clone)]
pub enum Reader {
    /// Parquet carries its schema and is read by DataFusion's own Parquet scan.
    Parquet,
    /// A text format decoded by Strata's readers.
    Text(TextReader),
}

#[derive(Clone)]
pub struct TextReader {
    pub format: RawFormat,
    pub decoder: Arc<dyn RawFormatReader>,
    /// Whether a file may be cut into byte ranges at line ends and read in parallel: true
    /// for formats whose records are lines.
    pub splittable: bool,
    /// Whether each file starts with a header line that a range must be given to decode.
    pub header: bool,
    /// The options the reader was made with: what makes it again in another process.
    pub options: BTreeMap<String, String>,
}

impl Reader {
    /// The reader for `format` configured with `options`; `table` names the table in errors.
    pub fn new(
        format: RawFormat,
        options: &BTreeMap<String, String>,
        table: &str,
    ) -> Result<Self, BronzeError> {
        let invalid = |message: String| BronzeError::Options {
            table: table.to_string(),
            message,
        };
        let text = |decoder: Arc<dyn RawFormatReader>, splittable: bool, header: bool| {
            Self::Text(TextReader {
                format,
                decoder,
                splittable,
                header,
                options: options.clone(),
            })
        };
        Ok(match format {
            RawFormat::Parquet => {
                if let Some(key) = options.keys().next() {
                    return Err(invalid(format!("parquet takes no option {key:?}")));
                }
                Self::Parquet
            }
            RawFormat::Csv => {
                let header = options.get("header").is_none_or(|h| h != "false");
                text(
                    Arc::new(CsvFormat::new(options).map_err(invalid)?),
                    true,
                    header,
                )
            }
            RawFormat::Ndjson => text(
                Arc::new(NdjsonFormat::new(options).map_err(invalid)?),
                true,
                false,
            ),
            RawFormat::Json => text(
                Arc::new(JsonArrayFormat::new(options).map_err(invalid)?),
                false,
                false,
            ),
            RawFormat::Xml => text(
                Arc::new(XmlFormat::new(options).map_err(invalid)?),
                false,
                false,
            ),
        })
    }

    /// Cache key part that changes whenever the way files are decoded changes.
    pub fn fingerprint(format: RawFormat, options: &BTreeMap<String, String>) -> String {
        let mut key = format.to_string();
        for (k, v) in options {
            key.push_str(&format!(";{k}={v}"));
        }
        key
    }
}

/// Whether JSON text is one object per line rather than one array document.
pub fn json_is_lines(head: &[u8]) -> bool {
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// The likely row element of a record-oriented XML document: the first child of the root.
pub fn xml_row_tag(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let mut names = text
        .split('<')
        .skip(1)
        .filter(|t| !t.starts_with(['?', '!', '/']))
        .map(|t| {
            t.split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next()
                .unwrap_or_default()
                .to_string()
        });
    let _root = names.next()?;
    names.next().filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_json_layout_and_xml_rows() {
        assert!(json_is_lines(b"  {\"a\":1}\n{\"a\":2}"));
        assert!(!json_is_lines(b"[{\"a\":1}]"));
        let xml = b"<?xml version=\"1.0\"?>\n<!-- feed -->\n<shipments><shipment id=\"1\"><x>1</x></shipment>";
        assert_eq!(xml_row_tag(xml).as_deref(), Some("shipment"));
        assert_eq!(xml_row_tag(b"<only/>"), None);
    }
}
