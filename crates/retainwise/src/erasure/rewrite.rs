//! One stored object without one customer: a CSV (a scored result, an upload) without the
//! records whose id cell is the customer's, every other byte kept; a JSON document (a report,
//! a summary, a webhook body) without the entries that name them.
//!
//! Records are found by the scorer's own reader (`retainwise_model::csv_input`: the file's
//! encoding, delimiter, quoting, line numbers), so a record is cut out exactly where scoring
//! read it, quoted line breaks included. A record's bytes run from its first byte to the next
//! record's first byte (the blank lines after it go with it). Blocking: run on a blocking thread.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use retainwise_model::csv_input;
use retainwise_model::decode::{DecodeReader, Encoding};
use serde_json::Value;

/// Which column of a CSV holds the customer id.
#[derive(Debug, Clone)]
pub enum IdColumn {
    /// By position (0-based), as the scorer's mapping recorded it.
    At(usize),
    /// The first header cell whose name, lower-cased without `_`, `-` and spaces, is one of
    /// these (a file whose mapping is not known: a failed upload, a training file).
    Named(Vec<String>),
}

/// Header names taken for the customer id when the mapping is not known (normalised as
/// [`IdColumn::Named`] compares them): the scorer's id aliases' usual spellings.
pub const ID_NAMES: &[&str] = &[
    "customerid",
    "customer",
    "id",
    "userid",
    "accountid",
    "clientid",
    "subscriberid",
    "memberid",
];

fn normalise(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What [`without_customer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// Records removed.
    pub records: u64,
}

/// Writes `input` without the records whose id cell (trimmed) is `customer_id` to `output`,
/// and says how many there were; with none, `output` is not written (nothing to replace, so a
/// second run of an erasure changes nothing). A UTF-8 file keeps every other byte; a UTF-16 or
/// windows-1252 one is written as UTF-8 with a byte-order mark (the same text: its byte offsets
/// are not the decoded text's, and the scorer reads either alike). A file without the id
/// column is left alone.
///
/// Errors: reading or writing; a CSV the scorer's reader refuses.
pub fn without_customer(
    input: &Path,
    output: &Path,
    column: &IdColumn,
    customer_id: &str,
) -> std::io::Result<Removed> {
    let want = customer_id.trim();
    let opened = csv_input::open(BufReader::new(File::open(input)?))?;
    let encoding = opened.encoding;
    let mut reader = opened.reader;
    let bad = |e: csv_input::ReadError| match e {
        csv_input::ReadError::Io(e) => e,
        csv_input::ReadError::Malformed(m) => std::io::Error::other(m),
    };
    let mut record = csv::ByteRecord::new();
    if !reader.read(&mut record).map_err(bad)? {
        return Ok(Removed::default());
    }
    let at = match column {
        IdColumn::At(i) => Some(*i),
        IdColumn::Named(names) => record
            .iter()
            .position(|h| names.contains(&normalise(&csv_input::decode_field(h)))),
    };
    let Some(at) = at else {
        return Ok(Removed::default());
    };
    // As the scorer reads: a quote left open is found by the header's width.
    reader.set_width(record.len());
    // (start, end) of each record to leave out, in the reader's offsets; `None`: to the end.
    let mut ranges: Vec<(u64, Option<u64>)> = Vec::new();
    let mut open_range: Option<u64> = None;
    while reader.read(&mut record).map_err(bad)? {
        let start = reader.last().start;
        if let Some(s) = open_range.take() {
            ranges.push((s, Some(start)));
        }
        let id = record.get(at).map(csv_input::decode_field);
        if id.as_deref().map(str::trim) == Some(want) {
            open_range = Some(start);
        }
    }
    if let Some(s) = open_range {
        ranges.push((s, None));
    }
    if ranges.is_empty() {
        return Ok(Removed::default());
    }
    let removed = Removed {
        records: ranges.len() as u64,
    };
    let mut out = BufWriter::new(File::create(output)?);
    if matches!(encoding, Encoding::Utf8 | Encoding::Utf8Bom) {
        // The reader's offsets are the file's bytes.
        copy_except(File::open(input)?, &mut out, &ranges, 0)?;
    } else {
        let decoded = DecodeReader::new(BufReader::new(File::open(input)?))?;
        let shift = decoded.bom_len() as u64;
        out.write_all("\u{feff}".as_bytes())?;
        copy_except(decoded, &mut out, &ranges, shift)?;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(removed)
}

/// Copies `input` to `out` except `ranges` (sorted, offsets minus `shift` are `input`'s).
fn copy_except(
    mut input: impl Read,
    out: &mut impl Write,
    ranges: &[(u64, Option<u64>)],
    shift: u64,
) -> std::io::Result<()> {
    let mut at = 0u64;
    for (start, end) in ranges {
        let start = start - shift;
        std::io::copy(&mut (&mut input).take(start - at), out)?;
        match end {
            Some(end) => {
                let end = end - shift;
                std::io::copy(&mut (&mut input).take(end - start), &mut std::io::sink())?;
                at = end;
            }
            None => return Ok(()),
        }
    }
    std::io::copy(&mut input, out)?;
    Ok(())
}

/// Removes `customer_id` (trimmed) from a JSON document: an array element that is the id, or
/// an object with a field that is the id (a rejected row's `customer_id`, a webhook's listed
/// customer), is dropped; the id inside a longer text, standing alone between characters that
/// are not letters or digits, becomes `[erased]` (for an id of 3 characters or more: a shorter
/// one, such as a row number, would match numbers that are not it). Counts and totals are left
/// as they were computed. True when the document changed.
pub fn scrub_json(value: &mut Value, customer_id: &str) -> bool {
    let id = customer_id.trim();
    if id.is_empty() {
        return false;
    }
    scrub(value, id)
}

fn is_id(value: &Value, id: &str) -> bool {
    match value {
        Value::String(s) => s.trim() == id,
        Value::Object(map) => map
            .values()
            .any(|v| matches!(v, Value::String(s) if s.trim() == id)),
        _ => false,
    }
}

/// `text` with every standalone occurrence of `id` replaced, or `None` when it has none.
fn replace_tokens(text: &str, id: &str) -> Option<String> {
    if id.chars().count() < 3 || !text.contains(id) {
        return None;
    }
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(id) {
        let before = text[..i].chars().next_back();
        let after = text[i + id.len()..].chars().next();
        if !word(before) && !word(after) {
            out.push_str(&text[last..i]);
            out.push_str("[erased]");
            last = i + id.len();
        }
    }
    if last == 0 {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

fn scrub(value: &mut Value, id: &str) -> bool {
    match value {
        Value::String(s) => match replace_tokens(s, id) {
            Some(replaced) => {
                *s = replaced;
                true
            }
            None => false,
        },
        Value::Array(items) => {
            let before = items.len();
            items.retain(|v| !is_id(v, id));
            let mut changed = items.len() != before;
            for item in items.iter_mut() {
                changed |= scrub(item, id);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            for v in map.values_mut() {
                changed |= scrub(v, id);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], column: IdColumn, id: &str) -> (Removed, Option<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let (i, o) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
        std::fs::write(&i, input).unwrap();
        let removed = without_customer(&i, &o, &column, id).unwrap();
        (removed, std::fs::read(&o).ok())
    }

    #[test]
    fn a_record_is_cut_out_and_every_other_byte_kept() {
        let input = b"customer_id,note\r\nA-1,\"two\nlines\"\r\nB-2,x\r\n\r\nC-3,\"q \"\"B-2\"\"\"\r\nB-2,last";
        let (removed, out) = run(input, IdColumn::At(0), " B-2 ");
        assert_eq!(removed.records, 2);
        assert_eq!(
            out.unwrap(),
            b"customer_id,note\r\nA-1,\"two\nlines\"\r\nC-3,\"q \"\"B-2\"\"\"\r\n".to_vec()
        );
        // Nothing left to remove: nothing written.
        let (removed, out) = run(b"customer_id\nA-1\n", IdColumn::At(0), "B-2");
        assert_eq!((removed.records, out), (0, None));
    }

    #[test]
    fn the_id_column_is_found_by_name_in_any_dialect_and_encoding() {
        let names = IdColumn::Named(ID_NAMES.iter().map(|s| s.to_string()).collect());
        let (removed, out) = run(b"tenure;Customer ID\n1;B-2\n2;A-1\n", names.clone(), "B-2");
        assert_eq!(removed.records, 1);
        assert_eq!(out.unwrap(), b"tenure;Customer ID\n2;A-1\n".to_vec());
        // UTF-16LE with a mark: written back as UTF-8 with a mark, the same text.
        let text = "customerID,city\nB-2,Köln\nA-1,Zürich\n";
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        let (removed, out) = run(&utf16, names, "B-2");
        assert_eq!(removed.records, 1);
        assert_eq!(
            String::from_utf8(out.unwrap()).unwrap(),
            "\u{feff}customerID,city\nA-1,Zürich\n"
        );
    }

    #[test]
    fn json_loses_the_entries_that_name_the_customer_and_keeps_its_counts() {
        let mut v = serde_json::json!({
            "rows_rejected": 2,
            "rejected_rows": [
                {"row": 3, "customer_id": "B-2", "message": "tenure: many"},
                {"row": 9, "customer_id": "A-1", "message": "x"}
            ],
            "warnings": ["row 4 (B-2) repeats row 3", "B-2"],
            "note": "see B-2, not B-23 or AB-2",
            "short": "row 1"
        });
        assert!(scrub_json(&mut v, "B-2"));
        assert_eq!(
            v,
            serde_json::json!({
                "rows_rejected": 2,
                "rejected_rows": [{"row": 9, "customer_id": "A-1", "message": "x"}],
                "warnings": ["row 4 ([erased]) repeats row 3"],
                "note": "see [erased], not B-23 or AB-2",
                "short": "row 1"
            })
        );
        assert!(!scrub_json(&mut v, "B-2"));
        // A short id is removed where it is a value, never inside other text.
        assert!(!scrub_json(&mut v, "1"));
    }
}
