//! Line-level CSV scanning: the cheap pre-pass that decides, for each physical line, whether it
//! is one well-formed record (handed to arrow-csv untouched) or must be rejected, plus the
//! quote-aware field splitter used for headers, sniffing and schema inference. It exists
//! because arrow-csv fails a whole batch on one malformed record and cannot say which line it
//! was; this pass lets arrow-csv parse the good lines and rejects each bad one alone.
//!
//! Records end at a newline outside quotes, and a record is exactly one line: a quoted field
//! still open at the end of its line is an "unterminated quote" and rejects that line alone.
//! The quoting rules mirror csv-core's (which arrow-csv uses), so a line this module accepts
//! is parsed by arrow-csv as one record with the same fields:
//! - a quote opens a quoted field only as the field's first byte; anywhere else it is data;
//! - inside a quoted field a doubled quote is a literal quote, and a single one closes it;
//! - after the closing quote, bytes up to the next delimiter are appended (lenient, like
//!   csv-core);
//! - a carriage return outside quotes ends a record for csv-core, so one that is not the last
//!   byte of its line rejects the line ("carriage return inside a record").

use memchr::memchr2;

/// The candidate delimiters, in order of preference on a tie.
pub(crate) const SNIFF_CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Sniffing looks at most at this many lines …
pub(crate) const SNIFF_LINES: usize = 20;
/// … within this many bytes.
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Strips a leading UTF-8 byte order mark.
pub(crate) fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(BOM).unwrap_or(b)
}

/// The line without its terminator (`\n` or `\r\n`).
#[inline]
pub(crate) fn line_content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// What one physical line (terminator stripped) is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineClass {
    /// Empty: skipped (csv-core skips empty lines too).
    Blank,
    /// One record with the expected number of fields.
    Good,
    /// Not decodable; the reason.
    Bad(String),
}

/// The fields a line splits into (quote-aware) and whether it is structurally broken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub fields: usize,
    /// A quoted field was still open at the end of the line.
    pub open_quote: bool,
    /// A carriage return outside quotes before the end of the line.
    pub bare_cr: bool,
}

/// Classifies a line against the expected field count. The common case (no quote, no stray
/// `\r`) is one SIMD search plus one counting loop; only lines with quotes run the state
/// machine.
#[inline]
pub(crate) fn classify(content: &[u8], delim: u8, quote: u8, ncols: usize) -> LineClass {
    if content.is_empty() {
        return LineClass::Blank;
    }
    let fields = if memchr2(quote, b'\r', content).is_none() {
        count_byte(content, delim) + 1
    } else {
        let shape = shape(content, delim, quote);
        if shape.open_quote {
            return LineClass::Bad("unterminated quote".into());
        }
        if shape.bare_cr {
            return LineClass::Bad("carriage return inside a record".into());
        }
        shape.fields
    };
    if fields == ncols {
        LineClass::Good
    } else {
        LineClass::Bad(format!("expected {ncols} fields, found {fields}"))
    }
}

/// Like [`classify`] for a line whose delimiters were already counted (by
/// [`for_each_line`]) and which holds a quote or a carriage return.
pub(crate) fn classify_counted(
    content: &[u8],
    delims: usize,
    quote: u8,
    delim: u8,
    ncols: usize,
) -> LineClass {
    if content.is_empty() {
        return LineClass::Blank;
    }
    if memchr2(quote, b'\r', content).is_none() {
        // Only the CR of a CRLF terminator: the count stands.
        let fields = delims + 1;
        return if fields == ncols {
            LineClass::Good
        } else {
            LineClass::Bad(format!("expected {ncols} fields, found {fields}"))
        };
    }
    classify(content, delim, quote, ncols)
}

/// Calls `f(start, end, delimiters, special)` for each complete line of `data`, where
/// `data[start..end]` is the line with its `\n`, `delimiters` counts the delimiter bytes in it
/// (quoted or not) and `special` tells whether it holds a quote or a `\r` other than the one of
/// a CRLF terminator. Returns the offset just past the last complete line (the rest is a
/// partial line).
///
/// Works on 64-byte blocks turned into bit masks (newline, delimiter, quote, CR; SSE2 on
/// x86_64), so the cost per line is a few bit operations rather than a walk over its bytes.
#[inline]
pub(crate) fn for_each_line<E>(
    data: &[u8],
    delim: u8,
    quote: u8,
    f: impl FnMut(usize, usize, usize, bool) -> Result<(), E>,
) -> Result<usize, E> {
    #[cfg(target_arch = "x86_64")]
    return walk(data, delim, quote, f, |b, d, q| {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { masks_sse2(b, d, q) }
    });
    #[cfg(not(target_arch = "x86_64"))]
    walk(data, delim, quote, f, masks_scalar)
}

/// Masks of one block: newlines, delimiters, quotes, CRs.
type Masks = (u64, u64, u64, u64);

#[inline(always)]
fn walk<E>(
    data: &[u8],
    delim: u8,
    quote: u8,
    mut f: impl FnMut(usize, usize, usize, bool) -> Result<(), E>,
    masks64: impl Fn(&[u8], u8, u8) -> Masks,
) -> Result<usize, E> {
    let mut line_start = 0;
    let mut delims = 0usize;
    let mut special = false;
    let mut base = 0;
    while base < data.len() {
        let block = &data[base..data.len().min(base + 64)];
        let (mut nl, mut dm, q, cr) = if block.len() == 64 {
            masks64(block, delim, quote)
        } else {
            masks_scalar(block, delim, quote)
        };
        // A CR right before a LF is a CRLF terminator, not a special byte.
        let mut nl_after = nl >> 1;
        if data.get(base + 64) == Some(&b'\n') {
            nl_after |= 1 << 63;
        }
        let mut sp = q | (cr & !nl_after);
        while nl != 0 {
            let i = nl.trailing_zeros();
            let below = (1u64 << i) - 1;
            delims += (dm & below).count_ones() as usize;
            special |= sp & below != 0;
            let end = base + i as usize + 1;
            f(line_start, end, delims, special)?;
            line_start = end;
            delims = 0;
            special = false;
            let keep = !(below | (1u64 << i));
            nl &= keep;
            dm &= keep;
            sp &= keep;
        }
        delims += dm.count_ones() as usize;
        special |= sp != 0;
        base += block.len();
    }
    Ok(line_start)
}

/// Masks of a block of at most 64 bytes, byte by byte.
#[inline]
fn masks_scalar(block: &[u8], delim: u8, quote: u8) -> Masks {
    let (mut nl, mut dm, mut q, mut cr) = (0u64, 0u64, 0u64, 0u64);
    for (i, &b) in block.iter().enumerate() {
        nl |= ((b == b'\n') as u64) << i;
        dm |= ((b == delim) as u64) << i;
        q |= ((b == quote) as u64) << i;
        cr |= ((b == b'\r') as u64) << i;
    }
    (nl, dm, q, cr)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn masks_sse2(block: &[u8], delim: u8, quote: u8) -> Masks {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    assert!(block.len() >= 64);
    let vnl = _mm_set1_epi8(b'\n' as i8);
    let vd = _mm_set1_epi8(delim as i8);
    let vq = _mm_set1_epi8(quote as i8);
    let vcr = _mm_set1_epi8(b'\r' as i8);
    let (mut nl, mut dm, mut q, mut cr) = (0u64, 0u64, 0u64, 0u64);
    for k in 0..4 {
        // SAFETY: `block` has at least 64 bytes (asserted), so the 16 bytes at 16*k are in
        // bounds; `_mm_loadu_si128` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>()) };
        let bits = |m| (_mm_movemask_epi8(m) as u32 as u64) << (16 * k);
        nl |= bits(_mm_cmpeq_epi8(v, vnl));
        dm |= bits(_mm_cmpeq_epi8(v, vd));
        q |= bits(_mm_cmpeq_epi8(v, vq));
        cr |= bits(_mm_cmpeq_epi8(v, vcr));
    }
    (nl, dm, q, cr)
}

/// Counts `needle` in `hay` (a loop LLVM vectorizes).
#[inline]
pub(crate) fn count_byte(hay: &[u8], needle: u8) -> usize {
    let mut total = 0usize;
    let mut chunks = hay.chunks_exact(255);
    for c in &mut chunks {
        // u8 lanes cannot overflow within 255 bytes.
        let n: u8 = c.iter().fold(0u8, |acc, &b| acc + (b == needle) as u8);
        total += n as usize;
    }
    total + chunks.remainder().iter().filter(|&&b| b == needle).count()
}

/// The quote-aware shape of one line (terminator stripped).
pub(crate) fn shape(content: &[u8], delim: u8, quote: u8) -> Shape {
    let mut s = Splitter::new(delim, quote);
    for &b in content {
        s.step(b);
    }
    Shape {
        fields: s.fields + 1,
        open_quote: s.state == State::Quoted,
        bare_cr: s.bare_cr,
    }
}

/// Splits one line (terminator stripped) into unescaped fields.
pub(crate) fn split_fields(content: &[u8], delim: u8, quote: u8) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut s = Splitter::new(delim, quote);
    for &b in content {
        match s.step(b) {
            Step::Data => cur.push(b),
            Step::EndField => {
                fields.push(String::from_utf8_lossy(&cur).into_owned());
                cur.clear();
            }
            Step::Syntax => {}
        }
    }
    fields.push(String::from_utf8_lossy(&cur).into_owned());
    fields
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    /// Just saw a quote inside a quoted field: a second quote is a literal, anything else ends
    /// the quoted part.
    QuoteInQuoted,
}

struct Splitter {
    delim: u8,
    quote: u8,
    state: State,
    /// Delimiters seen outside quotes.
    fields: usize,
    bare_cr: bool,
}

impl Splitter {
    fn new(delim: u8, quote: u8) -> Self {
        Splitter {
            delim,
            quote,
            state: State::StartField,
            fields: 0,
            bare_cr: false,
        }
    }

    #[inline]
    fn step(&mut self, b: u8) -> Step {
        match self.state {
            State::StartField | State::Unquoted | State::QuoteInQuoted => {
                if b == self.delim {
                    self.fields += 1;
                    self.state = State::StartField;
                    Step::EndField
                } else if self.state == State::QuoteInQuoted && b == self.quote {
                    self.state = State::Quoted;
                    Step::Data
                } else if self.state == State::StartField && b == self.quote {
                    self.state = State::Quoted;
                    Step::Syntax
                } else {
                    if b == b'\r' {
                        self.bare_cr = true;
                    }
                    self.state = State::Unquoted;
                    Step::Data
                }
            }
            State::Quoted => {
                if b == self.quote {
                    self.state = State::QuoteInQuoted;
                    Step::Syntax
                } else {
                    Step::Data
                }
            }
        }
    }
}

/// What one byte was to the splitter.
enum Step {
    /// Part of the field's value.
    Data,
    /// A quote that is syntax, not data.
    Syntax,
    /// A delimiter ending the field.
    EndField,
}

/// The bytes sniffing looks at: the first [`SNIFF_LINES`] complete lines within
/// [`SNIFF_BYTES`]; at end of file a last line without terminator counts too. When not even
/// one line is complete within the byte budget, the budget's bytes are used as one line.
pub(crate) fn sniff_window(data: &[u8], at_eof: bool) -> &[u8] {
    let data = strip_bom(data);
    let budget = &data[..data.len().min(SNIFF_BYTES)];
    let mut end = 0;
    for (n, nl) in memchr::memchr_iter(b'\n', budget).enumerate() {
        end = nl + 1;
        if n + 1 == SNIFF_LINES {
            return &budget[..end];
        }
    }
    if at_eof && data.len() <= SNIFF_BYTES {
        return data;
    }
    if end == 0 { budget } else { &budget[..end] }
}

/// Whether the decoder has seen enough to sniff (the window it would sniff on is final), given
/// the bytes held and how many newlines they contain.
pub(crate) fn sniff_ready(len: usize, newlines: usize) -> bool {
    len >= SNIFF_BYTES + BOM.len() || newlines >= SNIFF_LINES
}

/// Picks the delimiter among [`SNIFF_CANDIDATES`] that splits the most lines of `window` into
/// the same number (>1) of fields; `,` when none splits anything (or the first candidate that
/// is not the quote).
pub(crate) fn sniff(window: &[u8], quote: u8) -> u8 {
    let lines: Vec<&[u8]> = window
        .split(|&b| b == b'\n')
        .map(line_content)
        .filter(|l| !l.is_empty())
        .collect();
    let fallback = SNIFF_CANDIDATES.into_iter().find(|&d| d != quote);
    let mut best = (0usize, fallback.unwrap_or(b','));
    for &d in SNIFF_CANDIDATES.iter().filter(|&&d| d != quote) {
        let mut counts: Vec<usize> = lines
            .iter()
            .map(|l| shape(l, d, quote))
            .filter(|s| !s.open_quote)
            .map(|s| s.fields)
            .collect();
        counts.sort_unstable();
        // The most frequent field count above 1, and how many lines have it.
        let mut score = 0;
        let mut i = 0;
        while i < counts.len() {
            let j = i + counts[i..].iter().take_while(|&&c| c == counts[i]).count();
            if counts[i] > 1 {
                score = score.max(j - i);
            }
            i = j;
        }
        if score > best.0 {
            best = (score, d);
        }
    }
    best.1
}

/// Column names from header fields: trimmed; empty or repeated names become `column_N`
/// (N = 1-based position), made unique if that is taken too.
pub(crate) fn header_names(fields: Vec<String>) -> Vec<String> {
    let trimmed: Vec<String> = fields.into_iter().map(|f| f.trim().to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut names = Vec::with_capacity(trimmed.len());
    for (i, name) in trimmed.iter().enumerate() {
        let mut name = if name.is_empty() || seen.contains(name) {
            format!("column_{}", i + 1)
        } else {
            name.clone()
        };
        while seen.contains(&name) || (name != trimmed[i] && trimmed[i + 1..].contains(&name)) {
            name.push('_');
        }
        seen.insert(name.clone());
        names.push(name);
    }
    names
}

/// `column_1`, `column_2`, … for a file without header.
pub(crate) fn default_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("column_{i}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        let c = |s: &str| classify(s.as_bytes(), b',', b'"', 3);
        assert_eq!(c(""), LineClass::Blank);
        assert_eq!(c("a,b,c"), LineClass::Good);
        assert_eq!(c(",,"), LineClass::Good);
        assert_eq!(c("a,\"b,x\",c"), LineClass::Good);
        assert_eq!(c("a,\"b \"\"q\"\" x\",c"), LineClass::Good);
        assert_eq!(
            c("a,b\"x,c"),
            LineClass::Good,
            "quote inside an unquoted field"
        );
        assert_eq!(c("a,\"b\"x,c"), LineClass::Good, "data after closing quote");
        assert_eq!(
            c("a,b"),
            LineClass::Bad("expected 3 fields, found 2".into())
        );
        assert_eq!(
            c("a,b,c,d"),
            LineClass::Bad("expected 3 fields, found 4".into())
        );
        assert_eq!(c("a,\"b,c"), LineClass::Bad("unterminated quote".into()));
        assert_eq!(
            c("a,\"b\"\",c"),
            LineClass::Bad("unterminated quote".into())
        );
        assert_eq!(c("a,\"b\rx\",c"), LineClass::Good, "CR inside quotes");
        assert_eq!(
            c("a,b\rx,c"),
            LineClass::Bad("carriage return inside a record".into())
        );
    }

    #[test]
    fn splits_fields() {
        assert_eq!(
            split_fields(b"a,\"b,\"\"x\"\"\",,\"\"", b',', b'"'),
            vec!["a", "b,\"x\"", "", ""]
        );
        assert_eq!(split_fields(b"x", b',', b'"'), vec!["x"]);
    }

    #[test]
    fn walks_lines_in_blocks() {
        let mut data = Vec::new();
        let mut want = Vec::new();
        for i in 0..200 {
            let start = data.len();
            let line = match i % 4 {
                0 => format!("{},{}", "x".repeat(i), i),
                1 => "\"q,\",1,2".to_string(),
                2 => "a,b\r".to_string(),
                3 if i % 8 == 3 => "x\ry,\r".to_string(),
                _ => String::new(),
            };
            data.extend_from_slice(line.as_bytes());
            data.push(b'\n');
            let l = line.as_bytes();
            let content = l.strip_suffix(b"\r").unwrap_or(l);
            let special = content.iter().any(|&b| b == b'"' || b == b'\r');
            want.push((start, data.len(), count_byte(l, b','), special));
        }
        data.extend_from_slice(b"partial,");
        let mut got = Vec::new();
        let done = for_each_line(&data, b',', b'"', |s, e, d, sp| {
            got.push((s, e, d, sp));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(got, want);
        assert_eq!(done, data.len() - "partial,".len());
    }

    #[test]
    fn crlf_across_blocks_is_not_special() {
        let mut data = vec![b'x'; 63];
        data.extend_from_slice(b"\r\n\"q\"\r\n");
        let mut got = Vec::new();
        for_each_line(&data, b',', b'"', |s, e, d, sp| {
            got.push((s, e, d, sp));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(got, [(0, 65, 0, false), (65, 70, 0, true)]);
    }

    #[test]
    fn counts_bytes() {
        let long: Vec<u8> = (0..2000)
            .map(|i| if i % 3 == 0 { b',' } else { b'a' })
            .collect();
        assert_eq!(count_byte(&long, b','), 667);
        assert_eq!(count_byte(b"", b','), 0);
    }

    #[test]
    fn sniffs() {
        assert_eq!(sniff(b"a,b,c\n1,2,3\n", b'"'), b',');
        assert_eq!(sniff(b"a;b;c\n1,5;2,5;3\n4;5;6\n", b'"'), b';');
        assert_eq!(sniff(b"a\tb\n\"x,y\"\t2\n", b'"'), b'\t');
        assert_eq!(sniff(b"a|b|c\n1|2|3\n", b'"'), b'|');
        assert_eq!(sniff(b"name\nx\n", b'"'), b',');
        assert_eq!(sniff(b"", b'"'), b',');
    }

    #[test]
    fn names_headers() {
        let h = |v: &[&str]| header_names(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(h(&[" a ", "", "b"]), vec!["a", "column_2", "b"]);
        assert_eq!(h(&["a", "a", "b"]), vec!["a", "column_2", "b"]);
        assert_eq!(
            h(&["a", "", "column_2"]),
            vec!["a", "column_2_", "column_2"]
        );
    }

    #[test]
    fn windows() {
        let many: Vec<u8> = (0..30)
            .flat_map(|i| format!("{i},x\n").into_bytes())
            .collect();
        let w = sniff_window(&many, false);
        assert_eq!(w.iter().filter(|&&b| b == b'\n').count(), SNIFF_LINES);
        assert!(sniff_ready(many.len(), 30));
        assert!(!sniff_ready(8, 2));
        assert_eq!(sniff_window(b"a,b\n1,2", false), b"a,b\n");
        assert_eq!(sniff_window(b"a,b\n1,2", true), b"a,b\n1,2");
    }
}
