//! One module per raw format, each implementing [`super::decode::RawFormatReader`], and what
//! they share: [`values`] (typing text values) and [`complete_lines`].

pub mod csv;
pub mod json;
pub(crate) mod values;
pub mod xml;

/// The part of an inference prefix that may vote: all of it when it is the whole file,
/// otherwise up to its last newline (the partial record after it is ignored).
pub(crate) fn complete_lines(prefix: &[u8], complete: bool) -> &[u8] {
    if complete {
        return prefix;
    }
    match memchr::memrchr(b'\n', prefix) {
        Some(nl) => &prefix[..=nl],
        None => &[],
    }
}
