//! The CSV, NDJSON and JSON-array raw-format readers of the bronze layer, on hand-written
//! fixtures: inference, decoding, rejection, and independence from how bytes are chunked.

mod formats_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use formats_common::{TS, cols, columns, display, line_offset, opts, reasons, run_decoder, schema};
use strata::bronze::decode::{MAX_REJECTED_RAW, RawFormatReader, Rejected};
use strata::bronze::formats::csv::CsvFormat;
use strata::bronze::formats::json::{JsonArrayFormat, NdjsonFormat};

fn csv(pairs: &[(&str, &str)]) -> CsvFormat {
    CsvFormat::new(&opts(pairs)).unwrap()
}

fn ndjson() -> NdjsonFormat {
    NdjsonFormat::new(&BTreeMap::new()).unwrap()
}

fn json_array() -> JsonArrayFormat {
    JsonArrayFormat::new(&BTreeMap::new()).unwrap()
}

/// What a decoder produced for a whole file: rows as display strings ("∅" for null).
#[derive(Debug, PartialEq)]
struct Output {
    rows: Vec<Vec<String>>,
    rejected: Vec<Rejected>,
    batch_rows: Vec<usize>,
}

impl Output {
    fn col(&self, i: usize) -> Vec<&str> {
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    fn reject_lines(&self) -> Vec<u64> {
        self.rejected.iter().map(|r| r.line).collect()
    }
}

/// Decodes `data` pushed in pieces of the given sizes (the last size repeats).
fn decode_in(
    format: &dyn RawFormatReader,
    schema: &SchemaRef,
    batch_size: usize,
    data: &[u8],
    sizes: &[usize],
) -> Output {
    let mut chunks = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let n = sizes[chunks.len().min(sizes.len() - 1)]
            .max(1)
            .min(data.len() - pos);
        chunks.push(&data[pos..pos + n]);
        pos += n;
    }
    let (batches, mut rejected) = run_decoder(format, schema, batch_size, chunks);
    rejected.sort_by_key(|r| r.line);
    Output {
        rows: display(&batches),
        rejected,
        batch_rows: batches.iter().map(|b| b.num_rows()).collect(),
    }
}

fn decode(format: &dyn RawFormatReader, schema: &SchemaRef, data: &[u8]) -> Output {
    decode_in(format, schema, 1024, data, &[data.len().max(1)])
}

/// Infers the schema from the whole file, then decodes it.
fn infer_decode(format: &dyn RawFormatReader, data: &[u8]) -> (SchemaRef, Output) {
    let schema = Arc::new(format.infer_schema(data, true).unwrap());
    let out = decode(format, &schema, data);
    (schema, out)
}

/// A small deterministic generator of chunk sizes.
fn random_sizes(seed: u64, n: usize, max: usize) -> Vec<usize> {
    let mut rng = Lcg(seed);
    rng.next();
    (0..n).map(|_| 1 + rng.below(max as u64) as usize).collect()
}

/// Decoding gives the same rows, rejects and batch sizes however the bytes are chunked:
/// split in two at every position, one byte at a time, and random chunk sizes.
fn assert_chunking_invariant(
    format: &dyn RawFormatReader,
    schema: &SchemaRef,
    batch_size: usize,
    data: &[u8],
) -> Output {
    let whole = decode_in(format, schema, batch_size, data, &[data.len()]);
    for split in 1..data.len() {
        let two = decode_in(format, schema, batch_size, data, &[split, data.len()]);
        assert_eq!(two, whole, "split at byte {split}");
    }
    assert_eq!(
        decode_in(format, schema, batch_size, data, &[1]),
        whole,
        "one byte at a time"
    );
    for seed in 0..20 {
        let sizes = random_sizes(seed, data.len(), 17);
        assert_eq!(
            decode_in(format, schema, batch_size, data, &sizes),
            whole,
            "random chunks, seed {seed}"
        );
    }
    whole
}

fn rejected(line: u64, offset: u64, raw: &str, reason: &str) -> Rejected {
    Rejected {
        line,
        offset,
        raw: raw.into(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Generator-like orders: currency strings with commas (quoted), mixed date formats, quoted
/// names with commas and doubled quotes.
const ORDERS: &str = "\
order_id,customer_id,order_ts,status,total_amount,currency,channel
1001,C-17,2026-01-01T10:00:00,shipped,\"$1,234.50\",USD,web
1002,C-18,2026-01-01 11:30:00,pending,99.90,EUR,\"store, downtown\"
1003,C-19,12/31/2026 10:00,\"said \"\"hi\"\"\",12,USD,app
1004,C-20,2026-01-02T08:15:00Z,shipped,N/A,USD,web
";

#[test]
fn csv_infers_generator_like_orders() {
    let format = csv(&[]);
    let (schema, out) = infer_decode(&format, ORDERS.as_bytes());
    assert_eq!(
        columns(&schema),
        cols(&[
            ("order_id", DataType::Int64),
            ("customer_id", DataType::Utf8),
            ("order_ts", DataType::Utf8),
            ("status", DataType::Utf8),
            ("total_amount", DataType::Utf8),
            ("currency", DataType::Utf8),
            ("channel", DataType::Utf8),
        ])
    );
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.col(0), ["1001", "1002", "1003", "1004"]);
    assert_eq!(out.col(4), ["$1,234.50", "99.90", "12", "N/A"]);
    assert_eq!(out.col(3), ["shipped", "pending", "said \"hi\"", "shipped"]);
    assert_eq!(out.col(6), ["web", "store, downtown", "app", "web"]);
}

#[test]
fn csv_infers_each_type_and_widens() {
    let data = "\
b,i,f,d,ts,mixed_num,date_ts,text,empty,lead
true,1,1.5,2026-01-01,2026-01-01T10:00:00,1,2026-01-01,x,,007
FALSE,-2,2e3,2026-12-31,2026-01-01 10:00:00.25,2.5,2026-01-02 03:04:05,12,,1
";
    let schema = csv(&[]).infer_schema(data.as_bytes(), true).unwrap();
    assert_eq!(
        columns(&schema),
        cols(&[
            ("b", DataType::Boolean),
            ("i", DataType::Int64),
            ("f", DataType::Float64),
            ("d", DataType::Date32),
            ("ts", TS),
            ("mixed_num", DataType::Float64),
            ("date_ts", TS),
            ("text", DataType::Utf8),
            ("empty", DataType::Null),
            ("lead", DataType::Utf8),
        ])
    );
    let out = decode(&csv(&[]), &Arc::new(schema), data.as_bytes());
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        out.rows[1],
        [
            "false",
            "-2",
            "2000.0",
            "2026-12-31",
            "2026-01-01T10:00:00.250",
            "2.5",
            "2026-01-02T03:04:05",
            "12",
            "∅",
            "1"
        ]
    );
    assert_eq!(out.rows[0][6], "2026-01-01T00:00:00");
}

#[test]
fn csv_sniffs_the_delimiter() {
    for (delim, data) in [
        (";", "id;amount;note\n1;1,5;\"a;b\"\n2;2,5;c\n"),
        ("\t", "id\tamount\tnote\n1\t1,5\t\"a\tb\"\n2\t2,5\tc\n"),
        ("|", "id|amount|note\n1|1,5|\"a|b\"\n2|2,5|c\n"),
        (",", "id,amount,note\n1,\"1,5\",\"a,b\"\n2,\"2,5\",c\n"),
    ] {
        let format = csv(&[]);
        let (schema, out) = infer_decode(&format, data.as_bytes());
        assert_eq!(
            columns(&schema),
            cols(&[
                ("id", DataType::Int64),
                ("amount", DataType::Utf8),
                ("note", DataType::Utf8)
            ]),
            "delimiter {delim:?}"
        );
        assert!(out.rejected.is_empty());
        assert_eq!(out.col(1), ["1,5", "2,5"]);
        assert_eq!(out.col(2), [format!("a{delim}b").as_str(), "c"]);
        // The decoder sniffs on its own, whatever the chunking.
        assert_chunking_invariant(&format, &schema, 1, data.as_bytes());
        // An explicit delimiter gives the same result.
        let explicit = csv(&[("delimiter", delim)]);
        assert_eq!(decode(&explicit, &schema, data.as_bytes()), out);
    }
}

#[test]
fn csv_sniffing_looks_past_the_header() {
    // The header alone has one comma; the data lines settle it: semicolons.
    let data = "a;b,c;d\n1;2;3\n4;5;6\n7;8;9\n";
    let schema = csv(&[]).infer_schema(data.as_bytes(), true).unwrap();
    assert_eq!(
        columns(&schema),
        cols(&[
            ("a", DataType::Int64),
            ("b,c", DataType::Int64),
            ("d", DataType::Int64)
        ])
    );
}

#[test]
fn csv_header_names_are_trimmed_and_deduplicated() {
    let data = "\u{feff} id ,,name,name,\"quoted, name\"\r\n1,2,3,4,5\r\n";
    let (schema, out) = infer_decode(&csv(&[]), data.as_bytes());
    let names: Vec<String> = columns(&schema).into_iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        ["id", "column_2", "name", "column_4", "quoted, name"]
    );
    assert_eq!(out.rows, [["1", "2", "3", "4", "5"]]);
}

#[test]
fn csv_without_header() {
    let data = "1,x,2026-01-01\n2,y,2026-01-02\n";
    let format = csv(&[("header", "false")]);
    let (schema, out) = infer_decode(&format, data.as_bytes());
    assert_eq!(
        columns(&schema),
        cols(&[
            ("column_1", DataType::Int64),
            ("column_2", DataType::Utf8),
            ("column_3", DataType::Date32)
        ])
    );
    assert_eq!(
        out.rows,
        [["1", "x", "2026-01-01"], ["2", "y", "2026-01-02"]]
    );
    // Line numbers: no header, so the first record is line 1.
    let bad = decode(&format, &schema, b"1,x,2026-01-01\n2,y\n");
    assert_eq!(
        bad.rejected,
        [rejected(2, 15, "2,y", "expected 3 fields, found 2")]
    );
}

#[test]
fn csv_quoting_with_custom_quote() {
    let data = "a,b\n'x,y','it''s'\n";
    let (_, out) = infer_decode(&csv(&[("quote", "'")]), data.as_bytes());
    assert_eq!(out.rows, [["x,y", "it's"]]);
}

#[test]
fn csv_crlf_and_bom() {
    let data = b"\xEF\xBB\xBFid,name\r\n1,\"a, b\"\r\n2,c\r\n3,d";
    let format = csv(&[]);
    let (schema, out) = infer_decode(&format, data);
    assert_eq!(
        columns(&schema),
        cols(&[("id", DataType::Int64), ("name", DataType::Utf8)])
    );
    assert_eq!(out.rows, [["1", "a, b"], ["2", "c"], ["3", "d"]]);
    assert_chunking_invariant(&format, &schema, 2, data);
    // Offsets count the BOM and the CRs; raw text has no line terminator.
    let out = decode(&format, &schema, b"\xEF\xBB\xBFid,name\r\n1,a,x\r\n2,b\r\n");
    assert_eq!(
        out.rejected,
        [rejected(2, 12, "1,a,x", "expected 2 fields, found 3")]
    );
    assert_eq!(out.rows, [["2", "b"]]);
}

/// A file with each kind of malformed line, and the exact rejections.
const MALFORMED: &str = "\
id,name,amount
1,alpha,10
2,beta,20,extra
3,gamma
4,\"delta, unterminated,40
5,\"eps\"\"ilon\",50

6,\"zeta\",60
7,eta\"x,70
8,\"a\"\"\",80
9,\"theta,90
10,iota,100
";

#[test]
fn csv_rejects_malformed_lines_and_resumes() {
    let format = csv(&[]);
    let schema = Arc::new(format.infer_schema(MALFORMED.as_bytes(), true).unwrap());
    assert_eq!(
        columns(&schema),
        cols(&[
            ("id", DataType::Int64),
            ("name", DataType::Utf8),
            ("amount", DataType::Int64)
        ])
    );
    let out = assert_chunking_invariant(&format, &schema, 3, MALFORMED.as_bytes());
    assert_eq!(out.col(0), ["1", "5", "6", "7", "8", "10"]);
    assert_eq!(
        out.col(1),
        ["alpha", "eps\"ilon", "zeta", "eta\"x", "a\"", "iota"]
    );
    let offset = |line| line_offset(MALFORMED, line);
    assert_eq!(
        out.rejected,
        [
            rejected(
                3,
                offset(3),
                "2,beta,20,extra",
                "expected 3 fields, found 4"
            ),
            rejected(4, offset(4), "3,gamma", "expected 3 fields, found 2"),
            rejected(
                5,
                offset(5),
                "4,\"delta, unterminated,40",
                "unterminated quote"
            ),
            rejected(11, offset(11), "9,\"theta,90", "unterminated quote"),
        ]
    );
    assert_eq!(out.batch_rows, [3, 3]);
}

#[test]
fn csv_last_line_without_newline() {
    let format = csv(&[]);
    let schema = schema(&[("a", DataType::Int64), ("b", DataType::Utf8)]);
    let out = decode(&format, &schema, b"a,b\n1,x\n2,y");
    assert_eq!(out.rows, [["1", "x"], ["2", "y"]]);
    let out = decode(&format, &schema, b"a,b\n1,x\n2,\"y");
    assert_eq!(out.rows, [["1", "x"]]);
    assert_eq!(
        out.rejected,
        [rejected(3, 8, "2,\"y", "unterminated quote")]
    );
    let out = decode(&format, &schema, b"a,b\n1,x\n2");
    assert_eq!(
        out.rejected,
        [rejected(3, 8, "2", "expected 2 fields, found 1")]
    );
    // Empty input, header only: no rows.
    assert_eq!(decode(&format, &schema, b"").rows.len(), 0);
    assert_eq!(decode(&format, &schema, b"a,b").rows.len(), 0);
}

#[test]
fn csv_rejects_values_that_do_not_fit() {
    let data = "\
id,qty,price,day,flag
1,5,1.5,2026-01-01,true
2,N/A,2.5,2026-01-02,false
3,7,abc,2026-01-03,true
4,8,3.5,01/04/2026,true
5,9,4.5,2026-01-05,maybe
6,10,5.5,2026-01-06,
";
    let format = csv(&[]);
    let schema = schema(&[
        ("id", DataType::Int64),
        ("qty", DataType::Int64),
        ("price", DataType::Float64),
        ("day", DataType::Date32),
        ("flag", DataType::Boolean),
    ]);
    let out = assert_chunking_invariant(&format, &schema, 4, data.as_bytes());
    assert_eq!(out.col(0), ["1", "6"]);
    assert_eq!(out.rows[1], ["6", "10", "5.5", "2026-01-06", "∅"]);
    let reasons = reasons(&out.rejected);
    assert_eq!(
        reasons,
        [
            (3, "value \"N/A\" in column qty is not an Int64"),
            (4, "value \"abc\" in column price is not a Float64"),
            (
                5,
                "value \"01/04/2026\" in column day is not a Date32 (YYYY-MM-DD)"
            ),
            (
                6,
                "value \"maybe\" in column flag is not a Boolean (true/false)"
            ),
        ]
    );
    assert_eq!(out.rejected[0].raw, "2,N/A,2.5,2026-01-02,false");
    // Rows around a misfit keep their batch: 4 good lines made one batch of 1 row (3 misfits),
    // then 2 lines made one more.
    assert_eq!(out.batch_rows, [1, 1]);
}

#[test]
fn csv_decodes_into_a_wider_schema() {
    let data = "id,qty,day,extra\n1,5,2026-01-01,x\n2,,2026-01-02,y\n";
    let format = csv(&[]);
    // qty: Int64 widened to Float64, then to Utf8; day: Date32 widened to Timestamp; `extra` is
    // not wanted; `missing` is not in this file.
    let wide = schema(&[
        ("missing", DataType::Int64),
        ("day", TS),
        ("qty", DataType::Float64),
        ("id", DataType::Utf8),
    ]);
    let out = assert_chunking_invariant(&format, &wide, 1, data.as_bytes());
    assert_eq!(
        out.rows,
        [
            ["∅", "2026-01-01T00:00:00", "5.0", "1"],
            ["∅", "2026-01-02T00:00:00", "∅", "2"]
        ]
    );
    let text = schema(&[("qty", DataType::Utf8)]);
    assert_eq!(decode(&format, &text, data.as_bytes()).col(0), ["5", "∅"]);
    // No wanted column in the file: rows of nulls, still counted.
    let none = schema(&[("nope", DataType::Utf8)]);
    assert_eq!(decode(&format, &none, data.as_bytes()).rows, [["∅"], ["∅"]]);
}

#[test]
fn csv_null_columns_reject_values() {
    let data = "a,b\n1,\n2,surprise\n3,\n";
    let format = csv(&[]);
    let schema = schema(&[("a", DataType::Int64), ("b", DataType::Null)]);
    let out = decode(&format, &schema, data.as_bytes());
    assert_eq!(out.col(0), ["1", "3"]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].line, 3);
    assert!(
        out.rejected[0]
            .reason
            .starts_with("value \"surprise\" in column b is not empty"),
        "{}",
        out.rejected[0].reason
    );
}

#[test]
fn csv_null_token() {
    let data = "id,qty,name\n1,NULL,x\n2,3,NULL\n3,,y\n4,x,z\n";
    let format = csv(&[("null", "NULL")]);
    let (schema, out) = infer_decode(&format, data.as_bytes());
    assert_eq!(
        columns(&schema),
        cols(&[
            ("id", DataType::Int64),
            ("qty", DataType::Utf8),
            ("name", DataType::Utf8)
        ])
    );
    assert_eq!(out.col(1), ["∅", "3", "∅", "x"]);
    assert_eq!(out.col(2), ["x", "∅", "y", "z"]);
    let typed = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("qty", DataType::Int64, true),
    ]));
    let out = assert_chunking_invariant(&format, &typed, 2, data.as_bytes());
    assert_eq!(out.col(1), ["∅", "3", "∅"]);
    assert_eq!(out.reject_lines(), [5]);
}

#[test]
fn csv_invalid_utf8_rejects_the_line() {
    let format = csv(&[]);
    let schema = schema(&[("a", DataType::Int64), ("b", DataType::Utf8)]);
    let out = decode(&format, &schema, b"a,b\n1,ok\n2,bad\xff\n3,fine\n");
    assert_eq!(out.col(0), ["1", "3"]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].reason, "invalid UTF-8");
    assert_eq!(out.rejected[0].line, 3);
    assert_eq!(out.rejected[0].raw, "2,bad\u{fffd}");
}

#[test]
fn csv_inference_ignores_the_partial_last_record() {
    let format = csv(&[]);
    let prefix = b"id,amount\n1,10\n2,20\n3,2x";
    let partial = format.infer_schema(prefix, false).unwrap();
    assert_eq!(
        columns(&partial),
        cols(&[("id", DataType::Int64), ("amount", DataType::Int64)])
    );
    let complete = format.infer_schema(prefix, true).unwrap();
    assert_eq!(complete.field(1).data_type(), &DataType::Utf8);
    // Malformed lines do not vote.
    let schema = format
        .infer_schema(b"id,amount\n1,10\n2,x,y\n3,\"x\n", true)
        .unwrap();
    assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    assert_eq!(format.infer_schema(b"", true).unwrap().fields().len(), 0);
}

#[test]
fn csv_batches_fill_during_push() {
    let mut data = String::from("n,sq\n");
    for i in 0..100 {
        data.push_str(&format!("{i},{}\n", i * i));
    }
    let format = csv(&[("delimiter", ",")]);
    let schema = Arc::new(format.infer_schema(data.as_bytes(), true).unwrap());
    let mut decoder = format.decoder(schema.clone(), 8);
    let first = decoder.push(&data.as_bytes()[..data.len() / 2]).unwrap();
    assert!(first.batches.len() >= 5, "batches emitted as they fill");
    assert!(first.batches.iter().all(|b| b.num_rows() == 8));
    let out = assert_chunking_invariant(&format, &schema, 8, data.as_bytes());
    assert_eq!(out.rows.len(), 100);
    assert_eq!(out.rows[99], ["99", "9801"]);
    assert_eq!(out.batch_rows.len(), 13);
}

#[test]
fn csv_long_rejected_lines_are_cut() {
    let format = csv(&[("delimiter", ",")]);
    let schema = schema(&[("a", DataType::Utf8)]);
    let long = format!("a\n{}\n", "x,".repeat(MAX_REJECTED_RAW));
    let out = decode(&format, &schema, long.as_bytes());
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].raw.len(), MAX_REJECTED_RAW);
}

#[test]
fn csv_options_are_checked() {
    assert!(CsvFormat::new(&opts(&[("delimiter", ";;")])).is_err());
    assert!(CsvFormat::new(&opts(&[("header", "maybe")])).is_err());
    assert!(CsvFormat::new(&opts(&[("delimiter", ","), ("quote", ",")])).is_err());
    assert!(CsvFormat::new(&opts(&[("sep", ",")])).is_err());
    assert!(CsvFormat::new(&opts(&[("delimiter", "\\t"), ("header", "false")])).is_ok());
}

/// A deterministic pseudo-random source for generated fixtures.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A generated CSV file and what decoding it must give.
struct Generated {
    data: Vec<u8>,
    rows: Vec<Vec<String>>,
    /// (line, reason) of each rejected line.
    rejects: Vec<(u64, String)>,
}

/// Random CSV with quoting, CRLF, blank lines, malformed lines and type misfits, with the
/// expected outcome computed alongside.
fn generate_csv(seed: u64, lines: usize) -> Generated {
    let mut rng = Lcg(seed);
    let mut data = b"id,qty,price,name,day\n".to_vec();
    let mut rows = Vec::new();
    let mut rejects = Vec::new();
    let names = [
        ("plain", "plain"),
        ("\"with, comma\"", "with, comma"),
        ("\"say \"\"hi\"\"\"", "say \"hi\""),
        ("\"\"", "∅"),
        ("", "∅"),
        ("in\"side", "in\"side"),
        ("\"a\rb\"", "a\rb"),
        ("ünï", "ünï"),
    ];
    for i in 0..lines {
        let line_no = i as u64 + 2;
        let id = i.to_string();
        let qty = rng.below(1000).to_string();
        let price = format!("{}.{}", rng.below(100), rng.below(10));
        let (name, name_out) = names[rng.below(names.len() as u64) as usize];
        let day = format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
        let kind = rng.below(40);
        let line = match kind {
            0 => {
                rejects.push((line_no, "expected 5 fields, found 6".to_string()));
                format!("{id},{qty},{price},{name},{day},extra")
            }
            1 => {
                rejects.push((line_no, "expected 5 fields, found 4".to_string()));
                format!("{id},{qty},{price},{day}")
            }
            2 => {
                rejects.push((line_no, "unterminated quote".to_string()));
                format!("{id},{qty},{price},\"open, name,{day}")
            }
            3 => {
                rejects.push((
                    line_no,
                    "value \"N/A\" in column qty is not an Int64".to_string(),
                ));
                format!("{id},N/A,{price},{name},{day}")
            }
            4 => {
                rejects.push((
                    line_no,
                    "value \"12/31/2026\" in column day is not a Date32 (YYYY-MM-DD)".to_string(),
                ));
                format!("{id},{qty},{price},{name},12/31/2026")
            }
            5 => String::new(),
            _ => {
                let qty_out = if kind == 6 { "∅" } else { qty.as_str() };
                let qty = if kind == 6 { "" } else { qty.as_str() };
                rows.push(vec![
                    id.clone(),
                    qty_out.to_string(),
                    price.clone(),
                    name_out.to_string(),
                    day.clone(),
                ]);
                format!("{id},{qty},{price},{name},{day}")
            }
        };
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(if rng.below(4) == 0 { b"\r\n" } else { b"\n" });
    }
    Generated {
        data,
        rows,
        rejects,
    }
}

#[test]
fn csv_generated_files_decode_as_expected() {
    let format = csv(&[]);
    let typed = schema(&[
        ("id", DataType::Int64),
        ("qty", DataType::Int64),
        ("price", DataType::Float64),
        ("name", DataType::Utf8),
        ("day", DataType::Date32),
    ]);
    for seed in 0..6 {
        let g = generate_csv(seed, 400);
        let mut rng = Lcg(seed + 100);
        for batch_size in [1, 7, 64, 1000] {
            let sizes: Vec<usize> = (0..200).map(|_| 1 + rng.below(300) as usize).collect();
            let out = decode_in(&format, &typed, batch_size, &g.data, &sizes);
            let mut want_rows = g.rows.clone();
            for r in &mut want_rows {
                // Arrow displays floats with at least one decimal.
                let f: f64 = r[2].parse().unwrap();
                r[2] = if f.fract() == 0.0 {
                    format!("{f:.1}")
                } else {
                    f.to_string()
                };
            }
            assert_eq!(out.rows, want_rows, "seed {seed} batch {batch_size}");
            let got: Vec<(u64, String)> = out
                .rejected
                .iter()
                .map(|r| (r.line, r.reason.clone()))
                .collect();
            assert_eq!(got, g.rejects, "seed {seed} batch {batch_size}");
            // The text path (forced by a null token that never occurs) agrees with the typed
            // path.
            let text_path = csv(&[("null", "<never>")]);
            assert_eq!(
                decode_in(&text_path, &typed, batch_size, &g.data, &sizes),
                out,
                "seed {seed} batch {batch_size}"
            );
        }
        // Every rejected record's offset and raw text point at its line.
        let out = decode(&format, &typed, &g.data);
        for r in &out.rejected {
            let at = &g.data[r.offset as usize..];
            let line = at.split(|&b| b == b'\n').next().unwrap();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert_eq!(r.raw.as_bytes(), line);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// NDJSON

const PAYMENTS: &str = r#"{"payment_id": 1, "order_id": 1001, "amount": 12, "paid_at": "2026-01-01T10:00:00Z", "meta": {"card": "visa", "tags": ["a", "b"]}}
{"payment_id": 2, "order_id": 1002, "amount": 12.5, "paid_at": "2026-01-01T11:00:00", "method": "card"}

{"payment_id": 3, "order_id": 1003, "amou
this is not json
{"payment_id": 4, "amount": null, "method": "cash", "meta": [1, {"x": null}]}
[1, 2]
{"payment_id": 5, "order_id": 1005, "amount": 3, "paid_at": "2026-01-02", "ok": true}
"#;

#[test]
fn ndjson_infers_in_first_seen_order() {
    let format = ndjson();
    let (schema, out) = infer_decode(&format, PAYMENTS.as_bytes());
    assert_eq!(
        columns(&schema),
        cols(&[
            ("payment_id", DataType::Int64),
            ("order_id", DataType::Int64),
            ("amount", DataType::Float64),
            ("paid_at", TS),
            ("meta", DataType::Utf8),
            ("method", DataType::Utf8),
            ("ok", DataType::Boolean),
        ])
    );
    assert_eq!(out.col(0), ["1", "2", "4", "5"]);
    assert_eq!(out.col(2), ["12.0", "12.5", "∅", "3.0"]);
    assert_eq!(
        out.col(3),
        [
            "2026-01-01T10:00:00",
            "2026-01-01T11:00:00",
            "∅",
            "2026-01-02T00:00:00"
        ]
    );
    assert_eq!(
        out.col(4),
        [
            r#"{"card":"visa","tags":["a","b"]}"#,
            "∅",
            r#"[1,{"x":null}]"#,
            "∅"
        ]
    );
    assert_eq!(out.col(6), ["∅", "∅", "∅", "true"]);
}

#[test]
fn ndjson_rejects_broken_lines() {
    let format = ndjson();
    let schema = Arc::new(format.infer_schema(PAYMENTS.as_bytes(), true).unwrap());
    let out = assert_chunking_invariant(&format, &schema, 2, PAYMENTS.as_bytes());
    let offset = |line| line_offset(PAYMENTS, line);
    let got: Vec<(u64, u64, &str, &str)> = out
        .rejected
        .iter()
        .map(|r| (r.line, r.offset, r.raw.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                4,
                offset(4),
                r#"{"payment_id": 3, "order_id": 1003, "amou"#,
                "invalid JSON: truncated JSON object"
            ),
            (
                5,
                offset(5),
                "this is not json",
                "invalid JSON: expected ident at column 2"
            ),
            (
                7,
                offset(7),
                "[1, 2]",
                "invalid JSON: invalid type: sequence, expected a JSON object at column 1"
            ),
        ]
    );
}

#[test]
fn ndjson_rejects_values_that_do_not_fit() {
    let data = concat!(
        "{\"id\": 1, \"qty\": 2, \"day\": \"2026-01-01\", \"name\": \"x\"}\n",
        "{\"id\": 2, \"qty\": 2.5}\n",
        "{\"id\": 3, \"qty\": \"3\"}\n",
        "{\"id\": 4, \"day\": \"01/04/2026\"}\r\n",
        "{\"id\": 5, \"name\": 42, \"unknown\": {\"deep\": [1]}}\r\n",
        "{\"id\": 6, \"name\": {\"b\": 1, \"a\": [true, null]}}\n",
    );
    let schema = schema(&[
        ("id", DataType::Int64),
        ("qty", DataType::Int64),
        ("day", DataType::Date32),
        ("name", DataType::Utf8),
        ("absent", DataType::Float64),
    ]);
    let out = assert_chunking_invariant(&ndjson(), &schema, 3, data.as_bytes());
    assert_eq!(out.col(0), ["1", "5", "6"]);
    assert_eq!(out.col(3), ["x", "42", r#"{"b":1,"a":[true,null]}"#]);
    assert_eq!(out.col(4), ["∅", "∅", "∅"]);
    let reasons = reasons(&out.rejected);
    assert_eq!(
        reasons,
        [
            (2, "value 2.5 in column qty is not an Int64"),
            (3, "value \"3\" in column qty is not an Int64"),
            (
                4,
                "value \"01/04/2026\" in column day is not a Date32 (YYYY-MM-DD)"
            ),
        ]
    );
    // The raw text has no line terminator, not even a CR.
    assert_eq!(out.rejected[2].raw, "{\"id\": 4, \"day\": \"01/04/2026\"}");
}

#[test]
fn ndjson_widened_schema_and_bom() {
    let data = b"\xEF\xBB\xBF{\"n\": 1, \"d\": \"2026-01-01\"}\n{\"n\": 2, \"d\": \"2026-01-02T01:02:03\"}";
    let format = ndjson();
    let (schema, _) = infer_decode(&format, data);
    assert_eq!(columns(&schema), cols(&[("n", DataType::Int64), ("d", TS)]));
    let wide = self::schema(&[("n", DataType::Float64), ("d", DataType::Utf8)]);
    let out = decode(&format, &wide, data);
    assert_eq!(
        out.rows,
        [["1.0", "2026-01-01"], ["2.0", "2026-01-02T01:02:03"]]
    );
}

#[test]
fn ndjson_inference_ignores_the_partial_last_line() {
    let prefix = b"{\"a\": 1}\n{\"a\": 2, \"b\": \"x\"}\n{\"a\": 3.5, \"c\"";
    let schema = ndjson().infer_schema(prefix, false).unwrap();
    assert_eq!(
        columns(&schema),
        cols(&[("a", DataType::Int64), ("b", DataType::Utf8)])
    );
    let prefix = b"{\"a\": 1}\n{\"a\": 2.5}";
    assert_eq!(
        columns(&ndjson().infer_schema(prefix, false).unwrap()),
        cols(&[("a", DataType::Int64)])
    );
    assert_eq!(
        columns(&ndjson().infer_schema(prefix, true).unwrap()),
        cols(&[("a", DataType::Float64)])
    );
}

// ---------------------------------------------------------------------------------------------
// JSON arrays

const PRODUCTS: &str = r#"[
  {
    "product_id": 1,
    "name": "Widget, \"large\"",
    "price": 9.5,
    "attributes": {"color": "red", "sizes": [1, 2], "meta": {"z": 1, "a": null}},
    "launched": "2025-03-01"
  },
  {
    "product_id": 2,
    "name": "Gadget ]}",
    "price": 10,
    "attributes": {},
    "launched": "2025-03-02",
    "discontinued": true
  },
  {
    "product_id": 3,
    "name": "Broken",
    "price": ,
  },
  "not an object",
  {"product_id": 4, "name": "Gizmo", "price": 1.25, "attributes": ["a"], "launched": null}
]
"#;

#[test]
fn json_array_streams_elements_with_nested_text() {
    let format = json_array();
    let (schema, out) = infer_decode(&format, PRODUCTS.as_bytes());
    assert_eq!(
        columns(&schema),
        cols(&[
            ("product_id", DataType::Int64),
            ("name", DataType::Utf8),
            ("price", DataType::Float64),
            ("attributes", DataType::Utf8),
            ("launched", DataType::Date32),
            ("discontinued", DataType::Boolean),
        ])
    );
    assert_eq!(out.col(0), ["1", "2", "4"]);
    assert_eq!(out.col(1), ["Widget, \"large\"", "Gadget ]}", "Gizmo"]);
    assert_eq!(
        out.col(3),
        [
            r#"{"color":"red","sizes":[1,2],"meta":{"z":1,"a":null}}"#,
            "{}",
            r#"["a"]"#
        ]
    );
    assert_eq!(out.col(4), ["2025-03-01", "2025-03-02", "∅"]);
    let got = reasons(&out.rejected);
    assert_eq!(
        got,
        [
            (
                17,
                "invalid JSON: expected value at line 4 column 14 of the record"
            ),
            (
                22,
                "invalid JSON: invalid type: string \"not an object\", expected a JSON object at column 15"
            ),
        ]
    );
    let offset = PRODUCTS.find("{\n    \"product_id\": 3").unwrap() as u64;
    assert_eq!(out.rejected[0].offset, offset);
    assert!(out.rejected[0].raw.starts_with("{\n    \"product_id\": 3"));
    assert!(out.rejected[0].raw.ends_with('}'));
}

#[test]
fn json_array_any_chunking() {
    let format = json_array();
    let schema = Arc::new(format.infer_schema(PRODUCTS.as_bytes(), true).unwrap());
    let out = assert_chunking_invariant(&format, &schema, 2, PRODUCTS.as_bytes());
    assert_eq!(out.batch_rows, [2, 1]);
}

#[test]
fn json_array_truncated_document() {
    let format = json_array();
    let schema = schema(&[("a", DataType::Int64)]);
    let out = decode(
        &format,
        &schema,
        b"[{\"a\": 1}, {\"a\": 2}, {\"a\": 3, \"b\": [1, 2",
    );
    assert_eq!(out.col(0), ["1", "2"]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(
        out.rejected[0].reason,
        "invalid JSON: truncated JSON object"
    );
    assert_eq!(out.rejected[0].offset, 21);
    // Inference from a cut prefix ignores the partial element.
    let prefix = b"[{\"a\": 1}, {\"a\": 2}, {\"a\": 3.5, \"b\": [1, 2";
    assert_eq!(
        columns(&format.infer_schema(prefix, false).unwrap()),
        cols(&[("a", DataType::Int64)])
    );
}

#[test]
fn json_array_of_a_single_object_or_concatenated_objects() {
    let format = json_array();
    let (schema, out) = infer_decode(&format, b"{\"a\": 1}\n{\"a\": 2}");
    assert_eq!(columns(&schema), cols(&[("a", DataType::Int64)]));
    assert_eq!(out.col(0), ["1", "2"]);
    let (_, out) = infer_decode(&format, b"  [ ]  ");
    assert!(out.rows.is_empty() && out.rejected.is_empty());
}

#[test]
fn json_options_are_checked() {
    assert!(NdjsonFormat::new(&opts(&[("x", "y")])).is_err());
    assert!(JsonArrayFormat::new(&opts(&[("x", "y")])).is_err());
}

// ---------------------------------------------------------------------------------------------
// Throughput (not a test of correctness; run with --ignored, ideally in release mode).

#[test]
#[ignore]
fn csv_throughput_against_arrow_csv() {
    use std::time::Instant;
    let rows = 1_000_000;
    let mut data =
        String::from("order_id,customer_id,order_ts,status,total_amount,currency,channel\n");
    for i in 0..rows {
        let amount = if i % 7 == 0 {
            format!("{}.{:02}", i % 5000, i % 100)
        } else {
            format!("{}", i % 900)
        };
        data.push_str(&format!(
            "{},{},2026-01-{:02}T{:02}:{:02}:00,{},{},USD,{}\n",
            100000 + i,
            i % 5000,
            1 + i % 28,
            i % 24,
            i % 60,
            ["shipped", "pending", "cancelled"][i % 3],
            amount,
            ["web", "app", "store"][i % 3],
        ));
    }
    let bytes = data.as_bytes();
    let format = csv(&[]);
    let schema = Arc::new(format.infer_schema(&bytes[..1 << 20], false).unwrap());
    let chunk = 1 << 20;

    let start = Instant::now();
    let mut decoder = format.decoder(schema.clone(), 8192);
    let mut n = 0;
    for c in bytes.chunks(chunk) {
        n += decoder
            .push(c)
            .unwrap()
            .batches
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>();
    }
    n += decoder
        .finish()
        .unwrap()
        .batches
        .iter()
        .map(|b| b.num_rows())
        .sum::<usize>();
    let ours = start.elapsed();
    assert_eq!(n, rows);

    let start = Instant::now();
    let mut arrow = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(8192)
        .build_decoder();
    let mut n = 0;
    for c in bytes.chunks(chunk) {
        let mut c = c;
        while !c.is_empty() {
            let k = arrow.decode(c).unwrap();
            c = &c[k..];
            if arrow.capacity() == 0 {
                n += arrow.flush().unwrap().map_or(0, |b| b.num_rows());
            }
        }
    }
    arrow.decode(&[]).unwrap();
    n += arrow.flush().unwrap().map_or(0, |b| b.num_rows());
    let theirs = start.elapsed();
    assert_eq!(n, rows);
    let mb = bytes.len() as f64 / 1e6;
    println!(
        "{mb:.0} MB: strata {:.0} ms ({:.0} MB/s), arrow-csv {:.0} ms ({:.0} MB/s), ratio {:.2}",
        ours.as_secs_f64() * 1e3,
        mb / ours.as_secs_f64(),
        theirs.as_secs_f64() * 1e3,
        mb / theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}
