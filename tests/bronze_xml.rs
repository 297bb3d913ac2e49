//! The XML raw-format reader: schema inference from a prefix, streaming decoding in arbitrary
//! chunks, one rejection per broken row element and resynchronisation at the next row.

mod formats_common;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use formats_common::{TS, columns as types, display, opts, reasons, run_decoder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use strata::bronze::decode::{MAX_REJECTED_RAW, RawFormatReader, Rejected};
use strata::bronze::formats::xml::XmlFormat;

fn format_with(options: &[(&str, &str)]) -> Result<XmlFormat, String> {
    XmlFormat::new(&opts(options))
}

fn shipments() -> XmlFormat {
    format_with(&[("row_tag", "shipment")]).unwrap()
}

fn infer(format: &XmlFormat, doc: &str) -> SchemaRef {
    Arc::new(format.infer_schema(doc.as_bytes(), true).unwrap())
}

/// Decoded rows (one string per row: `col=value` pairs) and rejections.
struct Output {
    rows: Vec<String>,
    rejected: Vec<Rejected>,
    batch_rows: Vec<usize>,
}

fn decode_chunks<'a>(
    format: &XmlFormat,
    schema: &SchemaRef,
    batch_size: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Output {
    let (batches, rejected) = run_decoder(format, schema, batch_size, chunks);
    Output {
        rows: batches.iter().flat_map(render).collect(),
        rejected,
        batch_rows: batches.iter().map(|b| b.num_rows()).collect(),
    }
}

fn decode(format: &XmlFormat, schema: &SchemaRef, doc: &str) -> Output {
    decode_chunks(format, schema, 1024, [doc.as_bytes()])
}

/// One batch's rows, each as `col=value` pairs joined by spaces.
fn render(batch: &RecordBatch) -> Vec<String> {
    let schema = batch.schema();
    display(std::slice::from_ref(batch))
        .into_iter()
        .map(|cells| {
            schema
                .fields()
                .iter()
                .zip(cells)
                .map(|(f, value)| format!("{}={value}", f.name()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn col(name: &str, t: DataType) -> (String, DataType) {
    (name.to_string(), t)
}

fn ts() -> DataType {
    TS
}

const GOOD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<shipments>
<shipment id="1"><order_id>17</order_id><carrier>DHL</carrier><tracking_no>DH123</tracking_no><shipped_at>2026-01-01T10:00:00Z</shipped_at><delivered_at></delivered_at><address><city>Lyon</city><country>FR</country></address></shipment>
<shipment id="2"><order_id>18</order_id><carrier>UPS</carrier><tracking_no>UP9</tracking_no><shipped_at>2026-01-02T11:30:00Z</shipped_at><delivered_at>2026-01-04T09:00:00Z</delivered_at><address><city>Köln</city><country>DE</country></address></shipment>
</shipments>
"#;

#[test]
fn infers_and_decodes_the_generated_layout() {
    let f = shipments();
    let schema = infer(&f, GOOD);
    assert_eq!(
        types(&schema),
        vec![
            col("id", DataType::Int64),
            col("order_id", DataType::Int64),
            col("carrier", DataType::Utf8),
            col("tracking_no", DataType::Utf8),
            col("shipped_at", ts()),
            col("delivered_at", ts()),
            col("address_city", DataType::Utf8),
            col("address_country", DataType::Utf8),
        ]
    );
    let out = decode(&f, &schema, GOOD);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        out.rows,
        vec![
            "id=1 order_id=17 carrier=DHL tracking_no=DH123 shipped_at=2026-01-01T10:00:00 delivered_at=∅ address_city=Lyon address_country=FR",
            "id=2 order_id=18 carrier=UPS tracking_no=UP9 shipped_at=2026-01-02T11:30:00 delivered_at=2026-01-04T09:00:00 address_city=Köln address_country=DE",
        ]
    );
}

#[test]
fn options_are_checked() {
    let err = format_with(&[]).unwrap_err();
    assert!(err.contains("row_tag"), "{err}");
    let err = format_with(&[("row_tag", "  ")]).unwrap_err();
    assert!(err.contains("row_tag"), "{err}");
    let err = format_with(&[("row_tag", "a b")]).unwrap_err();
    assert!(err.contains("not an XML element name"), "{err}");
    let err = format_with(&[("row_tag", "r"), ("rowTag", "r")]).unwrap_err();
    assert!(err.contains("rowTag"), "{err}");
    let f = format_with(&[("row_tag", "r"), ("nested_separator", ".")]).unwrap();
    assert_eq!((f.row_tag(), f.nested_separator()), ("r", "."));
    let schema = infer(&f, "<r><a><b>1</b></a></r>");
    assert_eq!(types(&schema), vec![col("a.b", DataType::Int64)]);
}

#[test]
fn attributes_nesting_empty_entities_cdata_and_repeats() {
    let f = format_with(&[("row_tag", "item")]).unwrap();
    let doc = r#"<?xml version="1.0"?>
<!DOCTYPE catalog>
<!-- a comment with <item>not a row</item> -->
<catalog xmlns:x="urn:x">
  <item sku="A-1" active="true">
    <name>Fish &amp; Chips &#233;&#x2713;</name>
    <x:note><![CDATA[<b>bold</b> & raw]]></x:note>
    <price currency="EUR"> 12.50 </price>
    <dims><w>2</w><h>3.5</h><unit/></dims>
    <tag>a</tag><tag>b "q"</tag><tag/>
    <empty></empty>
    <blank>   </blank>
    <since>2025-12-31</since>
  </item>
  <item sku="B-2" active="false"><name>Plain</name><price>7</price><tag>only</tag><since>2026-01-01T08:00:00</since></item>
  <item sku="C-3"/>
</catalog>"#;
    let schema = infer(&f, doc);
    assert_eq!(
        types(&schema),
        vec![
            col("sku", DataType::Utf8),
            col("active", DataType::Boolean),
            col("name", DataType::Utf8),
            col("note", DataType::Utf8),
            col("price_currency", DataType::Utf8),
            col("price", DataType::Float64),
            col("dims_w", DataType::Int64),
            col("dims_h", DataType::Float64),
            col("dims_unit", DataType::Null),
            col("tag", DataType::Utf8),
            col("empty", DataType::Null),
            col("blank", DataType::Null),
            col("since", ts()),
        ]
    );
    let out = decode(&f, &schema, doc);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        out.rows,
        vec![
            r#"sku=A-1 active=true name=Fish & Chips é✓ note=<b>bold</b> & raw price_currency=EUR price=12.5 dims_w=2 dims_h=3.5 dims_unit=∅ tag=["a","b \"q\"",null] empty=∅ blank=∅ since=2025-12-31T00:00:00"#,
            "sku=B-2 active=false name=Plain note=∅ price_currency=∅ price=7.0 dims_w=∅ dims_h=∅ dims_unit=∅ tag=only empty=∅ blank=∅ since=2026-01-01T08:00:00",
            "sku=C-3 active=∅ name=∅ note=∅ price_currency=∅ price=∅ dims_w=∅ dims_h=∅ dims_unit=∅ tag=∅ empty=∅ blank=∅ since=∅",
        ]
    );
}

#[test]
fn mixed_types_widen() {
    let f = format_with(&[("row_tag", "r")]).unwrap();
    let doc = "<d><r><a>1</a><b>1</b><c>true</c><d>2026-01-01</d><e>x</e></r>\
               <r><a>1.5</a><b>x</b><c>1</c><d>2026-01-01T00:00:01</d><e>1</e></r></d>";
    assert_eq!(
        types(&infer(&f, doc)),
        vec![
            col("a", DataType::Float64),
            col("b", DataType::Utf8),
            col("c", DataType::Utf8),
            col("d", ts()),
            col("e", DataType::Utf8),
        ]
    );
}

/// One broken element of each kind between good ones, one element per line as generated.
const BROKEN: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", // line 1
    "<shipments>\n",                                // 2
    "<shipment id=\"1\"><order_id>1</order_id><carrier>DHL</carrier></shipment>\n", // 3
    "<shipment id=\"2\"><order_id>2</order_id><carrier>DHL</shipment>\n", // 4 unclosed child
    "<shipment id=\"3\"><order_id>3</order_id><carrier>DHL</carier></shipment>\n", // 5 misspelt end
    "<shipment id=\"4\"><order_id>4</order_id><carrier>UP\n", // 6 truncated
    "<shipment id=\"5\"><order_id>5</order_id><carrier>UPS</carrier></shipment>\n", // 7
    "<shipment id=\"6\"><order_id>6</ord\n",        // 8 cut in end tag
    "<shipment id=\"7\"><order_id>7</order_id><carrier>UPS</carrier></shipment>\n", // 9
    "junk &amp; <b>stuff</b> < x <<>> </carrier>\n", // 10 garbage
    "<shipment id=\"8\"><order_id>8</order_id><carrier>a & b</carrier></shipment>\n", // 11 bad entity
    "<shipment id=\"9\"><order_id>9</order_id><carrier>GLS</carrier></shipment>\n",   // 12
    "<shipment id=\"10\" <shipment id=\"11\"><order_id>11</order_id></shipment>\n", // 13 cut start tag
    "<shipment id=\"12\"><order_id>12</order_id><carrier>X</carrier></shipment><shipment id=\"13\"><order_id>13</order_id><carrier>Y <z> </carrier></shipment>\n", // 14
    "<shipment id=\"14\"><order_id>14</order_id>\n", // 15 truncated by root end
    "</shipments>\n",
    "<shipment id=\"15\"><order_id>15</order_id><carrier>DP", // 17 truncated at EOF
);

fn check_broken(out: &Output) {
    let got: Vec<String> = out
        .rows
        .iter()
        .map(|r| r.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        got,
        ["1", "5", "7", "9", "11", "12"]
            .map(|id| format!("id={id} order_id={id}"))
            .to_vec(),
        "{:#?}",
        out.rejected
    );
    let expected: Vec<(u64, &str, &str)> = vec![
        (
            4,
            "<shipment id=\"2\"><order_id>2</order_id><carrier>DHL</shipment>",
            "mismatched end tag </shipment>, expected </carrier>",
        ),
        (
            5,
            "<shipment id=\"3\"><order_id>3</order_id><carrier>DHL</carier></shipment>",
            "mismatched end tag </carier>, expected </carrier>",
        ),
        (
            6,
            "<shipment id=\"4\"><order_id>4</order_id><carrier>UP",
            "truncated element: <carrier> not closed before the next <shipment>",
        ),
        (
            8,
            "<shipment id=\"6\"><order_id>6</ord",
            "truncated tag <ord: a '<' comes before its closing '>'",
        ),
        (
            11,
            "<shipment id=\"8\"><order_id>8</order_id><carrier>a & b</carrier></shipment>",
            "invalid XML: '&' that starts no entity reference (a literal '&' must be written &amp;)",
        ),
        (
            13,
            "<shipment id=\"10\"",
            "truncated tag <shipment: a '<' comes before its closing '>'",
        ),
        (
            14,
            "<shipment id=\"13\"><order_id>13</order_id><carrier>Y <z> </carrier></shipment>",
            "mismatched end tag </carrier>, expected </z>",
        ),
        (
            15,
            "<shipment id=\"14\"><order_id>14</order_id>",
            "truncated element: <shipment> not closed before </shipments>",
        ),
        (
            17,
            "<shipment id=\"15\"><order_id>15</order_id><carrier>DP",
            "truncated element: <carrier> not closed at end of file",
        ),
    ];
    assert_eq!(out.rejected.len(), expected.len(), "{:#?}", out.rejected);
    for (r, (line, raw, reason)) in out.rejected.iter().zip(expected) {
        assert_eq!(r.line, line, "{r:?}");
        let offset = BROKEN.find(raw).unwrap();
        assert_eq!(r.offset, offset as u64, "{r:?}");
        assert_eq!(BROKEN[..offset].matches('\n').count() as u64 + 1, line);
        assert_eq!(r.raw, raw, "{r:?}");
        assert!(r.reason.starts_with(reason), "{r:?}");
    }
}

#[test]
fn broken_elements_are_rejected_once_and_decoding_resynchronises() {
    let f = shipments();
    let schema = infer(&f, BROKEN);
    // Rejected rows do not vote: `carrier` stays Utf8, `order_id` Int64, nothing else appears.
    assert_eq!(
        types(&schema),
        vec![
            col("id", DataType::Int64),
            col("order_id", DataType::Int64),
            col("carrier", DataType::Utf8)
        ]
    );
    check_broken(&decode(&f, &schema, BROKEN));
}

#[test]
fn a_row_cut_inside_its_start_tag_is_one_rejection() {
    let f = shipments();
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let doc = "<shipments>\n<shipment id=\"1\"/>\n<\n<shipment id=\"2\"/>\n<ship\n\
               <shipment id=\"3\"/>\n<shipment\n<shipment id=\"4\"/>\n<shipment id=\"5\n\
               <shipment id=\"6\"/>\n<shipments>not a row</shipments>\n<";
    for chunk in [1, 3, doc.len()] {
        let out = decode_chunks(&f, &schema, 8, doc.as_bytes().chunks(chunk));
        assert_eq!(out.rows, ["id=1", "id=2", "id=3", "id=4", "id=6"]);
        let got: Vec<(u64, &str)> = out
            .rejected
            .iter()
            .map(|r| (r.line, r.raw.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (3, "<"),
                (5, "<ship"),
                (7, "<shipment"),
                (9, "<shipment id=\"5"),
                (12, "<")
            ]
        );
    }
}

#[test]
fn any_chunking_gives_the_same_result() {
    let f = shipments();
    let schema = infer(&f, BROKEN);
    let whole = decode(&f, &schema, BROKEN);
    let bytes = BROKEN.as_bytes();
    let one_by_one = decode_chunks(&f, &schema, 4, bytes.chunks(1));
    check_broken(&one_by_one);
    assert_eq!(one_by_one.rows, whole.rows);
    assert_eq!(one_by_one.rejected, whole.rejected);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..200 {
        let mut chunks = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len().min(40));
            let (a, b) = rest.split_at(n);
            chunks.push(a);
            rest = b;
        }
        let out = decode_chunks(&f, &schema, rng.random_range(1..5), chunks);
        assert_eq!(out.rows, whole.rows);
        assert_eq!(out.rejected, whole.rejected);
    }
}

#[test]
fn every_split_point_of_a_small_document() {
    let f = format_with(&[("row_tag", "item")]).unwrap();
    let doc = "<?xml version='1.0'?><!-- c --><list><item a='x&gt;y'><n>é&amp;<![CDATA[]]>></n><m><k>1</k></m></item>\n\
               <item a=\"2\"><n>ü</n><n/></item><item/><item><n>cut</n>";
    let schema = infer(&f, doc);
    let whole = decode(&f, &schema, doc);
    assert_eq!(whole.rows.len(), 3);
    assert_eq!(whole.rejected.len(), 1);
    for i in 0..=doc.len() {
        for j in i..=doc.len() {
            let (a, rest) = doc.as_bytes().split_at(i);
            let (b, c) = rest.split_at(j - i);
            let out = decode_chunks(&f, &schema, 2, [a, b, c]);
            assert_eq!(out.rows, whole.rows, "split at {i}, {j}");
            assert_eq!(out.rejected, whole.rejected, "split at {i}, {j}");
        }
    }
}

#[test]
fn a_value_that_does_not_fit_rejects_its_row() {
    let f = shipments();
    let sample = "<shipments><shipment><order_id>1</order_id><ok>true</ok></shipment>";
    let schema = infer(&f, sample);
    assert_eq!(
        types(&schema),
        vec![
            col("order_id", DataType::Int64),
            col("ok", DataType::Boolean)
        ]
    );
    let doc = "<shipments>\n<shipment><order_id>1</order_id><ok>true</ok></shipment>\n\
               <shipment><order_id>abc</order_id></shipment>\n\
               <shipment><order_id>2</order_id><ok>maybe</ok></shipment>\n\
               <shipment><order_id>3</order_id><order_id>4</order_id></shipment>\n\
               <shipment><order_id>5</order_id><ok>FALSE</ok></shipment>\n</shipments>";
    let out = decode(&f, &schema, doc);
    assert_eq!(out.rows, vec!["order_id=1 ok=true", "order_id=5 ok=false"]);
    let reasons = reasons(&out.rejected);
    assert_eq!(
        reasons,
        vec![
            (3, r#"value "abc" in column order_id is not an Int64"#),
            (4, r#"value "maybe" in column ok is not a Boolean"#),
            (
                5,
                r#"value "[\"3\",\"4\"]" in column order_id is not an Int64"#
            ),
        ]
    );
    assert_eq!(
        out.rejected[0].raw,
        "<shipment><order_id>abc</order_id></shipment>"
    );
}

#[test]
fn batches_fill_as_rows_arrive() {
    let f = format_with(&[("row_tag", "r")]).unwrap();
    let doc: String = (0..10).map(|i| format!("<r><i>{i}</i></r>\n")).collect();
    let schema = infer(&f, &doc);
    let mut decoder = f.decoder(schema.clone(), 3);
    let d = decoder.push(doc.as_bytes()).unwrap();
    assert_eq!(
        d.batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        vec![3, 3, 3]
    );
    let d = decoder.finish().unwrap();
    assert_eq!(
        d.batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        vec![1]
    );
    let out = decode_chunks(&f, &schema, 4, doc.as_bytes().chunks(7));
    assert_eq!(out.batch_rows, vec![4, 4, 2]);
    assert_eq!(out.rows.len(), 10);
}

#[test]
fn inference_on_a_cut_prefix_ignores_the_partial_element() {
    let f = shipments();
    let doc = "<shipments><shipment><a>1</a></shipment><shipment><a>2</a><b>x</b></shipment><shipment><a>oops</a><c>1";
    let cut = f.infer_schema(doc.as_bytes(), false).unwrap();
    assert_eq!(
        types(&cut),
        vec![col("a", DataType::Int64), col("b", DataType::Utf8)]
    );
    // Cut inside a start tag, and right after a complete row.
    let cut = f
        .infer_schema(&doc.as_bytes()[..doc.find("<c>").unwrap() + 2], false)
        .unwrap();
    assert_eq!(
        types(&cut),
        vec![col("a", DataType::Int64), col("b", DataType::Utf8)]
    );
    let cut = f
        .infer_schema(
            &doc.as_bytes()[..doc.find("<shipment><a>oops").unwrap() + 4],
            false,
        )
        .unwrap();
    assert_eq!(
        types(&cut),
        vec![col("a", DataType::Int64), col("b", DataType::Utf8)]
    );
    // Complete: the truncated element is rejected, so it does not vote either.
    let complete = f.infer_schema(doc.as_bytes(), true).unwrap();
    assert_eq!(
        types(&complete),
        vec![col("a", DataType::Int64), col("b", DataType::Utf8)]
    );
    // Nothing to see.
    assert!(
        f.infer_schema(b"<?xml version='1.0'?><shipments/>", true)
            .unwrap()
            .fields()
            .is_empty()
    );
}

#[test]
fn decodes_into_a_wider_table_schema() {
    let f = shipments();
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("extra", DataType::Int64, true),
        Field::new("order_id", DataType::Utf8, true),
        Field::new("id", DataType::Float64, true),
        Field::new("shipped_at", ts(), true),
        Field::new("day", ts(), true),
        Field::new("gone", DataType::Null, true),
        Field::new("flag", DataType::Utf8, true),
        Field::new(
            "ns",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
            true,
        ),
        Field::new("view", DataType::Utf8View, true),
    ]));
    let doc = "<shipments><shipment id=\"7\"><order_id>0017</order_id><unknown>zzz</unknown>\
               <shipped_at>2026-01-01T12:00:00+02:00</shipped_at><day>2026-03-01</day><gone/><flag>true</flag>\
               <ns>2026-01-01T00:00:00.123456Z</ns><view>v</view></shipment></shipments>";
    let out = decode(&f, &schema, doc);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(
        out.rows,
        vec![
            "extra=∅ order_id=0017 id=7.0 shipped_at=2026-01-01T10:00:00 day=2026-03-01T00:00:00 gone=∅ flag=true ns=2026-01-01T00:00:00.123456Z view=v"
        ]
    );
    // A value in a column that was empty in the sample does not fit it.
    let out = decode(&f, &schema, "<shipment><gone>x</gone></shipment>");
    assert_eq!(out.rejected.len(), 1);
    assert!(
        out.rejected[0]
            .reason
            .starts_with(r#"value "x" in column gone is not a Null"#)
    );
}

#[test]
fn a_missing_value_for_a_non_nullable_column_rejects_its_row() {
    let f = shipments();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "carrier",
        DataType::Utf8,
        false,
    )]));
    let doc = "<shipment><carrier>DHL</carrier></shipment>\n<shipment><carrier/></shipment>";
    let out = decode(&f, &schema, doc);
    assert_eq!(out.rows, vec!["carrier=DHL"]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!((out.rejected[0].line, out.rejected[0].offset), (2, 44));
    assert_eq!(
        out.rejected[0].reason,
        "no value for column carrier, which is not nullable"
    );
}

#[test]
fn a_schema_without_columns_counts_rows() {
    let f = shipments();
    let out = decode(&f, &Arc::new(Schema::empty()), GOOD);
    assert_eq!(out.batch_rows, vec![2]);
}

#[test]
fn unsupported_column_types_are_an_error() {
    let f = shipments();
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
    assert!(f.decoder(schema, 8).push(GOOD.as_bytes()).is_err());
}

#[test]
fn rejected_raw_text_is_capped() {
    let f = shipments();
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
    let big = "é".repeat(MAX_REJECTED_RAW);
    let doc = format!("<r><shipment><a>{big}</b></shipment>\n<shipment><a>ok</a></shipment></r>");
    let out = decode_chunks(&f, &schema, 8, doc.as_bytes().chunks(1000));
    assert_eq!(out.rows, vec!["a=ok"]);
    assert_eq!(out.rejected.len(), 1);
    let raw = &out.rejected[0].raw;
    assert!(
        raw.len() <= MAX_REJECTED_RAW && raw.starts_with("<shipment><a>éé"),
        "{}",
        raw.len()
    );
}

/// Linear in the input, whatever the chunking: a large element pushed byte by byte, and many
/// elements in one chunk.
#[test]
fn large_inputs_stay_linear() {
    let f = format_with(&[("row_tag", "r")]).unwrap();
    let text = "x".repeat(300_000);
    let doc = format!(
        "<d><r><a>{text}</a><b><![CDATA[{text}]]></b><!-- {text} --></r><r><a>1</a></r></d>"
    );
    let schema = infer(&f, &doc);
    let out = decode_chunks(&f, &schema, 8, doc.as_bytes().chunks(1));
    assert_eq!(out.rows.len(), 2);

    let n = 50_000;
    let doc: String = std::iter::once("<d>\n".to_string())
        .chain((0..n).map(|i| {
            if i % 100 == 7 {
                format!("<r id=\"{i}\"><a>{i}</a><b>broken</c></r>\n")
            } else {
                format!("<r id=\"{i}\"><a>{i}</a><b>text {i}</b><c><d>{i}.5</d></c></r>\n")
            }
        }))
        .chain(std::iter::once("</d>\n".to_string()))
        .collect();
    let schema = infer(&f, &doc);
    let out = decode_chunks(&f, &schema, 8192, [doc.as_bytes()]);
    assert_eq!(out.rows.len(), n - n / 100);
    assert_eq!(out.rejected.len(), n / 100);
    assert_eq!(out.rejected[0].line, 9);
    assert_eq!(out.rejected.last().unwrap().line, (n - 100 + 7 + 2) as u64);
}
