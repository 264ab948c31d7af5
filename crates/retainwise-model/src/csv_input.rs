//! Reading customer CSV files: encoding, dialect, field decoding and error mapping.
//!
//! [`open`] puts the input through [`crate::decode`] (byte-order marks, UTF-16, windows-1252)
//! and [`crate::dialect`] (delimiter, decimal comma), then the `csv` crate (RFC 4180 quoting,
//! `\n`, `\r\n` and `\r` line endings, quoted fields spanning lines) configured to be
//! *flexible*: rows may have any number of fields, so that a short or long row becomes a per-row
//! issue for the caller instead of ending the file. Training and scoring both read files this way
//! (the decimal comma of `;` files is applied by the scorer's [`crate::intake`]).

use std::borrow::Cow;
use std::io::{self, Read};

use crate::decode::{DecodeReader, Encoding};
use crate::dialect::{self, Dialect};

/// A CSV reader over `input` (decoded to UTF-8, delimiter detected) that yields every line,
/// header included, as a [`csv::ByteRecord`] with however many fields it has.
///
/// # Errors
/// Any I/O error while reading the sample used for detection.
pub fn reader<R: Read>(input: R) -> io::Result<csv::Reader<impl Read>> {
    Ok(open(input)?.reader)
}

/// A customer file opened for reading: the CSV reader and what was detected.
pub struct Opened<R> {
    /// Yields every record, header included, as UTF-8 bytes (see [`reader`]).
    pub reader: csv::Reader<DecodeReader<R>>,
    /// The file's encoding.
    pub encoding: Encoding,
    /// The file's delimiter and number format.
    pub dialect: Dialect,
}

/// Opens `input`: detects its encoding from the first [`crate::decode::SAMPLE_BYTES`] and its
/// dialect from their decoded text, and returns a flexible CSV reader over the decoded stream.
/// Memory stays bounded by the sample whatever the file's length.
///
/// # Errors
/// Any I/O error while reading the sample.
pub fn open<R: Read>(input: R) -> io::Result<Opened<R>> {
    let mut decoded = DecodeReader::new(input)?;
    let encoding = decoded.encoding();
    let sample = decoded.take_sample();
    let dialect = match dialect::sep_line(&sample) {
        // Excel's delimiter hint line: obeyed, and not part of the data.
        Some((delimiter, len)) => {
            decoded.skip_decoded(len);
            Dialect::with_delimiter(delimiter)
        }
        None => dialect::detect(&sample, decoded.sample_is_whole_file()),
    };
    drop(sample);
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(dialect.delimiter)
        .from_reader(decoded);
    Ok(Opened {
        reader,
        encoding,
        dialect,
    })
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

/// The header names of `record`, decoded and trimmed, without control characters (a NUL from a
/// misdetected UTF-16 file, a stray tab) or byte-order marks (a file saved twice with one).
pub fn header_names(record: &csv::ByteRecord) -> Vec<String> {
    record
        .iter()
        .map(|f| {
            decode_field(f)
                .chars()
                .filter(|c| !c.is_control() && *c != '\u{FEFF}')
                .collect::<String>()
                .trim()
                .to_string()
        })
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
        // Semicolons and UTF-16 are detected.
        assert_eq!(records(b"a;b\n1,5;2\n")[1], vec!["1,5", "2"]);
        let utf16: Vec<u8> = "a\tb\r\n1\t2\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            records(&[&[0xFF, 0xFE], &utf16[..]].concat())[1],
            vec!["1", "2"]
        );
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
