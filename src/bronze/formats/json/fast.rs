//! The common record, read with jiter instead of serde_json: about twice as fast on the
//! clickstream, whose decoding is most of a build's largest model. This path only ever
//! accepts: any record it cannot read exactly as serde_json would (a syntax error, NaN, a
//! nesting depth near serde_json's limit, a nested value whose text needs rewriting) makes it
//! give up, and the caller reads the record with serde_json, whose errors the rejections quote.

use std::borrow::Cow;

use jiter::{Jiter, Peek};
use serde::de::Deserializer as _;

use super::value::{Columns, CompactVisitor, JVal, format_f64};

/// Nesting beyond this is left to serde_json, which rejects records nested 128 deep.
const MAX_DEPTH: usize = 100;

/// The wanted members of one record (UTF-8 already checked), as (column, value); `None` when
/// serde_json must decide.
pub(super) fn record<'de>(
    text: &'de str,
    columns: &mut Columns,
    out: &mut Vec<(usize, JVal<'de>)>,
) -> Option<()> {
    let mut jiter = Jiter::new(text.as_bytes());
    if jiter.peek().ok()? != Peek::Object {
        return None;
    }
    let mut key = jiter.known_object().ok()?;
    let mut position = 0;
    while let Some(name) = key {
        match columns.lookup(position, name) {
            Some(column) => out.push((column, value(text, &mut jiter)?)),
            None => skip(text, &mut jiter)?,
        }
        position += 1;
        key = jiter.next_key().ok()?;
    }
    jiter.finish().ok()
}

/// Skips a member nobody reads, still refusing the depth serde_json would reject.
fn skip(text: &str, jiter: &mut Jiter<'_>) -> Option<()> {
    let peek = jiter.peek().ok()?;
    let start = jiter.current_index();
    jiter.known_skip(peek).ok()?;
    let nested = peek == Peek::Array || peek == Peek::Object;
    (!nested || depth(&text[start..jiter.current_index()]) <= MAX_DEPTH).then_some(())
}

fn value<'de>(text: &'de str, jiter: &mut Jiter<'de>) -> Option<JVal<'de>> {
    let peek = jiter.peek().ok()?;
    Some(match peek {
        Peek::Null => {
            jiter.known_null().ok()?;
            JVal::Null
        }
        Peek::True | Peek::False => JVal::Bool(jiter.known_bool(peek).ok()?),
        Peek::String => {
            let s = jiter.known_str().ok()?;
            JVal::Str(within(text, s).map_or_else(|| Cow::Owned(s.to_owned()), Cow::Borrowed))
        }
        Peek::Array | Peek::Object => {
            let start = jiter.current_index();
            jiter.known_skip(peek).ok()?;
            JVal::Nested(compact(&text[start..jiter.current_index()])?)
        }
        _ if peek.is_num() => {
            number(std::str::from_utf8(jiter.known_number_bytes(peek).ok()?).ok()?)?
        }
        _ => return None,
    })
}

/// `s` as a slice of `text` when jiter returned it from the input (no escapes to decode).
fn within<'de>(text: &'de str, s: &str) -> Option<&'de str> {
    let offset = (s.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    text.get(offset..offset.checked_add(s.len())?)
        .filter(|t| t.as_ptr() == s.as_ptr())
}

/// A JSON number as serde_json reads it: an integer that fits i64 (else u64), else a double;
/// `-0` is a double, as in serde_json.
fn number<'de>(s: &str) -> Option<JVal<'de>> {
    if !s.contains(['.', 'e', 'E']) {
        if let Ok(i) = s.parse::<i64>()
            && !(i == 0 && s.starts_with('-'))
        {
            return Some(JVal::I64(i));
        }
        if let Ok(u) = s.parse::<u64>() {
            return Some(JVal::U64(u));
        }
    }
    serde_json::from_str::<f64>(s).ok().map(JVal::F64)
}

/// A nested value's compact JSON text, as the serde_json path writes it: its raw text when
/// that is already compact, without insignificant whitespace when only that differs, and
/// rebuilt by serde_json when a string holds an escape or a number is not spelled the way
/// serde_json prints it.
fn compact(raw: &str) -> Option<Cow<'_, str>> {
    match compact_raw(raw) {
        Some(text) => Some(text),
        None => {
            let mut out = String::with_capacity(raw.len());
            let mut de = serde_json::Deserializer::from_str(raw);
            (&mut de).deserialize_any(CompactVisitor(&mut out)).ok()?;
            (depth(raw) <= MAX_DEPTH).then_some(Cow::Owned(out))
        }
    }
}

/// The raw text made compact by dropping whitespace between tokens; `None` if more must change.
fn compact_raw(raw: &str) -> Option<Cow<'_, str>> {
    let bytes = raw.as_bytes();
    let mut out: Option<String> = None;
    let mut kept_from = 0;
    let mut depth = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let rest = &bytes[i + 1..];
                let end = memchr::memchr2(b'"', b'\\', rest)?;
                if rest[end] == b'\\' {
                    return None;
                }
                i += end + 2;
                continue;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                let kept = out.get_or_insert_with(|| String::with_capacity(raw.len()));
                kept.push_str(&raw[kept_from..i]);
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
                    i += 1;
                }
                kept_from = i;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return None;
                }
            }
            b'-' | b'0'..=b'9' => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .map_or(bytes.len(), |n| i + n);
                if !printed_as_is(&raw[i..end]) {
                    return None;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Some(match out {
        None => Cow::Borrowed(raw),
        Some(mut kept) => {
            kept.push_str(&raw[kept_from..]);
            Cow::Owned(kept)
        }
    })
}

/// Whether serde_json prints the number it reads from `token` as `token` again.
fn printed_as_is(token: &str) -> bool {
    match number(token) {
        Some(JVal::I64(i)) => itoa::Buffer::new().format(i) == token,
        Some(JVal::U64(u)) => itoa::Buffer::new().format(u) == token,
        Some(JVal::F64(f)) => format_f64(f) == token,
        _ => false,
    }
}

/// The deepest nesting of brackets outside strings.
fn depth(raw: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for b in raw.bytes() {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::value::parse_record_with_serde;
    use super::*;

    fn columns(names: &[&str]) -> Columns {
        Columns::new(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn fast<'de>(text: &'de str, names: &[&str]) -> Option<Vec<(usize, JVal<'de>)>> {
        let mut out = Vec::new();
        record(text, &mut columns(names), &mut out).map(|()| out)
    }

    /// The fast path, where it answers, answers as serde_json does.
    #[test]
    fn agrees_with_serde_json() {
        let names = ["a", "b", "c", "d"];
        for text in [
            r#"{"a": 1, "b": "x", "c": null, "d": true}"#,
            r#"{"d": false, "zz": {"deep": [1, {"x": "y"}]}, "a": -5}"#,
            r#"{"a": 18446744073709551615, "b": 99999999999999999999999, "c": -0, "d": 2.50}"#,
            r#"{"a": 1e2, "b": -1.25E-3, "c": 0.1, "d": 12345678901234567890}"#,
            r#"{"a": "t\u00e9\n\"q\"", "b": "plain é", "c": "\ud83d\ude00"}"#,
            r#"{"a": {"y": [1, 2.5, "x\"y"], "b": null, "c": {}}, "b": [], "c": {"k":"v"}}"#,
            r#"{"a": {"n": 1.50, "m": 1e2, "s": "a b"}, "b": [ 1 , 2 ], "c": {"u":"\u0041"}}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"  {"b": "x"}  "#,
        ] {
            let mut expected = Vec::new();
            parse_record_with_serde(text.as_bytes(), &mut columns(&names), &mut expected).unwrap();
            assert_eq!(fast(text, &names).as_ref(), Some(&expected), "{text}");
        }
    }

    #[test]
    fn borrows_what_needs_no_decoding() {
        let v = fast(r#"{"a": "plain", "b": {"k": [1, "v w"]}}"#, &["a", "b"]).unwrap();
        assert!(matches!(v[0].1, JVal::Str(Cow::Borrowed("plain"))));
        // Whitespace between tokens is dropped, so that text is a copy.
        assert!(matches!(&v[1].1, JVal::Nested(Cow::Owned(s)) if s == r#"{"k":[1,"v w"]}"#));
        let v = fast(r#"{"b":{"k":[1,"v w"]}}"#, &["b"]).unwrap();
        assert!(matches!(
            v[0].1,
            JVal::Nested(Cow::Borrowed(r#"{"k":[1,"v w"]}"#))
        ));
    }

    #[test]
    fn leaves_what_serde_json_rejects_to_it() {
        let names = ["a"];
        let deep = format!("{{\"a\": {}1{}}}", "[".repeat(130), "]".repeat(130));
        let skipped = format!("{{\"z\": {}1{}}}", "[".repeat(130), "]".repeat(130));
        for text in [
            r#"{"a": 1"#,
            r#"{"a": 01}"#,
            r#"{"a": NaN}"#,
            r#"{"a": 1} x"#,
            r#"[1, 2]"#,
            r#"{"a": "\ud800"}"#,
            "{\"a\": \"tab\there\"}",
            deep.as_str(),
            skipped.as_str(),
        ] {
            assert_eq!(fast(text, &names), None, "{text}");
        }
    }

    #[test]
    fn remembers_key_positions() {
        let mut cols = columns(&["a", "b"]);
        let mut out = Vec::new();
        record(r#"{"b": 1, "x": 2, "a": 3}"#, &mut cols, &mut out).unwrap();
        out.clear();
        record(r#"{"a": 1, "x": 2, "b": 3}"#, &mut cols, &mut out).unwrap();
        assert_eq!(out, vec![(0, JVal::I64(1)), (1, JVal::I64(3))]);
    }
}
