//! Turns the text of one complete row element into flat `(column, value)` fields, with
//! quick-xml doing the XML proper: attribute syntax and duplicates, entity and character
//! references, CDATA, UTF-8 validation, end-tag names.

use std::ops::Range;

use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};

/// One value of a row: a column name and its text (`None` for an empty element).
#[derive(Debug, Clone)]
pub(super) struct Field {
    name: Range<usize>,
    value: Option<Range<usize>>,
}

/// An element being read: where its name ends in the path, whether it has child elements (then
/// its own text is ignored) and attributes (then an empty element is no value of its own).
struct Level {
    path_len: usize,
    has_child: bool,
    has_attrs: bool,
}

/// Reusable (allocation-free once warm) row flattener.
pub(super) struct RowParser {
    separator: String,
    /// Concatenated field names, then values; [`Field`] ranges index into them.
    names: String,
    values: String,
    fields: Vec<Field>,
    path: String,
    levels: Vec<Level>,
    text: String,
}

impl RowParser {
    pub(super) fn new(separator: &str) -> Self {
        Self {
            separator: separator.to_owned(),
            names: String::new(),
            values: String::new(),
            fields: Vec::new(),
            path: String::new(),
            levels: Vec::new(),
            text: String::new(),
        }
    }

    pub(super) fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub(super) fn name(&self, field: &Field) -> &str {
        &self.names[field.name.clone()]
    }

    pub(super) fn value(&self, field: &Field) -> Option<&str> {
        field.value.clone().map(|r| &self.values[r])
    }

    /// Flattens one row element (`xml` starts with its start tag and ends with its end tag,
    /// or is one empty-element tag). The error is a reason for rejecting the row.
    pub(super) fn parse(&mut self, xml: &[u8]) -> Result<(), String> {
        self.names.clear();
        self.values.clear();
        self.fields.clear();
        self.path.clear();
        self.levels.clear();
        self.text.clear();
        self.parse_events(xml)
            .map_err(|e| format!("invalid XML: {e}"))
    }

    fn parse_events(&mut self, xml: &[u8]) -> Result<(), String> {
        let mut reader = Reader::from_reader(xml);
        reader.config_mut().check_end_names = true;
        loop {
            let event = reader.read_event().map_err(|e| describe(&e))?;
            match event {
                Event::Start(e) => self.open(&e, &reader)?,
                Event::Empty(e) => {
                    self.open(&e, &reader)?;
                    if self.close() {
                        return Ok(());
                    }
                }
                // Closing the row element ends the row.
                Event::End(_) if self.close() => return Ok(()),
                Event::Text(t) if self.levels.len() > 1 => {
                    self.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
                Event::CData(t) if self.levels.len() > 1 => {
                    self.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
                Event::GeneralRef(r) if self.levels.len() > 1 => {
                    let name = r.decode().map_err(|e| e.to_string())?;
                    if let Some(c) = r.resolve_char_ref().map_err(|e| describe(&e))? {
                        self.text.push(c);
                    } else if let Some(s) = resolve_xml_entity(&name) {
                        self.text.push_str(s);
                    } else {
                        return Err(format!("unknown entity &{name};"));
                    }
                }
                Event::Eof => return Err("element is not closed".into()),
                _ => {}
            }
        }
    }

    /// Enters an element: extends the path, records its attributes.
    fn open(&mut self, e: &BytesStart<'_>, reader: &Reader<&[u8]>) -> Result<(), String> {
        let path_len = self.path.len();
        if let Some(parent) = self.levels.last_mut() {
            parent.has_child = true;
            let local = e.local_name();
            let name = std::str::from_utf8(local.as_ref())
                .map_err(|_| "element name is not UTF-8".to_owned())?;
            if self.levels.len() > 1 {
                self.path.push_str(&self.separator);
            }
            self.path.push_str(name);
        }
        self.levels.push(Level {
            path_len,
            has_child: false,
            has_attrs: false,
        });
        self.text.clear();
        let mut has_attrs = false;
        for attr in e.attributes() {
            let attr = attr.map_err(|e| e.to_string())?;
            if attr.key.as_ref() == b"xmlns"
                || attr.key.prefix().is_some_and(|p| p.as_ref() == b"xmlns")
            {
                continue;
            }
            has_attrs = true;
            let local = attr.key.local_name();
            let name = std::str::from_utf8(local.as_ref())
                .map_err(|_| "attribute name is not UTF-8".to_owned())?;
            let value = attr
                .decode_and_unescape_value_with(reader.decoder(), resolve_xml_entity)
                .map_err(|e| describe(&e))?;
            let start = self.names.len();
            self.names.push_str(&self.path);
            if !self.path.is_empty() {
                self.names.push_str(&self.separator);
            }
            self.names.push_str(name);
            let name = start..self.names.len();
            self.push_value(name, &value);
        }
        self.levels.last_mut().expect("just pushed").has_attrs = has_attrs;
        Ok(())
    }

    /// Leaves an element, recording it as a value when it is a leaf (no child elements) that
    /// has text or no attributes. Returns whether the row element itself was closed.
    fn close(&mut self) -> bool {
        let Some(level) = self.levels.pop() else {
            return true;
        };
        if self.levels.is_empty() {
            return true;
        }
        if !level.has_child {
            let text = std::mem::take(&mut self.text);
            let value = trim(&text);
            if !value.is_empty() || !level.has_attrs {
                let start = self.names.len();
                self.names.push_str(&self.path);
                let name = start..self.names.len();
                self.push_value(name, value);
            }
            self.text = text;
        }
        self.text.clear();
        self.path.truncate(level.path_len);
        false
    }

    fn push_value(&mut self, name: Range<usize>, value: &str) {
        let value = trim(value);
        let value = (!value.is_empty()).then(|| {
            let start = self.values.len();
            self.values.push_str(value);
            start..self.values.len()
        });
        self.fields.push(Field { name, value });
    }
}

/// quick-xml's error, in the words of someone who wrote the file.
fn describe(e: &quick_xml::Error) -> String {
    use quick_xml::errors::{Error, IllFormedError};
    use quick_xml::escape::EscapeError;
    match e {
        Error::IllFormed(IllFormedError::UnclosedReference)
        | Error::Escape(EscapeError::UnterminatedEntity(_)) => {
            "'&' that starts no entity reference (a literal '&' must be written &amp;)".into()
        }
        Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            format!("unknown entity &{name};")
        }
        _ => e.to_string(),
    }
}

/// Trims XML whitespace (space, tab, CR, LF).
fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(xml: &str) -> Result<Vec<(String, Option<String>)>, String> {
        let mut p = RowParser::new("_");
        p.parse(xml.as_bytes())?;
        Ok(p.fields()
            .iter()
            .map(|f| (p.name(f).to_owned(), p.value(f).map(str::to_owned)))
            .collect())
    }

    fn f(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn flattens_attributes_children_and_nesting() {
        let got = flat(
            r#"<s id="1" xmlns:x="u"><a>17</a><b/><c></c><d> <e>E</e> <f g="G">F</f><h k="K"/></d> row text </s>"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                f("id", Some("1")),
                f("a", Some("17")),
                f("b", None),
                f("c", None),
                f("d_e", Some("E")),
                f("d_f_g", Some("G")),
                f("d_f", Some("F")),
                f("d_h_k", Some("K")),
            ]
        );
    }

    #[test]
    fn unescapes_entities_and_cdata() {
        let got = flat(r#"<s n="a&amp;b &#x41;"><t>x &lt;&#66;&gt; <![CDATA[<raw> & ]]>y</t></s>"#)
            .unwrap();
        assert_eq!(
            got,
            vec![f("n", Some("a&b A")), f("t", Some("x <B> <raw> & y"))]
        );
    }

    #[test]
    fn rejects_bad_xml() {
        assert!(flat("<s><t>&nope;</t></s>").unwrap_err().contains("nope"));
        assert!(flat("<s a='1' a='2'></s>").is_err());
        assert!(flat("<s><t>a & b</t></s>").unwrap_err().contains("&amp;"));
        assert!(
            flat("<s a='&x;'/>")
                .unwrap_err()
                .contains("unknown entity &x;")
        );
        assert!(flat("<s a='a & b'/>").unwrap_err().contains("&amp;"));
        assert!(flat("<s><t></u></s>").is_err());
    }

    #[test]
    fn self_closing_row() {
        assert_eq!(flat(r#"<s id="3"/>"#).unwrap(), vec![f("id", Some("3"))]);
    }
}
