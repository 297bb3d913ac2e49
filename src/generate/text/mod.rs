//! Text files, one record per physical line: CSV with a header, NDJSON, XML with one element
//! per line inside a root element, and JSON arrays with one object per line.

pub(super) mod encode;
mod malform;

use std::io::{self, Write};

use indicatif::ProgressBar;
use rand_chacha::ChaCha8Rng;

use super::dirt::{Sink, Table, Tally, pump};
use super::manifest::DirtCounts;
use super::options::Rates;
use super::output::{OutFile, Written};
use crate::lake::RawFormat;

/// The text layouts an entity can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextFormat {
    Csv,
    Ndjson,
    Xml,
    JsonArray,
}

impl TextFormat {
    pub(super) fn format(self) -> RawFormat {
        match self {
            TextFormat::Csv => RawFormat::Csv,
            TextFormat::Ndjson => RawFormat::Ndjson,
            TextFormat::Xml => RawFormat::Xml,
            TextFormat::JsonArray => RawFormat::Json,
        }
    }
}

/// A table whose rows render as one line of text.
pub(super) trait TextTable: Table {
    /// Appends `row` as one record without line terminator and adds the dirt it shows.
    fn render(&self, row: &Self::Row, out: &mut Vec<u8>, dirt: &mut DirtCounts);
}

/// A text file about to be written.
pub(super) struct TextFile<'a> {
    pub format: TextFormat,
    /// Name of the XML root element.
    pub root: &'static str,
    pub out: OutFile,
    pub rng: &'a mut ChaCha8Rng,
    pub rates: &'a Rates,
    pub progress: &'a ProgressBar,
}

impl TextFile<'_> {
    /// Writes every row of `table`.
    pub(super) fn write<T: TextTable>(self, mut table: T) -> io::Result<(Tally, Written)> {
        let (format, root) = (self.format, self.root);
        let mut sink = TextSink {
            out: self.out,
            format,
            line: Vec::with_capacity(512),
            records: 0,
        };
        match format {
            TextFormat::Csv => {
                sink.out.write_all(table.columns().join(",").as_bytes())?;
                sink.out.write_all(b"\n")?;
            }
            TextFormat::Xml => writeln!(
                sink.out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>"
            )?,
            TextFormat::Ndjson | TextFormat::JsonArray => {}
        }
        let tally = pump(&mut table, &mut sink, self.rng, self.rates, self.progress)?;
        match format {
            TextFormat::Xml => writeln!(sink.out, "</{root}>")?,
            TextFormat::JsonArray if sink.records == 0 => sink.out.write_all(b"[]\n")?,
            TextFormat::JsonArray => sink.out.write_all(b"\n]\n")?,
            TextFormat::Csv | TextFormat::Ndjson => {}
        }
        Ok((tally, sink.out.finish()?))
    }
}

struct TextSink {
    out: OutFile,
    format: TextFormat,
    /// The record being built, reused so rows cost no allocation.
    line: Vec<u8>,
    records: u64,
}

impl TextSink {
    /// Writes `self.line` as the next record.
    fn emit(&mut self) -> io::Result<()> {
        if self.format == TextFormat::JsonArray {
            // `[` opens the first line and `,` ends every other, so each object has a line.
            self.out
                .write_all(if self.records == 0 { b"[" } else { b",\n" })?;
            self.out.write_all(&self.line)?;
        } else {
            self.line.push(b'\n');
            self.out.write_all(&self.line)?;
        }
        self.records += 1;
        Ok(())
    }
}

impl<T: TextTable> Sink<T> for TextSink {
    fn write(&mut self, table: &T, row: &T::Row, dirt: &mut DirtCounts) -> io::Result<()> {
        self.line.clear();
        table.render(row, &mut self.line, dirt);
        self.emit()
    }

    fn can_malform(&self) -> bool {
        // A broken object inside a JSON array would break the whole document, not one record.
        self.format != TextFormat::JsonArray
    }

    fn write_malformed(&mut self, table: &T, row: &T::Row, rng: &mut ChaCha8Rng) -> io::Result<()> {
        self.line.clear();
        // The dirt of a record nobody can read is not counted.
        table.render(row, &mut self.line, &mut DirtCounts::default());
        malform::malform(self.format, &mut self.line, rng);
        self.emit()
    }
}
