//! Writing values into a record buffer: numbers without allocation, and CSV, JSON and XML
//! with the quoting and escaping each needs.

use crate::generate::calendar::{TsStyle, push_ts};

/// Appends an integer.
pub(in crate::generate) fn push_int(buf: &mut Vec<u8>, value: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
pub(in crate::generate) fn push_padded(buf: &mut Vec<u8>, value: u64, width: u32) {
    let mut divisor = 10_u64.pow(width - 1);
    while divisor > 0 {
        buf.push(b'0' + (value / divisor % 10) as u8);
        divisor /= 10;
    }
}

/// Appends a fixed-point number: `push_fixed(buf, -12345, 2)` writes `-123.45`.
pub(in crate::generate) fn push_fixed(buf: &mut Vec<u8>, scaled: i64, decimals: u32) {
    let unit = 10_u64.pow(decimals);
    if scaled < 0 {
        buf.push(b'-');
    }
    let magnitude = scaled.unsigned_abs();
    push_int(buf, magnitude / unit);
    buf.push(b'.');
    push_padded(buf, magnitude % unit, decimals);
}

/// Appends cents as a US-style currency string: `-$1,234.50`.
pub(in crate::generate) fn push_currency(buf: &mut Vec<u8>, cents: i64) {
    if cents < 0 {
        buf.push(b'-');
    }
    buf.push(b'$');
    let magnitude = cents.unsigned_abs();
    let mut dollars = itoa::Buffer::new();
    let dollars = dollars.format(magnitude / 100).as_bytes();
    for (i, digit) in dollars.iter().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            buf.push(b',');
        }
        buf.push(*digit);
    }
    buf.push(b'.');
    push_padded(buf, magnitude % 100, 2);
}

/// One CSV record being appended to a buffer. Each field is written raw, then quoted in place
/// only if it holds a comma, quote or line break (RFC 4180), so the common case copies once.
pub(in crate::generate) struct CsvRecord<'a> {
    buf: &'a mut Vec<u8>,
    fields: usize,
}

impl<'a> CsvRecord<'a> {
    pub(in crate::generate) fn new(buf: &'a mut Vec<u8>) -> Self {
        CsvRecord { buf, fields: 0 }
    }

    /// A field whose bytes `write` appends.
    pub(in crate::generate) fn field(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        let start = self.buf.len() + usize::from(self.fields > 0);
        self.plain(write);
        if self.buf[start..]
            .iter()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            let raw = self.buf.split_off(start);
            self.buf.push(b'"');
            for &b in &raw {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        }
        self
    }

    /// A field whose bytes `write` appends, which the caller knows need no quoting (numbers,
    /// timestamps, ids): skips the scan `field` makes.
    pub(in crate::generate) fn plain(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        if self.fields > 0 {
            self.buf.push(b',');
        }
        self.fields += 1;
        write(self.buf);
        self
    }

    /// A [`CsvRecord::plain`] field, or nothing when `present` is false (a null).
    pub(in crate::generate) fn plain_if(
        &mut self,
        present: bool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> &mut Self {
        self.plain(|buf| {
            if present {
                write(buf)
            }
        })
    }

    pub(in crate::generate) fn text(&mut self, value: &str) -> &mut Self {
        self.field(|buf| buf.extend_from_slice(value.as_bytes()))
    }

    pub(in crate::generate) fn int(&mut self, value: impl itoa::Integer) -> &mut Self {
        self.plain(|buf| push_int(buf, value))
    }
}

/// One JSON object being appended to a buffer.
pub(in crate::generate) struct JsonObject<'a> {
    buf: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    /// Opens an object; [`JsonObject::close`] ends it.
    pub(in crate::generate) fn open(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        JsonObject { buf, empty: true }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.buf
    }

    /// A member whose JSON value `write` appends (a number, `null`, ...).
    pub(in crate::generate) fn raw(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        write(self.key(key));
    }

    /// A string member; `value` is escaped.
    pub(in crate::generate) fn text(&mut self, key: &str, value: &str) {
        self.text_parts(key, &[value]);
    }

    /// A string member made of `parts` in a row; they are escaped.
    pub(in crate::generate) fn text_parts(&mut self, key: &str, parts: &[&str]) {
        let buf = self.key(key);
        buf.push(b'"');
        for part in parts {
            push_json_escaped(buf, part);
        }
        buf.push(b'"');
    }

    /// A timestamp member: epoch styles are numbers, the others strings.
    pub(in crate::generate) fn timestamp(&mut self, key: &str, ms: i64, style: TsStyle) {
        if style.is_number() {
            self.raw(key, |b| push_ts(b, ms, style));
        } else {
            self.plain_string(key, |b| push_ts(b, ms, style));
        }
    }

    /// An amount member: a number, or a currency string such as `"$1,234.50"`.
    pub(in crate::generate) fn amount(&mut self, key: &str, cents: i64, as_currency: bool) {
        if as_currency {
            self.plain_string(key, |b| push_currency(b, cents));
        } else {
            self.raw(key, |b| push_fixed(b, cents, 2));
        }
    }

    /// A string member whose characters `write` appends; they must need no escaping
    /// (timestamps, currency strings, ids).
    pub(in crate::generate) fn plain_string(
        &mut self,
        key: &str,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let buf = self.key(key);
        buf.push(b'"');
        write(buf);
        buf.push(b'"');
    }

    pub(in crate::generate) fn int(&mut self, key: &str, value: impl itoa::Integer) {
        push_int(self.key(key), value);
    }

    pub(in crate::generate) fn null(&mut self, key: &str) {
        self.key(key).extend_from_slice(b"null");
    }

    /// A nested object member filled by `fill`.
    pub(in crate::generate) fn object(&mut self, key: &str, fill: impl FnOnce(&mut JsonObject)) {
        let mut inner = JsonObject::open(self.key(key));
        fill(&mut inner);
        inner.close();
    }

    pub(in crate::generate) fn close(self) {
        self.buf.push(b'}');
    }
}

/// Appends `value` escaped for the inside of a JSON string.
fn push_json_escaped(buf: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
            }
            _ => buf.push(b),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `value` in lowercase hex, `digits` wide.
pub(in crate::generate) fn push_hex(buf: &mut Vec<u8>, value: u128, digits: u32) {
    for i in (0..digits).rev() {
        buf.push(HEX[((value >> (4 * i)) & 0xf) as usize]);
    }
}

/// Appends `<name>…</name>` with content from `write`.
pub(in crate::generate) fn xml_element(
    buf: &mut Vec<u8>,
    name: &str,
    write: impl FnOnce(&mut Vec<u8>),
) {
    buf.push(b'<');
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'>');
    write(buf);
    buf.extend_from_slice(b"</");
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'>');
}

/// Appends `value` escaped for XML text and attribute values.
pub(in crate::generate) fn push_xml_text(buf: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'&' => buf.extend_from_slice(b"&amp;"),
            b'<' => buf.extend_from_slice(b"&lt;"),
            b'>' => buf.extend_from_slice(b"&gt;"),
            b'"' => buf.extend_from_slice(b"&quot;"),
            _ => buf.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        write(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn numbers() {
        assert_eq!(written(|b| push_fixed(b, 123_450, 2)), "1234.50");
        assert_eq!(written(|b| push_fixed(b, -5, 2)), "-0.05");
        assert_eq!(written(|b| push_fixed(b, 1_250, 3)), "1.250");
        assert_eq!(written(|b| push_currency(b, 123_450)), "$1,234.50");
        assert_eq!(written(|b| push_currency(b, 123_456_789)), "$1,234,567.89");
        assert_eq!(written(|b| push_currency(b, -99)), "-$0.99");
        assert_eq!(written(|b| push_hex(b, 0xab, 4)), "00ab");
    }

    #[test]
    fn quoting() {
        let csv = written(|b| {
            CsvRecord::new(b)
                .int(7)
                .text("Washington, D.C.")
                .text("Robert \"Bob\"")
                .plain_if(false, |_| unreachable!())
                .text(" Shipped");
        });
        assert_eq!(
            csv,
            "7,\"Washington, D.C.\",\"Robert \"\"Bob\"\"\",, Shipped"
        );
        let json = written(|b| {
            let mut o = JsonObject::open(b);
            o.text("q", "12\" \\ \u{1}");
            o.object("p", |p| p.int("n", 1));
            o.null("z");
            o.close();
        });
        assert_eq!(json, r#"{"q":"12\" \\ \u0001","p":{"n":1},"z":null}"#);
        assert_eq!(
            written(|b| push_xml_text(b, "A & <b>")),
            "A &amp; &lt;b&gt;"
        );
    }
}
