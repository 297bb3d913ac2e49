//! One module per raw format, each implementing [`super::decode::RawFormatReader`].

pub mod csv;
pub mod json;
pub mod xml;
