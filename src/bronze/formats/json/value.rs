//! One JSON record (a top-level object) parsed with serde_json into borrowed scalars, without
//! building a `serde_json::Value` tree: keys keep their order, strings without escapes borrow
//! the input, keys the schema does not want are skipped unparsed-into-memory, and nested
//! objects/arrays become their compact JSON text (members in their original order).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON value of a record's member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JVal<'de> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'de, str>),
    /// An object or array, as compact JSON text.
    Nested(Cow<'de, str>),
}

impl JVal<'_> {
    /// The value as JSON text (for messages and for numbers/booleans read into text columns).
    pub(crate) fn to_json_text(&self) -> String {
        match self {
            JVal::Null => "null".into(),
            JVal::Bool(b) => b.to_string(),
            JVal::I64(v) => itoa::Buffer::new().format(*v).to_string(),
            JVal::U64(v) => itoa::Buffer::new().format(*v).to_string(),
            JVal::F64(v) => format_f64(*v),
            JVal::Str(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                write_json_string(&mut out, s);
                out
            }
            JVal::Nested(s) => s.to_string(),
        }
    }
}

pub(super) fn format_f64(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| "null".into(), |n| n.to_string())
}

/// The columns a decoder fills, by member key. Records of one feed mostly list their keys in
/// the same order, so each member position remembers the key it saw last and what it named:
/// a string compare instead of a hash per member.
pub(crate) struct Columns {
    index: HashMap<String, usize>,
    last: Vec<(Box<str>, Option<usize>)>,
}

impl Columns {
    pub(crate) fn new(index: HashMap<String, usize>) -> Self {
        Columns {
            index,
            last: Vec::new(),
        }
    }

    /// The column named by the `position`th member's `key`, if the decoder wants it.
    pub(crate) fn lookup(&mut self, position: usize, key: &str) -> Option<usize> {
        if let Some((seen, column)) = self.last.get(position)
            && **seen == *key
        {
            return *column;
        }
        let column = self.index.get(key).copied();
        let entry = (Box::from(key), column);
        // Positions fill in order; a record longer than any before adds the next one.
        if position < self.last.len() {
            self.last[position] = entry;
        } else if position == self.last.len() {
            self.last.push(entry);
        }
        column
    }
}

/// Parses one record into `out` (empty), keeping only the members whose key is in `columns`,
/// as (column, value). A repeated key appears twice (the caller lets the last one win).
pub(crate) fn parse_record<'de>(
    bytes: &'de [u8],
    columns: &mut Columns,
    out: &mut Vec<(usize, JVal<'de>)>,
) -> Result<(), serde_json::Error> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if super::fast::record(text, columns, out).is_some() {
            return Ok(());
        }
        out.clear();
    }
    parse_record_with_serde(bytes, columns, out)
}

/// [`parse_record`] by serde_json alone: the reference the fast path agrees with, and the
/// reader of every record that path leaves (its errors are the ones rejections quote).
pub(super) fn parse_record_with_serde<'de>(
    bytes: &'de [u8],
    columns: &mut Columns,
    out: &mut Vec<(usize, JVal<'de>)>,
) -> Result<(), serde_json::Error> {
    visit_record(
        bytes,
        RecordVisitor {
            columns: Some(columns),
            keyed: out,
            named: &mut Vec::new(),
        },
    )
}

/// Parses one record keeping every member, in order, as (key, value).
pub(crate) fn parse_record_named(
    bytes: &[u8],
) -> Result<Vec<(Cow<'_, str>, JVal<'_>)>, serde_json::Error> {
    let mut out = Vec::new();
    visit_record(
        bytes,
        RecordVisitor {
            columns: None,
            keyed: &mut Vec::new(),
            named: &mut out,
        },
    )?;
    Ok(out)
}

/// Runs `visitor` over the one JSON value in `bytes`. A record that is valid UTF-8 as a whole
/// (checked once, quickly) is read as `str`, sparing serde_json a check per string: a quarter
/// off a scan of the clickstream. Any other goes through the byte reader, whose errors say
/// where the bad bytes are.
fn visit_record<'de>(bytes: &'de [u8], visitor: RecordVisitor<'_, 'de>) -> serde_json::Result<()> {
    fn visit<'de, R: serde_json::de::Read<'de>>(
        mut de: serde_json::Deserializer<R>,
        visitor: RecordVisitor<'_, 'de>,
    ) -> serde_json::Result<()> {
        (&mut de).deserialize_any(visitor)?;
        de.end()
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => visit(serde_json::Deserializer::from_str(text), visitor),
        Err(_) => visit(serde_json::Deserializer::from_slice(bytes), visitor),
    }
}

struct RecordVisitor<'a, 'de> {
    columns: Option<&'a mut Columns>,
    keyed: &'a mut Vec<(usize, JVal<'de>)>,
    named: &'a mut Vec<(Cow<'de, str>, JVal<'de>)>,
}

impl<'de> Visitor<'de> for RecordVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut position = 0;
        let mut columns = self.columns;
        while let Some(key) = map.next_key_seed(StrSeed)? {
            position += 1;
            match columns.as_deref_mut() {
                Some(columns) => match columns.lookup(position - 1, &key) {
                    Some(idx) => self.keyed.push((idx, map.next_value_seed(ValSeed)?)),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                None => {
                    let v = map.next_value_seed(ValSeed)?;
                    self.named.push((key, v));
                }
            }
        }
        Ok(())
    }
}

/// A string, borrowed from the input when it has no escapes.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any member value.
struct ValSeed;

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = JVal<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = JVal<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JVal::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(JVal::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(JVal::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(JVal::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => JVal::I64(v),
            Err(_) => JVal::U64(v),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(JVal::F64(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JVal::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JVal::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(JVal::Str(Cow::Owned(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut out = String::new();
        CompactVisitor(&mut out).visit_map(map)?;
        Ok(JVal::Nested(Cow::Owned(out)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let mut out = String::new();
        CompactVisitor(&mut out).visit_seq(seq)?;
        Ok(JVal::Nested(Cow::Owned(out)))
    }
}

/// Writes the value it deserializes as compact JSON.
struct CompactSeed<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for CompactSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(CompactVisitor(self.0))
    }
}

/// Writes the value it visits as compact JSON.
pub(super) struct CompactVisitor<'a>(pub(super) &'a mut String);

impl<'de> Visitor<'de> for CompactVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push_str("null");
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push_str(&format_f64(v));
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write_json_string(self.0, v);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push('{');
        let mut first = true;
        while let Some(key) = map.next_key_seed(StrSeed)? {
            if !first {
                self.0.push(',');
            }
            first = false;
            write_json_string(self.0, &key);
            self.0.push(':');
            map.next_value_seed(CompactSeed(self.0))?;
        }
        self.0.push('}');
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push('[');
        let mut first = true;
        loop {
            if !first {
                // Written before knowing whether an element follows; undone below if not.
                self.0.push(',');
            }
            if seq.next_element_seed(CompactSeed(self.0))?.is_none() {
                if !first {
                    self.0.pop();
                }
                break;
            }
            first = false;
        }
        self.0.push(']');
        Ok(())
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut last = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[last..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        last = i + c.len_utf8();
    }
    out.push_str(&s[last..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'de>(
        bytes: &'de [u8],
        columns: &mut Columns,
    ) -> Result<Vec<(usize, JVal<'de>)>, serde_json::Error> {
        let mut out = Vec::new();
        parse_record(bytes, columns, &mut out).map(|()| out)
    }

    #[test]
    fn parses_in_order_with_nested_text() {
        let rec = br#"{"z": 1, "a": {"y": [1, 2.5, "x\"y"], "b": null, "c": {}}, "s": "t\u00e9", "e": []}"#;
        let v = parse_record_named(rec).unwrap();
        let keys: Vec<&str> = v.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["z", "a", "s", "e"]);
        assert_eq!(v[0].1, JVal::I64(1));
        assert_eq!(
            v[1].1,
            JVal::Nested(r#"{"y":[1,2.5,"x\"y"],"b":null,"c":{}}"#.into())
        );
        assert_eq!(v[2].1, JVal::Str(Cow::Borrowed("té")).clone());
        assert_eq!(v[3].1, JVal::Nested("[]".into()));
    }

    #[test]
    fn keeps_wanted_columns() {
        let mut cols = Columns::new([("b".to_string(), 0)].into());
        let v = parse(br#"{"a": {"deep": [1]}, "b": "x", "c": 3}"#, &mut cols).unwrap();
        assert_eq!(v, vec![(0, JVal::Str(Cow::Borrowed("x")))]);
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        let cols = &mut Columns::new(HashMap::new());
        assert!(parse(b"[1, 2]", cols).is_err());
        assert!(parse(b"42", cols).is_err());
        assert!(parse(br#"{"a": 1"#, cols).unwrap_err().is_eof());
        assert!(parse(br#"{"a": 1} x"#, cols).is_err());
        assert!(parse(b"garbage", cols).is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error_that_says_where() {
        let cols = &mut Columns::new([("b".to_string(), 0)].into());
        let e = parse(b"{\"a\": \"ok\", \"b\": \"x\xff\"}", cols).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid unicode code point at line 1 column 20"
        );
        // Outside strings the bytes are a syntax error, as before.
        assert!(parse(b"{\"a\": 1, \xff}", cols).is_err());
    }

    #[test]
    fn escapes_strings() {
        let mut s = String::new();
        write_json_string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }
}
