//! Reading customer CSV files: byte-order mark, dialect, field decoding and error mapping.
//!
//! The reader is the `csv` crate (RFC 4180 quoting, `\n`, `\r\n` and `\r` line endings, quoted
//! fields spanning lines) configured to be *flexible*: rows may have any number of fields, so
//! that a short or long row becomes a per-row issue for the caller instead of ending the file.
//! Full encoding and delimiter detection is not done here yet: fields are UTF-8, and a field that
//! is not valid UTF-8 is read as Windows-1252 (what spreadsheet exports on Windows produce).

use std::borrow::Cow;
use std::io::{self, Read};

/// The UTF-8 byte-order mark some spreadsheet programs put at the start of a CSV file.
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Returns a reader over `input` without a leading UTF-8 byte-order mark.
///
/// Reads at most three bytes ahead; nothing is buffered beyond them.
///
/// # Errors
/// Any I/O error of `input` while reading those bytes.
pub fn skip_bom<R: Read>(mut input: R) -> io::Result<impl Read> {
    let mut head = [0u8; 3];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let start = if head[..n] == UTF8_BOM { 3 } else { 0 };
    Ok(io::Cursor::new(head[start..n].to_vec()).chain(input))
}

/// A CSV reader over `input` (BOM removed) that yields every line, header included, as a
/// [`csv::ByteRecord`] with however many fields it has.
///
/// # Errors
/// Any I/O error while looking for the byte-order mark.
pub fn reader<R: Read>(input: R) -> io::Result<csv::Reader<impl Read>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(skip_bom(input)?))
}

/// The text of one field: UTF-8 as is, anything else read as Windows-1252.
pub fn decode_field(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
    }
}

/// What went wrong reading the next record.
#[derive(Debug)]
pub enum ReadError {
    /// The underlying reader failed (transient as far as this crate can tell).
    Io(io::Error),
    /// The CSV syntax could not be read; `message` says why.
    Malformed(String),
}

/// Reads the next record into `record`; `Ok(false)` at the end of the input.
///
/// # Errors
/// [`ReadError::Io`] when the reader fails, [`ReadError::Malformed`] for anything else the CSV
/// reader reports.
pub fn next_record<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
) -> Result<bool, ReadError> {
    reader.read_byte_record(record).map_err(|e| {
        let message = e.to_string();
        match e.into_kind() {
            csv::ErrorKind::Io(io) => ReadError::Io(io),
            _ => ReadError::Malformed(message),
        }
    })
}

/// The header names of `record`, decoded and trimmed.
pub fn header_names(record: &csv::ByteRecord) -> Vec<String> {
    record
        .iter()
        .map(|f| decode_field(f).trim().to_string())
        .collect()
}

/// True when `record` cannot be a header: every name is blank, or every non-blank name is a
/// number (a data row where the header should be).
pub fn looks_headerless(names: &[String]) -> bool {
    let non_blank: Vec<&String> = names.iter().filter(|n| !n.is_empty()).collect();
    non_blank.is_empty() || non_blank.iter().all(|n| n.parse::<f64>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut r = reader(bytes).unwrap();
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        while next_record(&mut r, &mut rec).unwrap() {
            out.push(rec.iter().map(|f| decode_field(f).into_owned()).collect());
        }
        out
    }

    #[test]
    fn bom_crlf_and_quoted_newline() {
        let got = records(b"\xEF\xBB\xBFa,b\r\n1,\"x\r\ny\"\r\n2,z\r\n");
        assert_eq!(got[0], vec!["a", "b"]);
        assert_eq!(got[1], vec!["1", "x\r\ny"]);
        assert_eq!(got[2], vec!["2", "z"]);
    }

    #[test]
    fn short_inputs_and_ragged_rows() {
        assert!(records(b"").is_empty());
        assert_eq!(records(b"a")[0], vec!["a"]);
        // Two of the three BOM bytes are not a BOM: kept, and read as Windows-1252.
        assert_eq!(records(b"\xEF\xBB")[0], vec!["\u{EF}\u{BB}"]);
        let got = records(b"a,b\n1,2,3\n4\n");
        assert_eq!(got[1].len(), 3);
        assert_eq!(got[2].len(), 1);
    }

    #[test]
    fn windows_1252_fallback() {
        assert_eq!(decode_field(b"caf\xe9"), "café");
        assert_eq!(decode_field("café".as_bytes()), "café");
    }

    #[test]
    fn headerless_detection() {
        assert!(looks_headerless(&["".into(), " ".trim().into()]));
        assert!(looks_headerless(&["1".into(), "2.5".into()]));
        assert!(!looks_headerless(&["customerID".into(), "2".into()]));
    }
}
