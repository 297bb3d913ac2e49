//! Cuts a JSON document into its top-level records without holding the document in memory: a
//! byte-level state machine that tracks strings, escapes and bracket nesting.
//!
//! A document `[ {...}, {...} ]` yields each array element; a document that is not an array
//! yields each top-level value (so a single object, or concatenated objects, also work). The
//! cutter only finds boundaries; serde_json judges each element, so a broken element becomes
//! one rejected record and the cutter resynchronizes:
//! - a closing bracket pops the nesting stack until it finds its opener (so `{"a": [1}` ends
//!   at its `}` instead of swallowing the rest of the array);
//! - a raw newline inside a string (never valid JSON) ends the string.

use memchr::memchr3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records.
    Between,
    /// Inside an object or array record.
    Bracketed,
    /// Inside a record that is a bare string.
    StrRecord,
    /// Inside a record that is a bare scalar (number, literal, garbage).
    Scalar,
}

/// The element cutter; see the module documentation.
#[derive(Debug)]
pub(crate) struct Cutter {
    state: State,
    /// Records are the elements of a top-level array (we are between its brackets).
    in_array: bool,
    stack: Vec<u8>,
    in_str: bool,
    escaped: bool,
    /// The bytes of a record begun in an earlier chunk.
    elem: Vec<u8>,
    elem_line: u64,
    elem_offset: u64,
    /// Line and file offset of the next byte.
    line: u64,
    offset: u64,
}

impl Default for Cutter {
    fn default() -> Self {
        Cutter {
            state: State::Between,
            in_array: false,
            stack: Vec::new(),
            in_str: false,
            escaped: false,
            elem: Vec::new(),
            elem_line: 1,
            elem_offset: 0,
            line: 1,
            offset: 0,
        }
    }
}

impl Cutter {
    /// Feeds the next chunk; `emit(record, line, offset)` is called for each record completed.
    pub(crate) fn feed<E>(
        &mut self,
        chunk: &[u8],
        emit: &mut E,
    ) -> Result<(), arrow::error::ArrowError>
    where
        E: FnMut(&[u8], u64, u64) -> Result<(), arrow::error::ArrowError>,
    {
        let base = self.offset;
        // Start of the current record within this chunk (0 when it began in an earlier one).
        let mut seg = 0usize;
        let mut i = 0usize;
        let n = chunk.len();
        while i < n {
            let b = chunk[i];
            match self.state {
                State::Between => {
                    self.between(b, base + i as u64);
                    if self.state != State::Between {
                        seg = i;
                        self.elem_line = self.line;
                        self.elem_offset = base + i as u64;
                    }
                }
                State::Bracketed | State::StrRecord if self.in_str => {
                    if self.escaped {
                        self.escaped = false;
                    } else {
                        // Skip ordinary string bytes in bulk.
                        if let Some(j) = memchr3(b'"', b'\\', b'\n', &chunk[i..]) {
                            i += j;
                        } else {
                            break;
                        }
                        match chunk[i] {
                            b'\\' => self.escaped = true,
                            b'"' => {
                                self.in_str = false;
                                if self.state == State::StrRecord {
                                    self.complete(chunk, seg, i + 1, emit)?;
                                }
                            }
                            _ => {
                                // A raw newline: the string is broken; end it here.
                                self.in_str = false;
                                if self.state == State::StrRecord {
                                    self.complete(chunk, seg, i, emit)?;
                                }
                            }
                        }
                    }
                }
                State::Bracketed => match b {
                    b'"' => self.in_str = true,
                    b'{' | b'[' => self.stack.push(b),
                    b'}' | b']' => {
                        let open = if b == b'}' { b'{' } else { b'[' };
                        while let Some(top) = self.stack.pop() {
                            if top == open {
                                break;
                            }
                        }
                        if self.stack.is_empty() {
                            self.complete(chunk, seg, i + 1, emit)?;
                        }
                    }
                    _ => {}
                },
                State::StrRecord => unreachable!("a string record is always in a string"),
                State::Scalar => {
                    if b.is_ascii_whitespace() || b == b',' || b == b']' {
                        self.complete(chunk, seg, i, emit)?;
                        self.between(b, base + i as u64);
                        if self.state != State::Between {
                            seg = i;
                            self.elem_line = self.line;
                            self.elem_offset = base + i as u64;
                        }
                    }
                }
            }
            if chunk[i] == b'\n' {
                self.line += 1;
            }
            i += 1;
        }
        if self.state != State::Between {
            self.elem.extend_from_slice(&chunk[seg..]);
        }
        self.offset = base + n as u64;
        Ok(())
    }

    /// End of input: a record still open is emitted as it is (serde_json then rejects it as
    /// truncated, unless it is a complete bare scalar).
    pub(crate) fn finish<E>(&mut self, emit: &mut E) -> Result<(), arrow::error::ArrowError>
    where
        E: FnMut(&[u8], u64, u64) -> Result<(), arrow::error::ArrowError>,
    {
        if self.state != State::Between {
            self.complete(&[], 0, 0, emit)?;
        }
        Ok(())
    }

    fn between(&mut self, b: u8, offset: u64) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            // A UTF-8 byte order mark at the start of the file.
            0xEF | 0xBB | 0xBF if offset < 3 => {}
            b',' if self.in_array => {}
            b']' if self.in_array => self.in_array = false,
            b'[' if !self.in_array => self.in_array = true,
            b'{' | b'[' => {
                self.stack.clear();
                self.stack.push(b);
                self.in_str = false;
                self.escaped = false;
                self.state = State::Bracketed;
            }
            b'"' => {
                self.in_str = true;
                self.escaped = false;
                self.state = State::StrRecord;
            }
            _ => self.state = State::Scalar,
        }
    }

    /// The record ends at `chunk[..end]` (it began at `chunk[seg]`, or in the carried bytes).
    fn complete<E>(
        &mut self,
        chunk: &[u8],
        seg: usize,
        end: usize,
        emit: &mut E,
    ) -> Result<(), arrow::error::ArrowError>
    where
        E: FnMut(&[u8], u64, u64) -> Result<(), arrow::error::ArrowError>,
    {
        self.state = State::Between;
        self.in_str = false;
        self.escaped = false;
        self.stack.clear();
        if self.elem.is_empty() {
            emit(&chunk[seg..end], self.elem_line, self.elem_offset)
        } else {
            self.elem.extend_from_slice(&chunk[..end]);
            let r = emit(&self.elem, self.elem_line, self.elem_offset);
            self.elem.clear();
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(doc: &[u8], chunk: usize) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        let mut c = Cutter::default();
        let mut emit = |r: &[u8], l: u64, o: u64| {
            out.push((String::from_utf8_lossy(r).into_owned(), l, o));
            Ok(())
        };
        for part in doc.chunks(chunk.max(1)) {
            c.feed(part, &mut emit).unwrap();
        }
        c.finish(&mut emit).unwrap();
        out
    }

    #[test]
    fn cuts_arrays_at_any_chunking() {
        let doc = b"[\n  {\"a\": \"x]}\\\"\", \"b\": [1, {\"c\": 2}]},\n  {\"a\": 2}\n]\n";
        let want = vec![
            (
                "{\"a\": \"x]}\\\"\", \"b\": [1, {\"c\": 2}]}".to_string(),
                2,
                4,
            ),
            ("{\"a\": 2}".to_string(), 3, 42),
        ];
        for chunk in 1..doc.len() + 1 {
            assert_eq!(cut(doc, chunk), want, "chunk {chunk}");
        }
    }

    #[test]
    fn resynchronizes_after_broken_elements() {
        let doc = b"[{\"a\": [1}, {\"a\": \"open\n}, 42, \"s\", {\"a\": 3}]";
        let got: Vec<String> = cut(doc, 5).into_iter().map(|r| r.0).collect();
        assert_eq!(
            got,
            vec![
                "{\"a\": [1}",
                "{\"a\": \"open\n}",
                "42",
                "\"s\"",
                "{\"a\": 3}"
            ]
        );
    }

    #[test]
    fn cuts_non_array_documents_and_truncation() {
        let got: Vec<String> = cut(b"\xEF\xBB\xBF{\"a\":1}\n{\"a\":2}\n{\"a\":", 3)
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(got, vec!["{\"a\":1}", "{\"a\":2}", "{\"a\":"]);
    }
}
