//! Finds the row elements in a stream of XML bytes arriving in arbitrary chunks.
//!
//! A small hand-written markup scanner, resumable at every token boundary: it only has to tell
//! tags, end tags and opaque sections (comments, CDATA, processing instructions,
//! declarations) apart and track element nesting, which is all it takes to cut the stream
//! into row elements, to notice a broken one and to resynchronise at the next row start tag.
//! The text of each complete row element is then handed to a [`Sink`], which parses it
//! properly (see `row.rs`). Only the current unfinished element is buffered. Hand-written
//! because quick-xml's reader stops at the first malformed element, and a bronze read must
//! reject that one row and go on with the next.

use std::ops::Range;

use crate::bronze::decode::{MAX_REJECTED_RAW, Rejected};
use crate::bronze::formats::values;

/// Largest row element buffered; a longer one is rejected (it is almost certainly a row whose
/// end tag is missing and that swallows the rest of the file).
pub(super) const MAX_ELEMENT_BYTES: usize = 64 << 20;

/// Open elements tracked outside rows (the root and its kin); deeper ones are not tracked.
const MAX_OUTER_DEPTH: usize = 64;

/// What the framer finds.
pub(super) trait Sink {
    /// A complete, well-nested row element: from its start tag's `<` to its end tag's `>`.
    fn row(&mut self, xml: &[u8], line: u64, offset: u64);
    /// A broken row element.
    fn reject(&mut self, rejected: Rejected);
}

enum Mode {
    /// Between rows: prolog, root element, whitespace, garbage.
    Outside,
    /// Inside a row element starting at `buf[start]`.
    Row { start: usize, line: u64 },
    /// Inside a broken row element, looking for the next row start tag.
    Skip(Skip),
}

struct Skip {
    line: u64,
    offset: u64,
    /// The element's text so far (capped a little above [`MAX_REJECTED_RAW`]).
    raw: Vec<u8>,
    reason: String,
}

pub(super) struct Framer {
    tag: Box<[u8]>,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    /// Scan position in `buf`: everything before it has been tokenized.
    pos: usize,
    /// File length to wait for before rescanning a token the buffer ended in (doubling the
    /// token's bytes each time keeps rescans linear overall).
    retry_at: u64,
    mode: Mode,
    /// Names of the elements open in the current row (row element first), relative to its start.
    stack: Vec<Range<usize>>,
    /// Names of the elements open outside rows (the root...), to resynchronise at their end tags.
    outer: Vec<Box<[u8]>>,
    /// Newlines are counted up to file offset `line_pos`, which is on line `line`.
    line_pos: u64,
    line: u64,
}

impl Framer {
    pub(super) fn new(tag: &str) -> Self {
        Self {
            tag: tag.as_bytes().into(),
            buf: Vec::new(),
            base: 0,
            pos: 0,
            retry_at: 0,
            mode: Mode::Outside,
            stack: Vec::new(),
            outer: Vec::new(),
            line_pos: 0,
            line: 1,
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8], sink: &mut impl Sink) {
        self.buf.extend_from_slice(chunk);
        if self.base + self.buf.len() as u64 >= self.retry_at {
            self.scan(false, sink);
        }
        self.compact();
    }

    /// End of input: whatever element is still open is truncated.
    pub(super) fn finish(&mut self, sink: &mut impl Sink) {
        self.scan(true, sink);
        let len = self.buf.len();
        match std::mem::replace(&mut self.mode, Mode::Outside) {
            Mode::Outside => {
                // A row start tag cut off by the end of the file.
                let lt = self.pos;
                if lt < len && self.buf[lt] == b'<' {
                    let rest = &self.buf[lt + 1..];
                    let n = rest.iter().take_while(|&&b| is_name_char(b)).count();
                    let name = &rest[..n];
                    if *name == *self.tag || (n == rest.len() && self.tag.starts_with(name)) {
                        let line = self.line_at(lt);
                        let reason = format!(
                            "truncated element: <{}> start tag cut off at end of file",
                            self.tag_str()
                        );
                        sink.reject(rejected(
                            line,
                            self.base + lt as u64,
                            &self.buf[lt..],
                            reason,
                        ));
                    }
                }
            }
            Mode::Row { start, line } => {
                let reason = format!(
                    "truncated element: <{}> not closed at end of file",
                    self.innermost(start)
                );
                sink.reject(rejected(
                    line,
                    self.base + start as u64,
                    &self.buf[start..],
                    reason,
                ));
            }
            Mode::Skip(mut skip) => {
                append_capped(&mut skip.raw, &self.buf[self.pos..]);
                sink.reject(rejected(skip.line, skip.offset, &skip.raw, skip.reason));
            }
        }
        self.line_at(len);
        self.base += len as u64;
        self.buf.clear();
        self.pos = 0;
        self.retry_at = 0;
    }

    fn scan(&mut self, eof: bool, sink: &mut impl Sink) {
        loop {
            let more = match self.mode {
                Mode::Outside => self.step_outside(sink),
                Mode::Row { start, line } => self.step_row(start, line, sink),
                Mode::Skip(_) => self.step_skip(eof, sink),
            };
            if !more {
                break;
            }
        }
    }

    /// Moves to the next `<` at or after `pos`, or to the end of the buffer.
    fn next_lt(&mut self) -> Option<usize> {
        match find_byte(&self.buf[self.pos..], b'<') {
            Some(i) => {
                self.pos += i;
                Some(self.pos)
            }
            None => {
                self.pos = self.buf.len();
                None
            }
        }
    }

    /// The buffer ends inside the token at `lt`.
    fn wait(&mut self, lt: usize) {
        self.pos = lt;
        let len = self.buf.len();
        self.retry_at = self.base + (len + (len - lt)) as u64;
    }

    fn step_outside(&mut self, sink: &mut impl Sink) -> bool {
        let Some(lt) = self.next_lt() else {
            return false;
        };
        match scan_markup(&self.buf, lt) {
            Markup::Incomplete => {
                if self.buf.len() - lt > MAX_ELEMENT_BYTES {
                    self.pos = lt + 1;
                    return true;
                }
                self.wait(lt);
                return false;
            }
            Markup::Start { name, end, empty } if self.is_tag(&name) => {
                let line = self.line_at(lt);
                if empty {
                    sink.row(&self.buf[lt..end], line, self.base + lt as u64);
                } else {
                    self.stack.clear();
                    self.stack.push(name.start - lt..name.end - lt);
                    self.mode = Mode::Row { start: lt, line };
                }
                self.pos = end;
            }
            Markup::Start { name, end, empty } => {
                if !empty && self.outer.len() < MAX_OUTER_DEPTH {
                    self.outer.push(self.buf[name].into());
                }
                self.pos = end;
            }
            Markup::End { name, end } => {
                if let Some(i) = self
                    .outer
                    .iter()
                    .rposition(|o| **o == self.buf[name.clone()])
                {
                    self.outer.truncate(i);
                }
                self.pos = end;
            }
            Markup::Other { end } => self.pos = end,
            // A row start tag cut short, possibly inside its name (`<ship` + next line).
            Markup::Broken { name, at } if self.tag.starts_with(&self.buf[name.clone()]) => {
                let line = self.line_at(lt);
                let reason = self.broken_reason(&name);
                self.start_skip(line, lt, at, reason);
                self.pos = at;
            }
            Markup::Stray { name } if self.is_tag(&name) => {
                let line = self.line_at(lt);
                let reason = format!("malformed start tag <{}", self.tag_str());
                self.start_skip(line, lt, name.end, reason);
                self.pos = name.end;
            }
            // Garbage between rows.
            Markup::Broken { .. } | Markup::Stray { .. } => self.pos = lt + 1,
        }
        true
    }

    fn step_row(&mut self, start: usize, line: u64, sink: &mut impl Sink) -> bool {
        if self.buf.len() - start > MAX_ELEMENT_BYTES {
            let reason = format!("element larger than {} MiB", MAX_ELEMENT_BYTES >> 20);
            let at = self.buf.len();
            self.start_skip(line, start, at, reason);
            self.pos = at;
            return true;
        }
        let Some(lt) = self.next_lt() else {
            return false;
        };
        let markup = scan_markup(&self.buf, lt);
        if let Markup::Start { name, .. } | Markup::Broken { name, .. } | Markup::Stray { name } =
            &markup
            && self.is_tag(name)
        {
            // The next row starts: this one was cut short.
            let reason = format!(
                "truncated element: <{}> not closed before the next <{}>",
                self.innermost(start),
                self.tag_str()
            );
            self.reject_truncated(start, line, lt, reason, sink);
            return true;
        }
        match markup {
            Markup::Incomplete => {
                self.wait(lt);
                return false;
            }
            Markup::Start { name, end, empty } => {
                if !empty {
                    self.stack.push(name.start - start..name.end - start);
                }
                self.pos = end;
            }
            Markup::End { name, end } => {
                let open = self
                    .stack
                    .last()
                    .expect("a row has its element open")
                    .clone();
                let found = &self.buf[name.clone()];
                if *found == self.buf[start + open.start..start + open.end] {
                    self.stack.pop();
                    self.pos = end;
                    if self.stack.is_empty() {
                        sink.row(&self.buf[start..end], line, self.base + start as u64);
                        self.mode = Mode::Outside;
                    }
                } else if self.outer.iter().any(|o| **o == *found) {
                    // The root closes: this row was cut short.
                    let reason = format!(
                        "truncated element: <{}> not closed before </{}>",
                        self.innermost(start),
                        String::from_utf8_lossy(found)
                    );
                    self.reject_truncated(start, line, lt, reason, sink);
                } else {
                    let reason = format!(
                        "mismatched end tag </{}>, expected </{}>",
                        String::from_utf8_lossy(found),
                        self.innermost(start)
                    );
                    self.start_skip(line, start, end, reason);
                    self.pos = end;
                }
            }
            Markup::Other { end } => self.pos = end,
            Markup::Broken { name, at } => {
                let reason = self.broken_reason(&name);
                self.start_skip(line, start, at, reason);
                self.pos = at;
            }
            Markup::Stray { .. } => {
                let reason = format!(
                    "'<' that starts no tag inside <{}> (a literal '<' must be written &lt;)",
                    self.innermost(start)
                );
                self.start_skip(line, start, lt + 1, reason);
                self.pos = lt + 1;
            }
        }
        true
    }

    fn step_skip(&mut self, eof: bool, sink: &mut impl Sink) -> bool {
        let from = self.pos;
        let lt = self.next_lt();
        let Mode::Skip(skip) = &mut self.mode else {
            unreachable!("skipping")
        };
        append_capped(&mut skip.raw, &self.buf[from..self.pos]);
        let Some(lt) = lt else { return false };
        match resync_at(&self.buf[lt + 1..], &self.tag, &self.outer) {
            Some(true) => {
                let Mode::Skip(skip) = std::mem::replace(&mut self.mode, Mode::Outside) else {
                    unreachable!("skipping")
                };
                sink.reject(rejected(skip.line, skip.offset, &skip.raw, skip.reason));
                true
            }
            Some(false) => {
                append_capped(&mut skip.raw, b"<");
                self.pos = lt + 1;
                true
            }
            None if eof => false,
            None => {
                self.wait(lt);
                false
            }
        }
    }

    /// Rejects the row starting at `start`, cut short at `end`, and goes on from `end`.
    fn reject_truncated(
        &mut self,
        start: usize,
        line: u64,
        end: usize,
        reason: String,
        sink: &mut impl Sink,
    ) {
        sink.reject(rejected(
            line,
            self.base + start as u64,
            &self.buf[start..end],
            reason,
        ));
        self.mode = Mode::Outside;
        self.pos = end;
    }

    /// The row starting at `start` is broken; its text runs at least to `end`.
    fn start_skip(&mut self, line: u64, start: usize, end: usize, reason: String) {
        let mut raw = Vec::new();
        append_capped(&mut raw, &self.buf[start..end]);
        self.mode = Mode::Skip(Skip {
            line,
            offset: self.base + start as u64,
            raw,
            reason,
        });
    }

    fn broken_reason(&self, name: &Range<usize>) -> String {
        if name.is_empty() {
            return "truncated tag: a '<' is followed by nothing but the next tag".into();
        }
        format!(
            "truncated tag <{}: a '<' comes before its closing '>'",
            String::from_utf8_lossy(&self.buf[name.clone()])
        )
    }

    fn is_tag(&self, name: &Range<usize>) -> bool {
        self.buf[name.clone()] == *self.tag
    }

    fn tag_str(&self) -> String {
        String::from_utf8_lossy(&self.tag).into_owned()
    }

    /// The innermost element open in the row starting at `start`.
    fn innermost(&self, start: usize) -> String {
        let r = self.stack.last().cloned().unwrap_or(0..0);
        String::from_utf8_lossy(&self.buf[start + r.start..start + r.end]).into_owned()
    }

    /// The 1-based line of `buf[rel]`; `rel` never goes backwards.
    fn line_at(&mut self, rel: usize) -> u64 {
        let abs = self.base + rel as u64;
        if abs > self.line_pos {
            let from = (self.line_pos - self.base) as usize;
            self.line += count_byte(&self.buf[from..rel], b'\n');
            self.line_pos = abs;
        }
        self.line
    }

    /// Drops the bytes no longer needed, once they are at least half the buffer (so that the
    /// copying stays linear).
    fn compact(&mut self) {
        let keep = match self.mode {
            Mode::Row { start, .. } => start,
            Mode::Outside | Mode::Skip(_) => self.pos,
        };
        if keep == 0 || keep < self.buf.len() - keep {
            return;
        }
        self.line_at(keep);
        self.buf.drain(..keep);
        self.base += keep as u64;
        self.pos -= keep;
        if let Mode::Row { start, .. } = &mut self.mode {
            *start = 0;
        }
    }
}

/// A rejected record from its raw bytes (trailing whitespace trimmed, capped as
/// [`values::raw_text`] does).
pub(super) fn rejected(line: u64, offset: u64, raw: &[u8], reason: String) -> Rejected {
    values::rejected(line, offset, raw.trim_ascii_end(), reason)
}

fn append_capped(raw: &mut Vec<u8>, bytes: &[u8]) {
    let room = (MAX_REJECTED_RAW + 4).saturating_sub(raw.len());
    raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Whether the markup after a `<` (`rest`) starts a row (`tag`) or ends an element open
/// outside rows; `None` when `rest` is too short to tell.
fn resync_at(rest: &[u8], tag: &[u8], outer: &[Box<[u8]>]) -> Option<bool> {
    let mut undecided = false;
    match starts_with_name(rest, tag) {
        Some(true) => return Some(true),
        None => undecided = true,
        Some(false) => {}
    }
    match rest.first() {
        None => return None,
        Some(b'/') => {
            for name in outer {
                match starts_with_name(&rest[1..], name) {
                    Some(true) => return Some(true),
                    None => undecided = true,
                    Some(false) => {}
                }
            }
        }
        Some(_) => {}
    }
    if undecided { None } else { Some(false) }
}

/// Whether `rest` starts with the whole name `name`; `None` when too short to tell.
fn starts_with_name(rest: &[u8], name: &[u8]) -> Option<bool> {
    if rest.len() <= name.len() {
        if name.starts_with(rest) {
            None
        } else {
            Some(false)
        }
    } else {
        Some(rest.starts_with(name) && !is_name_char(rest[name.len()]))
    }
}

/// One token starting with `<`.
#[derive(Debug, PartialEq, Eq)]
enum Markup {
    /// The buffer ends inside it.
    Incomplete,
    /// A start tag or (`empty`) an empty-element tag; `end` is past its `>`.
    Start {
        name: Range<usize>,
        end: usize,
        empty: bool,
    },
    End {
        name: Range<usize>,
        end: usize,
    },
    /// Comment, CDATA section, processing instruction or declaration.
    Other {
        end: usize,
    },
    /// A tag interrupted by a `<` at `at`: a truncated line followed by the next element.
    Broken {
        name: Range<usize>,
        at: usize,
    },
    /// A `<` that starts no markup (`name` is what follows it, possibly empty).
    Stray {
        name: Range<usize>,
    },
}

fn scan_markup(buf: &[u8], lt: usize) -> Markup {
    let n = buf.len();
    let Some(&first) = buf.get(lt + 1) else {
        return Markup::Incomplete;
    };
    match first {
        b'/' => {
            let start = lt + 2;
            let mut i = start;
            while i < n && is_name_char(buf[i]) {
                i += 1;
            }
            if i == n {
                return Markup::Incomplete;
            }
            let name = start..i;
            if i == start || !is_name_start(buf[start]) {
                return Markup::Stray { name };
            }
            while i < n && is_space(buf[i]) {
                i += 1;
            }
            match buf.get(i) {
                None => Markup::Incomplete,
                Some(b'>') => Markup::End { name, end: i + 1 },
                Some(b'<') => Markup::Broken { name, at: i },
                Some(_) => Markup::Stray { name },
            }
        }
        b'?' => terminated(buf, lt + 2, b"?>"),
        b'!' => {
            let rest = &buf[lt + 2..];
            if rest.starts_with(b"--") {
                terminated(buf, lt + 4, b"-->")
            } else if rest.starts_with(b"[CDATA[") {
                terminated(buf, lt + 9, b"]]>")
            } else if b"--".starts_with(rest) || b"[CDATA[".starts_with(rest) {
                Markup::Incomplete
            } else {
                declaration(buf, lt + 2)
            }
        }
        c if is_name_start(c) => {
            let start = lt + 1;
            let mut i = start + 1;
            while i < n && is_name_char(buf[i]) {
                i += 1;
            }
            if i == n {
                return Markup::Incomplete;
            }
            let name = start..i;
            match buf[i] {
                b'>' | b'/' => {}
                b'<' => return Markup::Broken { name, at: i },
                c if is_space(c) => {}
                _ => return Markup::Stray { name },
            }
            // Attributes: a '>' inside quotes does not end the tag; a '<' is not allowed
            // anywhere in a tag, so it marks a tag cut short.
            let mut quote = 0u8;
            while i < n {
                let c = buf[i];
                if c == b'<' {
                    return Markup::Broken { name, at: i };
                }
                if quote != 0 {
                    if c == quote {
                        quote = 0;
                    }
                } else if c == b'"' || c == b'\'' {
                    quote = c;
                } else if c == b'>' {
                    return Markup::Start {
                        name,
                        end: i + 1,
                        empty: buf[i - 1] == b'/',
                    };
                }
                i += 1;
            }
            Markup::Incomplete
        }
        // `<` then only whitespace before the next `<`: a tag cut right after its `<`.
        c if is_space(c) => {
            let empty = lt + 1..lt + 1;
            match buf[lt + 2..].iter().position(|&b| !is_space(b)) {
                None => Markup::Incomplete,
                Some(i) if buf[lt + 2 + i] == b'<' => Markup::Broken {
                    name: empty,
                    at: lt + 2 + i,
                },
                Some(_) => Markup::Stray { name: empty },
            }
        }
        _ => Markup::Stray {
            name: lt + 1..lt + 1,
        },
    }
}

/// An opaque section starting before `from` and ending with `terminator`.
fn terminated(buf: &[u8], from: usize, terminator: &[u8]) -> Markup {
    let last = terminator[terminator.len() - 1];
    let mut i = from;
    while let Some(p) = buf.get(i..).and_then(|rest| find_byte(rest, last)) {
        let end = i + p + 1;
        if end >= from + terminator.len() && buf[..end].ends_with(terminator) {
            return Markup::Other { end };
        }
        i = end;
    }
    Markup::Incomplete
}

/// `<!DOCTYPE ...>` and the like, whose internal subset `[...]` may hold `>`s.
fn declaration(buf: &[u8], from: usize) -> Markup {
    let (mut quote, mut depth) = (0u8, 0usize);
    for (i, &c) in buf.iter().enumerate().skip(from) {
        if quote != 0 {
            if c == quote {
                quote = 0;
            }
            continue;
        }
        match c {
            b'"' | b'\'' => quote = c,
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'>' if depth == 0 => return Markup::Other { end: i + 1 },
            _ => {}
        }
    }
    Markup::Incomplete
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

fn is_name_char(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit() || b == b'-' || b == b'.'
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn count_byte(hay: &[u8], needle: u8) -> u64 {
    hay.iter().filter(|&&b| b == needle).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_markup() {
        let m = |s: &str| scan_markup(s.as_bytes(), 0);
        assert_eq!(
            m("<a>"),
            Markup::Start {
                name: 1..2,
                end: 3,
                empty: false
            }
        );
        assert_eq!(
            m("<a/>"),
            Markup::Start {
                name: 1..2,
                end: 4,
                empty: true
            }
        );
        assert_eq!(
            m(r#"<a b=">/" c='<'>"#),
            Markup::Broken { name: 1..2, at: 13 }
        );
        assert_eq!(
            m(r#"<a b=">/">"#),
            Markup::Start {
                name: 1..2,
                end: 10,
                empty: false
            }
        );
        assert_eq!(m("</ab >"), Markup::End { name: 2..4, end: 6 });
        assert_eq!(m("</ab\n<x>"), Markup::Broken { name: 2..4, at: 5 });
        assert_eq!(m("</ab x>"), Markup::Stray { name: 2..4 });
        assert_eq!(m("< a>"), Markup::Stray { name: 1..1 });
        assert_eq!(m("<\n <a>"), Markup::Broken { name: 1..1, at: 3 });
        assert_eq!(m("<\n "), Markup::Incomplete);
        assert_eq!(m("<<a>"), Markup::Stray { name: 1..1 });
        assert_eq!(m("<!---->"), Markup::Other { end: 7 });
        assert_eq!(m("<!-->"), Markup::Incomplete);
        assert_eq!(m("<!-"), Markup::Incomplete);
        assert_eq!(m("<![CDATA[a]]>"), Markup::Other { end: 13 });
        assert_eq!(m("<![CDA"), Markup::Incomplete);
        assert_eq!(m("<?xml version='1.0'?>"), Markup::Other { end: 21 });
        assert_eq!(
            m("<!DOCTYPE a [<!ENTITY e '>'>]>"),
            Markup::Other { end: 30 }
        );
        assert_eq!(m("<ab"), Markup::Incomplete);
        assert_eq!(m("</ab "), Markup::Incomplete);
        assert_eq!(m("<"), Markup::Incomplete);
    }

    #[test]
    fn caps_raw_text_on_a_char_boundary() {
        let raw_text = |raw: &[u8]| rejected(1, 0, raw, String::new()).raw;
        let mut big = "é".repeat(MAX_REJECTED_RAW);
        big.push_str("  \n");
        let text = raw_text(big.as_bytes());
        assert!(text.len() <= MAX_REJECTED_RAW && text.chars().all(|c| c == 'é'));
        assert_eq!(raw_text(b"<a>x</a>\r\n"), "<a>x</a>");
    }
}
