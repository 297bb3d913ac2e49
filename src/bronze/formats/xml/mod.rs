//! XML: record-oriented documents, one row per `row_tag` element (like spark-xml).
//!
//! Options: `row_tag` (required): the element holding one record, wherever it sits (usually
//! the children of the root element); `nested_separator` (default `_`): joins the names of
//! nested elements into a column name.
//!
//! Columns are the row element's attributes and its leaf descendants: `<address><city>` is
//! column `address_city`, and an attribute of a nested element is named like a child of it
//! (`<price currency="EUR">` → `price_currency`). Namespace prefixes are dropped and `xmlns`
//! declarations ignored. An element repeated within a row becomes a JSON array (Utf8) of its
//! values; an empty or self-closing element is null, as is an absent one. Text is trimmed,
//! entity-unescaped, CDATA included; an element with child elements has no value of its own.
//!
//! A broken row element (mismatched or unclosed tags, cut short by the next row, by the end
//! of the root or of the file, invalid XML inside) is rejected whole and reading resumes at
//! the next `<row_tag` start tag.
//!
//! Layout: `frame` cuts the byte stream into row elements (hand-written, resumable),
//! `row` flattens one element with quick-xml, `decoder` builds batches; values are typed by
//! [`super::values`], as in the other formats.

mod decoder;
mod frame;
mod row;

use std::collections::{BTreeMap, HashMap};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use super::values::{Dialect, classify_text, widen};
use crate::bronze::decode::{RawDecoder, RawFormatReader, Rejected};
use frame::{Framer, Sink};
use row::RowParser;

const OPTIONS: [&str; 2] = ["row_tag", "nested_separator"];

/// The XML raw format, configured with its table's options.
#[derive(Debug, Clone)]
pub struct XmlFormat {
    row_tag: String,
    separator: String,
}

impl XmlFormat {
    /// Reads the table's options: `row_tag` (required) and `nested_separator` (default `_`).
    pub fn new(options: &BTreeMap<String, String>) -> Result<Self, String> {
        if let Some(unknown) = options.keys().find(|k| !OPTIONS.contains(&k.as_str())) {
            return Err(format!(
                "unknown xml option {unknown:?} (known options: {})",
                OPTIONS.join(", ")
            ));
        }
        let row_tag = options.get("row_tag").map(|t| t.trim()).unwrap_or_default();
        if row_tag.is_empty() {
            return Err(
                "xml tables need the row_tag option: the element that holds one record, \
                 e.g. `options: { row_tag: shipment }`"
                    .into(),
            );
        }
        let valid_name = row_tag.bytes().enumerate().all(|(i, b)| {
            b >= 0x80
                || b.is_ascii_alphabetic()
                || matches!(b, b'_' | b':')
                || (i > 0 && (b.is_ascii_digit() || matches!(b, b'-' | b'.')))
        });
        if !valid_name {
            return Err(format!(
                "xml option row_tag {row_tag:?} is not an XML element name"
            ));
        }
        let separator = options.get("nested_separator").map_or("_", String::as_str);
        Ok(Self {
            row_tag: row_tag.to_owned(),
            separator: separator.to_owned(),
        })
    }

    pub fn row_tag(&self) -> &str {
        &self.row_tag
    }

    pub fn nested_separator(&self) -> &str {
        &self.separator
    }
}

impl RawFormatReader for XmlFormat {
    fn infer_schema(&self, prefix: &[u8], complete: bool) -> Result<Schema, ArrowError> {
        let mut framer = Framer::new(&self.row_tag);
        let mut sink = InferSink::new(&self.separator);
        framer.push(prefix, &mut sink);
        if complete {
            framer.finish(&mut sink);
        }
        Ok(Schema::new(
            sink.columns
                .into_iter()
                .map(|c| Field::new(c.name, c.data_type, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn decoder(&self, schema: SchemaRef, batch_size: usize) -> Box<dyn RawDecoder> {
        Box::new(decoder::XmlDecoder::new(
            &self.row_tag,
            &self.separator,
            schema,
            batch_size,
        ))
    }
}

struct InferColumn {
    name: String,
    data_type: DataType,
    /// The last row that had a value for it (to spot repeated elements).
    last_row: u64,
}

/// Votes the rows of the sample into column types; rejected rows do not vote.
struct InferSink {
    parser: RowParser,
    columns: Vec<InferColumn>,
    index: HashMap<String, usize>,
    rows: u64,
}

impl InferSink {
    fn new(separator: &str) -> Self {
        Self {
            parser: RowParser::new(separator),
            columns: Vec::new(),
            index: HashMap::new(),
            rows: 0,
        }
    }
}

impl Sink for InferSink {
    fn row(&mut self, xml: &[u8], _line: u64, _offset: u64) {
        if self.parser.parse(xml).is_err() {
            return;
        }
        self.rows += 1;
        for field in self.parser.fields() {
            let name = self.parser.name(field);
            let c = match self.index.get(name) {
                Some(&c) => c,
                None => {
                    self.index.insert(name.to_owned(), self.columns.len());
                    self.columns.push(InferColumn {
                        name: name.to_owned(),
                        data_type: DataType::Null,
                        last_row: 0,
                    });
                    self.columns.len() - 1
                }
            };
            let column = &mut self.columns[c];
            if column.last_row == self.rows {
                // Repeated within the row: a JSON array.
                column.data_type = DataType::Utf8;
            }
            column.last_row = self.rows;
            if let Some(value) = self.parser.value(field) {
                column.data_type = widen(&column.data_type, &classify_text(value, Dialect::XML));
            }
        }
    }

    fn reject(&mut self, _rejected: Rejected) {}
}
