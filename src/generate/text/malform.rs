//! Breaking a rendered record the way real feeds break, without touching its neighbours: the
//! result is one physical line that every reader must reject, and a reader that resyncs at
//! the next line (or the next `<shipment` tag) loses nothing else.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::TextFormat;
use crate::generate::vocab::GARBAGE_LINES;

/// Breaks `line`, a well-formed record without its line terminator.
pub(super) fn malform(format: TextFormat, line: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    match format {
        TextFormat::Csv => malform_csv(line, rng),
        TextFormat::Ndjson => {
            if rng.random_bool(0.5) {
                // A writer died mid-record: any proper prefix of an object is invalid JSON.
                let cut = char_start(line, rng.random_range(1..line.len()));
                line.truncate(cut);
            } else {
                line.clear();
                line.extend_from_slice(
                    GARBAGE_LINES[rng.random_range(0..GARBAGE_LINES.len())].as_bytes(),
                );
            }
        }
        TextFormat::Xml => malform_xml(line, rng),
        TextFormat::JsonArray => unreachable!("JSON array files hold no malformed records"),
    }
}

/// Every variant changes the field count, so even a lenient reader that accepts an unclosed
/// quote at end of line rejects the record.
fn malform_csv(line: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let separators = unquoted_commas(line);
    let before_last_two = separators[separators.len() - 2];
    match rng.random_range(0..3) {
        // One field short: the last one got lost.
        0 => line.truncate(separators[separators.len() - 1]),
        // An opening quote never closed: the last two fields merge into one. Only done when
        // no quote follows, since a later quote would close it.
        1 if !line[before_last_two..].contains(&b'"') => line.insert(before_last_two + 1, b'"'),
        // One field too many: a spreadsheet error value leaked into the export.
        _ => line.extend_from_slice(b",#REF!"),
    }
}

/// Positions of the commas that separate fields.
fn unquoted_commas(line: &[u8]) -> Vec<usize> {
    let mut quoted = false;
    let mut commas = Vec::new();
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas.push(i),
            _ => {}
        }
    }
    commas
}

fn malform_xml(line: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let start_tag_end = line.iter().position(|&b| b == b'>').expect("a start tag") + 1;
    let first_close = start_tag_end
        + line[start_tag_end..]
            .windows(2)
            .position(|w| w == b"</")
            .expect("a closing tag");
    match rng.random_range(0..3) {
        // Truncated after the start tag: the element never closes.
        0 => {
            let cut = char_start(line, rng.random_range(start_tag_end..line.len() - 1));
            line.truncate(cut);
        }
        // A misspelt closing tag: `</order_id>` becomes `</xorder_id>`.
        1 => line.insert(first_close + 2, b'x'),
        // A closing tag went missing, so `</shipment>` closes the wrong element.
        _ => {
            let close_end = first_close
                + line[first_close..]
                    .iter()
                    .position(|&b| b == b'>')
                    .expect("the tag's end")
                + 1;
            line.drain(first_close..close_end);
        }
    }
}

/// `at`, moved back to the start of the UTF-8 character it falls in, so a cut never leaves
/// half a character (which would make the whole file invalid UTF-8).
fn char_start(line: &[u8], mut at: usize) -> usize {
    while at > 0 && line[at] & 0xC0 == 0x80 {
        at -= 1;
    }
    at
}
