//! Reading customer CSV files: encoding, dialect, field decoding and error mapping.
//!
//! [`open`] puts the input through [`crate::decode`] (byte-order marks, UTF-16, windows-1252)
//! and [`crate::dialect`] (delimiter, decimal comma), then the `csv` crate (RFC 4180 quoting,
//! `\n`, `\r\n` and `\r` line endings, quoted fields spanning lines) configured to be
//! *flexible*: rows may have any number of fields, so that a short or long row becomes a per-row
//! issue for the caller instead of ending the file. Training and scoring both read files this way
//! (the number format found in the sample is applied by the scorer's [`crate::intake`]).

use std::borrow::Cow;
use std::io::{self, Read};

use crate::decode::{DecodeReader, Encoding};
use crate::dialect::{self, Dialect};

/// A record reader over `input` (decoded to UTF-8, delimiter detected) that yields every line,
/// header included, as a [`csv::ByteRecord`] with however many fields it has.
///
/// # Errors
/// Any I/O error while reading the sample used for detection.
pub fn reader<R: Read>(input: R) -> io::Result<Records<DecodeReader<R>>> {
    Ok(open(input)?.reader)
}

/// A customer file opened for reading: the record reader and what was detected.
pub struct Opened<R> {
    /// Yields every record, header included, as UTF-8 bytes (see [`reader`]).
    pub reader: Records<DecodeReader<R>>,
    /// The file's encoding.
    pub encoding: Encoding,
    /// The file's delimiter and number format.
    pub dialect: Dialect,
    /// How many fields most data records of the sample have ([`modal_width`]); `None` when
    /// the sample holds no whole data record.
    pub rows_width: Option<usize>,
}

/// Opens `input`: detects its encoding from the first [`crate::decode::SAMPLE_BYTES`] and its
/// dialect from their decoded text, and returns a flexible record reader over the decoded
/// stream. Memory stays bounded by the sample and one record whatever the file's length.
///
/// # Errors
/// Any I/O error while reading the sample.
pub fn open<R: Read>(input: R) -> io::Result<Opened<R>> {
    let mut decoded = DecodeReader::new(input)?;
    let encoding = decoded.encoding();
    let sample = decoded.take_sample();
    let mut first_line = 1;
    let mut sep_len = 0;
    let whole = decoded.sample_is_whole_file();
    let dialect = match dialect::sep_line(&sample) {
        // Excel's delimiter hint line: obeyed, and not part of the data.
        Some((delimiter, len)) => {
            decoded.skip_decoded(len);
            sep_len = len;
            first_line = 2;
            Dialect::with_delimiter(delimiter, &sample[len..], whole)
        }
        None => dialect::detect(&sample, whole),
    };
    let rows_width = modal_width(&sample.as_bytes()[sep_len..], dialect.delimiter, whole);
    drop(sample);
    // Offsets count file bytes for a file read as it is (UTF-8): the mark and the `sep=`
    // line come before the first byte the record reader sees.
    let base = decoded.bom_len() + sep_len;
    let mut reader = Records::new(decoded, dialect.delimiter, first_line);
    reader.set_offset(base as u64);
    reader.set_rows_width(rows_width);
    Ok(Opened {
        reader,
        encoding,
        dialect,
        rows_width,
    })
}

/// The number of fields most data records of `sample` (the header, its first record, left
/// out) have, read with RFC 4180 quoting; ties go to the narrower width. The last record is
/// left out unless the sample is the `whole` file (it may be cut). `None` without a data
/// record. A stray quote joins some records into one, but the others still make the mode:
/// the width a row of this file has, which tells a line that is a row by itself from a line of
/// a multi-line note better than the header's width (a header often has a field more or less
/// than its rows: a trailing delimiter on either).
pub fn modal_width(sample: &[u8], delimiter: u8, whole: bool) -> Option<usize> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(sample);
    let mut widths: Vec<usize> = Vec::new();
    let mut record = csv::ByteRecord::new();
    while let Ok(true) = reader.read_byte_record(&mut record) {
        widths.push(record.len());
    }
    if !whole {
        widths.pop();
    }
    let mut counts = std::collections::BTreeMap::new();
    for w in widths.into_iter().skip(1) {
        *counts.entry(w).or_insert(0u64) += 1;
    }
    // Ascending widths: `max_by_key` keeps the last maximum, so compare on the reversed width.
    counts
        .into_iter()
        .max_by_key(|&(w, n)| (n, std::cmp::Reverse(w)))
        .map(|(w, _)| w)
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

/// Where in a file a problem is, for a message: record 0 is the header, which has no data row
/// number of its own, so it is named as the header (a message once read "data row 0: in the
/// header"). Displays as `in the header` or `at data row N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowPlace(pub u64);

impl RowPlace {
    /// `in the header, column 3` or `data row 7, column tenure`: a cell's place.
    pub fn cell(self, column: &str) -> String {
        match self.0 {
            0 => format!("in the header, {column}"),
            row => format!("data row {row}, column {column}"),
        }
    }
}

impl std::fmt::Display for RowPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("in the header"),
            row => write!(f, "at data row {row}"),
        }
    }
}

/// Reads the next record into `record`; `Ok(false)` at the end of the input. What else is known
/// about the record (its line, an unclosed quote) is [`Records::last`].
///
/// # Errors
/// [`ReadError::Io`] when the reader fails, [`ReadError::Malformed`] for a record longer than
/// [`Records::set_max_record_bytes`] that is not an unclosed quote.
pub fn next_record<R: Read>(
    reader: &mut Records<R>,
    record: &mut csv::ByteRecord,
) -> Result<bool, ReadError> {
    reader.read(record)
}

/// Where a quoted field that was never closed was cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuoteEnd {
    /// The file ended inside the quoted field.
    EndOfFile,
    /// The quoted field ran on into this line, which reads as a whole record of its own.
    SwallowedRecord {
        /// The physical line (1-based) that would have been swallowed.
        line: u64,
    },
    /// The quoted field closes on this later line, as RFC 4180 allows, but the line it opened
    /// on and this line each read as a whole record: most likely two rows joined by a stray
    /// quote. The record is kept whole (not cut) and must be rejected, never scored: its
    /// fields mix two rows.
    JoinsRows {
        /// The physical line (1-based) where the quote closes.
        line: u64,
    },
    /// The quoted field ran on past line breaks for more than this many bytes.
    TooLong {
        /// The limit that was reached ([`Records::set_max_record_bytes`]).
        bytes: usize,
    },
}

/// A `"` that opened a quoted field which is never closed (RFC 4180 quoting read strictly would
/// make it swallow every record after it). The record is cut at the end of the line where the
/// quote opened, and reading goes on from the next line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnclosedQuote {
    /// The physical line (1-based, counting `\n`, `\r\n` and a lone `\r`) where the quote is.
    pub line: u64,
    /// The field (0-based) the quote opens.
    pub field: usize,
    /// How the unclosed field was found out.
    pub end: QuoteEnd,
}

impl UnclosedQuote {
    /// The problem in words, for a person fixing the file: where the quote is and how it was
    /// found out (the one wording of it for scoring, training and the header check).
    pub fn describe(&self) -> String {
        let at = format!(
            "the quote (\") that opens field {} on line {}",
            self.field + 1,
            self.line
        );
        match self.end {
            QuoteEnd::EndOfFile => format!("{at} is never closed before the end of the file"),
            QuoteEnd::SwallowedRecord { line } => format!(
                "{at} is never closed (it would swallow line {line}, a whole row of its own, and every row up to the next quote)"
            ),
            QuoteEnd::TooLong { bytes } => format!("{at} is not closed within {bytes} bytes"),
            QuoteEnd::JoinsRows { line } => format!(
                "{at} closes only on line {line}, joining two lines that each read as a whole row"
            ),
        }
    }

    /// True when the record was cut at the end of the quote's line and the lines after it are
    /// read as records of their own; false when the joined record was kept whole.
    pub fn cut(&self) -> bool {
        !matches!(self.end, QuoteEnd::JoinsRows { .. })
    }
}

/// What is known about the record last read by [`Records::read`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordInfo {
    /// The physical line (1-based) where the record starts.
    pub line: u64,
    /// Set when the record holds a quote that is never closed; the record then holds only the
    /// fields up to the end of the line where the quote opened.
    pub unclosed_quote: Option<UnclosedQuote>,
    /// Offset of the record's first byte (past the blank lines before it) in the reader's
    /// input, counted from [`Records::set_offset`]'s base: where a reader started there with
    /// [`Records::new`] on line [`RecordInfo::line`] reads this record and the ones after it
    /// exactly as this reader does ([`crate::chunks`]).
    pub start: u64,
}

/// Default for [`Records::set_max_record_bytes`]: 4 MiB.
pub const MAX_RECORD_BYTES: usize = 4 << 20;

/// Bytes read from the underlying reader at a time.
const CHUNK: usize = 64 * 1024;

/// A flexible CSV record reader (rows may have any number of fields) with RFC 4180 quoting,
/// `\n`, `\r\n` and `\r` line endings, blank lines skipped — the `csv` crate's parser
/// (`csv_core`) — that also catches the one quoting mistake that parser cannot: a `"` opening a
/// field that is never closed. Read strictly, such a field runs on to the next `"` or the end of
/// the file and swallows every record in between, silently. Here a quoted field that runs past
/// a line break into a line that is a whole record by itself (as many fields as the header or,
/// from [`WIDE_HEADER`] fields on, one fewer;
/// [`Records::set_width`]), or to the end of the file, or past
/// [`Records::set_max_record_bytes`], is taken to be unclosed: the record is cut at the end of
/// the line where the quote opened ([`RecordInfo::unclosed_quote`] says so) and the lines after
/// it are read again as records of their own. A `"` inside an unquoted field (`55" TV`) is an
/// ordinary character, as in RFC 4180 readers.
pub struct Records<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    core: csv_core::Reader,
    delimiter: u8,
    width: Option<usize>,
    /// The width most rows have ([`modal_width`]), when known.
    rows_width: Option<usize>,
    max_record_bytes: usize,
    /// The current record's bytes as read (for finding where a quote opened, and re-reading).
    raw: Vec<u8>,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// The physical line of the next unread byte.
    line: u64,
    /// The last byte consumed was a `\r` (so a `\n` right after it ends no further line).
    after_cr: bool,
    /// Offset in the input of `raw`'s first byte.
    consumed: u64,
    last: RecordInfo,
}

impl<R: Read> Records<R> {
    /// A reader of `inner`, fields separated by `delimiter`, whose first byte is on physical
    /// line `first_line` of the file.
    pub fn new(inner: R, delimiter: u8, first_line: u64) -> Records<R> {
        Records {
            inner,
            buf: vec![0; CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            width: None,
            rows_width: None,
            max_record_bytes: MAX_RECORD_BYTES,
            raw: Vec::new(),
            out: vec![0; 4096],
            ends: vec![0; 64],
            line: first_line,
            after_cr: false,
            consumed: 0,
            last: RecordInfo::default(),
        }
    }

    /// Counts [`RecordInfo::start`] from `base`: the offset of the reader's next unread byte in
    /// the file (bytes before it that the reader never sees, such as a byte-order mark).
    pub fn set_offset(&mut self, base: u64) {
        self.consumed = base;
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The number of fields of a whole record (the header's): a line inside a quoted field with
    /// at least this many fields (and at least 2; one fewer from [`WIDE_HEADER`] fields on, as
    /// rows are often one field short of their header) shows the quote was never closed.
    pub fn set_width(&mut self, width: usize) {
        self.width = Some(width);
    }

    /// The number of fields most of the file's rows have ([`modal_width`]; [`open`] sets it
    /// from the sample). With it, a line inside a quoted field is a whole record when it has
    /// at least as many fields as the narrower of the rows and the header, whatever their
    /// width; without it, the header's width alone decides (see [`Records::set_width`]).
    pub fn set_rows_width(&mut self, width: Option<usize>) {
        self.rows_width = width;
    }

    /// The width most rows have, when known ([`Records::set_rows_width`]).
    pub fn rows_width(&self) -> Option<usize> {
        self.rows_width
    }

    /// Most bytes one record may take in the file (default [`MAX_RECORD_BYTES`]); a longer one
    /// is an error, or an unclosed quote when a quoted field spans its line breaks.
    pub fn set_max_record_bytes(&mut self, bytes: usize) {
        self.max_record_bytes = bytes.max(1);
    }

    /// The line and quoting of the record last read.
    pub fn last(&self) -> &RecordInfo {
        &self.last
    }

    /// Reads the next record into `record`; `Ok(false)` at the end of the input.
    ///
    /// # Errors
    /// [`ReadError::Io`] when the underlying reader fails; [`ReadError::Malformed`] for a
    /// record longer than the limit that is not an unclosed quote.
    pub fn read(&mut self, record: &mut csv::ByteRecord) -> Result<bool, ReadError> {
        use csv_core::ReadRecordResult as R;
        record.clear();
        self.raw.clear();
        let (mut outlen, mut endlen) = (0, 0);
        let mut quotes = QuoteScan::new(self.delimiter, self.width, self.rows_width);
        let mut quoted = false;
        // A verdict that keeps the record whole ([`QuoteEnd::JoinsRows`]), applied at its end.
        let mut joined: Option<Verdict> = None;
        loop {
            if self.pos == self.end && !self.eof {
                self.fill()?;
            }
            let input = &self.buf[self.pos..self.end];
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[outlen..], &mut self.ends[endlen..]);
            let consumed = &self.buf[self.pos..self.pos + nin];
            quoted = quoted || consumed.contains(&b'"');
            self.raw.extend_from_slice(consumed);
            self.pos += nin;
            outlen += nout;
            endlen += nend;
            let at_end = self.eof && self.pos == self.end;
            // The scan runs only once a record holds a quote (most never do).
            let verdict = if quoted {
                quotes.feed(&self.raw, at_end && matches!(res, R::Record | R::End))
            } else {
                None
            };
            let verdict = match verdict {
                None if self.raw.len() > self.max_record_bytes => {
                    match quotes.open_across_lines() {
                        Some(open) => Some(Verdict {
                            open,
                            end: QuoteEnd::TooLong {
                                bytes: self.max_record_bytes,
                            },
                        }),
                        None => {
                            let line = self.line + leading_breaks(&self.raw, self.after_cr);
                            return Err(ReadError::Malformed(format!(
                                "the record starting on line {line} is longer than {} bytes",
                                self.max_record_bytes
                            )));
                        }
                    }
                }
                v => v,
            };
            match verdict {
                Some(v) if v.cuts() => {
                    self.cut_at_unclosed_quote(v, record)?;
                    return Ok(true);
                }
                Some(v) => joined = Some(v),
                None => {}
            }
            match res {
                R::InputEmpty => continue,
                R::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                R::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                R::Record => {
                    let mut start = 0;
                    for &end in &self.ends[..endlen] {
                        record.push_field(&self.out[start..end]);
                        start = end;
                    }
                    let lead = leading_breaks(&self.raw, self.after_cr);
                    let first = self.line + lead;
                    let unclosed_quote = joined.take().map(|v| {
                        let open_line =
                            first + line_breaks(&self.raw[..v.open.at], self.after_cr) - lead;
                        let end = match v.end {
                            QuoteEnd::JoinsRows { line } => QuoteEnd::JoinsRows {
                                line: open_line + line,
                            },
                            other => other,
                        };
                        UnclosedQuote {
                            line: open_line,
                            field: v.open.field,
                            end,
                        }
                    });
                    let start = self.consumed + leading_break_bytes(&self.raw) as u64;
                    self.consumed += self.raw.len() as u64;
                    self.advance_lines(self.raw.len());
                    self.last = RecordInfo {
                        line: first,
                        unclosed_quote,
                        start,
                    };
                    return Ok(true);
                }
                R::End => {
                    self.last = RecordInfo {
                        line: self.line,
                        unclosed_quote: None,
                        start: self.consumed + self.raw.len() as u64,
                    };
                    return Ok(false);
                }
            }
        }
    }

    /// Refills the read buffer (only called when it is used up).
    fn fill(&mut self) -> Result<(), ReadError> {
        if self.buf.len() < CHUNK {
            self.buf.resize(CHUNK, 0);
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    self.pos = 0;
                    self.end = n;
                    self.eof = n == 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Ends the current record at the end of the line where the unclosed quote opened: fills
    /// `record` with the fields up to there, records what happened, and puts the rest of the
    /// record's bytes back in front of the unread input.
    fn cut_at_unclosed_quote(
        &mut self,
        v: Verdict,
        record: &mut csv::ByteRecord,
    ) -> Result<(), ReadError> {
        let raw = std::mem::take(&mut self.raw);
        let line_end = raw[v.open.at..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .map_or(raw.len(), |i| v.open.at + i);
        let rest = if raw.get(line_end) == Some(&b'\r') && raw.get(line_end + 1) == Some(&b'\n') {
            line_end + 2
        } else {
            (line_end + 1).min(raw.len())
        };
        // The fields up to the end of the quote's line, as the parser reads them alone.
        let mut core = csv_core::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .build();
        let mut out = vec![0; line_end + 1];
        let mut ends = vec![0; line_end + 2];
        let (mut nin, mut nout, mut nend) = (0, 0, 0);
        loop {
            let (res, i, o, e) =
                core.read_record(&raw[nin..line_end], &mut out[nout..], &mut ends[nend..]);
            nin += i;
            nout += o;
            nend += e;
            if matches!(
                res,
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End
            ) {
                break;
            }
        }
        record.clear();
        let mut start = 0;
        for &end in &ends[..nend] {
            record.push_field(&out[start..end]);
            start = end;
        }
        let first = self.line + leading_breaks(&raw, self.after_cr);
        let open_line = first + line_breaks(&raw[..v.open.at], self.after_cr)
            - leading_breaks(&raw, self.after_cr);
        let end = match v.end {
            QuoteEnd::SwallowedRecord { line } => QuoteEnd::SwallowedRecord {
                line: open_line + line,
            },
            other => other,
        };
        let start = self.consumed + leading_break_bytes(&raw) as u64;
        self.consumed += rest as u64;
        self.raw = raw;
        self.advance_lines(rest);
        // Re-read what followed the quote's line.
        let mut pending = self.raw[rest..].to_vec();
        pending.extend_from_slice(&self.buf[self.pos..self.end]);
        self.buf = pending;
        self.pos = 0;
        self.end = self.buf.len();
        self.core.reset();
        self.raw.clear();
        self.last = RecordInfo {
            line: first,
            unclosed_quote: Some(UnclosedQuote {
                line: open_line,
                field: v.open.field,
                end,
            }),
            start,
        };
        Ok(())
    }

    /// Counts the line breaks of the first `n` bytes of the current record into `self.line`.
    fn advance_lines(&mut self, n: usize) {
        let bytes = &self.raw[..n];
        self.line += line_breaks(bytes, self.after_cr);
        if let Some(&last) = bytes.last() {
            self.after_cr = last == b'\r';
        }
    }
}

/// Line breaks in `bytes` (`\n`, `\r\n`, a lone `\r`); `after_cr`: the byte before was a `\r`,
/// so a leading `\n` completes that break instead of making one.
fn line_breaks(bytes: &[u8], after_cr: bool) -> u64 {
    let mut n = 0;
    let mut prev_cr = after_cr;
    for &b in bytes {
        if b == b'\r' || (b == b'\n' && !prev_cr) {
            n += 1;
        }
        prev_cr = b == b'\r';
    }
    n
}

/// Bytes of line breaks before the first byte of `bytes` that is not one.
fn leading_break_bytes(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| *b != b'\n' && *b != b'\r')
        .unwrap_or(bytes.len())
}

/// Line breaks before the first byte of `bytes` that is not one (the blank lines a record's
/// bytes start with).
fn leading_breaks(bytes: &[u8], after_cr: bool) -> u64 {
    let k = bytes
        .iter()
        .position(|b| *b != b'\n' && *b != b'\r')
        .unwrap_or(bytes.len());
    line_breaks(&bytes[..k], after_cr)
}

/// Where an open quoted field starts in a record's bytes.
#[derive(Clone, Copy, Debug)]
struct Open {
    /// Offset of the opening `"`.
    at: usize,
    /// The field it opens (0-based).
    field: usize,
}

/// An unclosed quote found by [`QuoteScan`].
struct Verdict {
    open: Open,
    end: QuoteEnd,
}

impl Verdict {
    /// Whether the reader cuts the record at the quote's line ([`QuoteEnd::JoinsRows`] keeps it).
    fn cuts(&self) -> bool {
        !matches!(self.end, QuoteEnd::JoinsRows { .. })
    }
}

impl Verdict {
    /// The quote `open` swallowed the line of `raw` starting at byte `start`; its line number
    /// is relative to the quote's line (the reader makes it absolute).
    fn swallowed(raw: &[u8], open: Open, start: usize) -> Verdict {
        let line = line_breaks(&raw[open.at..start], false);
        Verdict {
            open,
            end: QuoteEnd::SwallowedRecord { line },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanState {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A `"` inside a quoted field: closing it, or the first of a doubled `""`.
    QuoteInQuoted,
    /// The record's terminator was reached.
    Done,
}

/// Follows a record's bytes through the quoting rules of `csv_core` (a `"` is special only at
/// the start of a field; `""` inside is one quote; after a closing quote other bytes continue
/// the field unquoted), remembering where an open quoted field started and checking each whole
/// line inside it. Incremental: [`QuoteScan::feed`] takes the record's bytes so far.
struct QuoteScan {
    delimiter: u8,
    width: Option<usize>,
    rows_width: Option<usize>,
    state: ScanState,
    field: usize,
    /// Bytes of the record already scanned.
    pos: usize,
    open: Option<Open>,
    /// Start of the current line inside the open quoted field, once it has crossed a break.
    inner_line: Option<usize>,
    /// A quoted field that crossed a line break and was then closed by a `"` on a later line
    /// (e.g. the `"` of `55" TV` in the next customer's row): where it opened, and where the
    /// line that closed it starts. When that line ends, it is checked as a swallowed record.
    crossed: Option<(Open, usize)>,
    /// The field that crossed a line break was closed by a `"` followed by more text (`55" TV`):
    /// not RFC 4180 quoting, so the close is no evidence the field was meant to span lines.
    loose_close: bool,
}

impl QuoteScan {
    fn new(delimiter: u8, width: Option<usize>, rows_width: Option<usize>) -> QuoteScan {
        QuoteScan {
            delimiter,
            width,
            rows_width,
            state: ScanState::StartRecord,
            field: 0,
            pos: 0,
            open: None,
            inner_line: None,
            crossed: None,
            loose_close: false,
        }
    }

    /// Scans `raw[self.pos..]`; `at_end`: these are all the record's bytes and the input has
    /// ended. Returns the unclosed quote as soon as it shows.
    fn feed(&mut self, raw: &[u8], at_end: bool) -> Option<Verdict> {
        let q = b'"';
        while self.pos < raw.len() {
            let i = self.pos;
            let b = raw[i];
            self.pos += 1;
            let brk = b == b'\n' || b == b'\r';
            match self.state {
                ScanState::Done => return None,
                ScanState::StartRecord if brk => {}
                ScanState::StartRecord | ScanState::StartField => {
                    if b == q {
                        self.state = ScanState::InQuoted;
                        self.open = Some(Open {
                            at: i,
                            field: self.field,
                        });
                        self.inner_line = None;
                    } else if b == self.delimiter {
                        self.field += 1;
                        self.state = ScanState::StartField;
                    } else if brk {
                        self.state = ScanState::Done;
                        if let Some(v) = self.swallowed(raw, i) {
                            return Some(v);
                        }
                    } else {
                        self.state = ScanState::InField;
                    }
                }
                ScanState::InField => {
                    if b == self.delimiter {
                        self.field += 1;
                        self.state = ScanState::StartField;
                    } else if brk {
                        self.state = ScanState::Done;
                        if let Some(v) = self.swallowed(raw, i) {
                            return Some(v);
                        }
                    }
                }
                ScanState::InQuoted => {
                    if b == q {
                        self.state = ScanState::QuoteInQuoted;
                    } else if brk {
                        if let Some(start) = self.inner_line {
                            if self.is_whole_record(&raw[start..i]) {
                                let open = self.open.expect("inside a quoted field");
                                return Some(Verdict::swallowed(raw, open, start));
                            }
                        }
                        self.inner_line = Some(i + 1);
                        if let Some(open) = self.open {
                            self.crossed = Some((open, i + 1));
                        }
                    }
                }
                ScanState::QuoteInQuoted => {
                    if b == q {
                        self.state = ScanState::InQuoted;
                    } else if b == self.delimiter {
                        self.open = None;
                        self.field += 1;
                        self.state = ScanState::StartField;
                    } else if brk {
                        self.open = None;
                        self.state = ScanState::Done;
                        if let Some(v) = self.swallowed(raw, i) {
                            return Some(v);
                        }
                    } else {
                        // The field closed on a later line than it opened: when that line's
                        // text before the closing `"` is already a whole record, the `"` was
                        // that record's own (`55" TV`), not the close of this field.
                        if let (Some(start), Some(open)) = (self.inner_line, self.open) {
                            if self.is_whole_record(&raw[start..i - 1]) {
                                return Some(Verdict::swallowed(raw, open, start));
                            }
                        }
                        self.loose_close |= self.inner_line.is_some();
                        self.open = None;
                        self.state = ScanState::InField;
                    }
                }
            }
        }
        if at_end && self.state == ScanState::InQuoted {
            return self.open.map(|open| Verdict {
                open,
                end: QuoteEnd::EndOfFile,
            });
        }
        if at_end && self.state != ScanState::Done {
            // The last record ends with the input, not a line break.
            return self.swallowed(raw, raw.len());
        }
        None
    }

    /// At the end of a record (its line ends at `end`) whose quoted field crossed a line break
    /// and was closed on a later line: an unclosed quote when that later line is a whole
    /// record on its own, unless the joined record is well formed — exactly the header's field
    /// count, and the quote closed as RFC 4180 closes one (followed by a delimiter or the line
    /// end). A legitimate multi-line note passes; a literal `55" TV` in the next customer's own
    /// row does not, whatever the field counts.
    fn swallowed(&self, raw: &[u8], end: usize) -> Option<Verdict> {
        let (open, start) = self.crossed?;
        let width = self.width?;
        if !self.is_whole_record(&raw[start..end]) {
            return None;
        }
        let well_formed = (self.min_fields(width)..=self.max_fields(width))
            .contains(&(self.field + 1))
            && !self.loose_close;
        if !well_formed {
            return Some(Verdict::swallowed(raw, open, start));
        }
        // Well formed, yet the quote's own line holds a whole row's fields too (`…,"Male,0,…`
        // then `…,Male",0,…`): two rows joined. Kept whole and flagged: which of its fields
        // belong to which row cannot be known, so it must not be scored.
        let line_end = raw[open.at..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .map_or(raw.len(), |i| open.at + i);
        let after = raw[open.at..line_end]
            .iter()
            .filter(|b| **b == self.delimiter)
            .count();
        if open.field + 1 + after < self.min_fields(width).max(2) {
            return None;
        }
        let line = line_breaks(&raw[open.at..start], false);
        Some(Verdict {
            open,
            end: QuoteEnd::JoinsRows { line },
        })
    }

    /// The open quoted field, when it has run past a line break.
    fn open_across_lines(&self) -> Option<Open> {
        self.open
            .filter(|_| self.state == ScanState::InQuoted && self.inner_line.is_some())
    }

    /// Fewest fields a line needs to read as a whole record in a file whose header has `width`:
    /// one fewer than the header once it has [`WIDE_HEADER`] fields or more, since a header often
    /// has one field more than its rows (a trailing delimiter, `…,Churn,`) or one less (a
    /// nameless index column), and a quote that swallowed such rows must still be found out.
    /// Narrower files keep the exact count: with few fields, a line of a multi-line note could
    /// too easily look like a row.
    ///
    /// When the rows' own width is known ([`Records::set_rows_width`]) it replaces this rule:
    /// the narrower of the rows and the header, in a file of any width (a narrow file whose
    /// rows end with a delimiter the header lacks is read as surely as a wide one).
    fn min_fields(&self, width: usize) -> usize {
        match self.rows_width {
            Some(rows) => rows.min(width),
            None if width >= WIDE_HEADER => width - 1,
            None => width,
        }
    }

    /// Most fields a well-formed record has: the wider of the rows and the header.
    fn max_fields(&self, width: usize) -> usize {
        self.rows_width.map_or(width, |rows| rows.max(width))
    }

    /// True when `line` (no line break) has at least as many fields as a whole record. A
    /// quote that opens a field and is not closed within the line is read as a literal
    /// character (its delimiters count): a line that is a row by itself with a stray quote of
    /// its own is still a row.
    fn is_whole_record(&self, line: &[u8]) -> bool {
        let Some(width) = self.width.filter(|w| *w >= 2) else {
            return false;
        };
        let mut fields = 1;
        let mut in_quotes = false;
        let mut at_start = true;
        // Fields before the quote still open, and the delimiters seen since it opened.
        let (mut fields_at_open, mut delimiters_inside) = (0, 0);
        for &b in line {
            if at_start && b == b'"' {
                in_quotes = true;
                at_start = false;
                (fields_at_open, delimiters_inside) = (fields, 0);
            } else if in_quotes {
                if b == b'"' {
                    in_quotes = false;
                } else if b == self.delimiter {
                    delimiters_inside += 1;
                }
            } else if b == self.delimiter {
                fields += 1;
                at_start = true;
            } else {
                at_start = false;
            }
        }
        if in_quotes {
            fields = fields_at_open + delimiters_inside;
        }
        fields >= self.min_fields(width).max(2)
    }
}

/// Header width from which a line one field short of the header still reads as a whole record
/// inside a quoted field ([`Records::set_width`]).
pub const WIDE_HEADER: usize = 6;

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

    /// Every record with what the reader learnt about it, under a header `width` wide.
    fn read_all(bytes: &[u8], width: usize) -> Vec<(Vec<String>, RecordInfo)> {
        let mut r = reader(bytes).unwrap();
        r.set_width(width);
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        while next_record(&mut r, &mut rec).unwrap() {
            let fields = rec.iter().map(|f| decode_field(f).into_owned()).collect();
            out.push((fields, r.last().clone()));
        }
        out
    }

    /// The next row's own quotes must not close the unclosed one in silence: a literal `"` in
    /// it (`55" TV`), or a properly quoted field of its own.
    #[test]
    fn an_unclosed_quote_closed_by_a_later_rows_quote_still_cuts_only_its_row() {
        for (file, width) in [
            (
                &b"id,a,b\n1,x,y\n2,x,\"Samsung\n3,x,55\" TV\n4,x,y\n"[..],
                3,
            ),
            (
                &b"id,a,b,c\n1,x,y,z\n2,x,\"y\n3,\"DSL\",y,z\n4,x,y,z\n"[..],
                4,
            ),
            (&b"id,a,b\n1,x,y\n2,x,\"Samsung\n3,x,55\" TV"[..], 3),
            // The `"` closes in the same column of the next row, so the joined record has
            // exactly the header's field count: the text after the close gives it away.
            (
                &b"id,a,notes,b\n1,x,ok,y\n2,x,\"55 TV,y\n3,x,big 55\" TV,y\n4,x,z,y\n"[..],
                4,
            ),
            (
                &b"id,a,notes,b\r\n1,x,ok,y\r\n2,x,\"55 TV,y\r\n3,x,big 55\" TV,y"[..],
                4,
            ),
        ] {
            let got = read_all(file, width);
            let ids: Vec<&str> = got.iter().map(|(f, _)| f[0].as_str()).collect();
            assert_eq!(ids, ["id", "1", "2", "3", "4"][..got.len()], "{file:?}");
            assert!(got.len() >= 4, "{file:?}: {got:?}");
            assert!(got[2].1.unclosed_quote.is_some(), "{file:?}");
            assert!(got[3].1.unclosed_quote.is_none(), "{file:?}");
        }
        // The next row opens a stray quote of its own in a later column: it is still a row by
        // itself, so each of the two is cut at its own line and the row after them is read.
        let got = read_all(
            b"id,a,b,c,d\n1,x,y,z,w\n2,\"x,y,z,w\n3,x,\"y,z,w\n4,x,y,z,w\n",
            5,
        );
        let ids: Vec<&str> = got.iter().map(|(f, _)| f[0].as_str()).collect();
        assert_eq!(ids, ["id", "1", "2", "3", "4"], "{got:?}");
        assert!(got[2].1.unclosed_quote.is_some() && got[3].1.unclosed_quote.is_some());
        assert!(got[4].1.unclosed_quote.is_none());
        // A multi-line first field that closes into a whole record is a real record.
        let got = read_all(b"note,a,b\n\"line one\nline, two\",x,y\n1,x,y\n", 3);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|(_, i)| i.unclosed_quote.is_none()));
        assert_eq!(got[1].0[0], "line one\nline, two");
    }

    /// A stray quote opening a field on one row and a stray quote closing the same column on
    /// the next, each row whole by itself: RFC 4180 reads one field across both, so the joined
    /// record is kept whole but flagged (it mixes two rows and must never be scored); a real
    /// multi-line note whose lines are not rows by themselves is left alone.
    #[test]
    fn two_rows_joined_by_a_well_formed_quote_are_flagged_not_cut() {
        for (file, first) in [
            (
                &b"id,g,a,b\n1,x,0,y\n2,\"Male,0,y\n3,Male\",1,z\n4,x,0,y\n"[..],
                3,
            ),
            (
                &b"id,g,a,b\r\n1,x,0,y\r\n2,\"Male,0,y\r\n3,Male\",1,z"[..],
                3,
            ),
        ] {
            let got = read_all(file, 4);
            let ids: Vec<&str> = got.iter().map(|(f, _)| f[0].as_str()).collect();
            assert_eq!(&ids[..3], ["id", "1", "2"], "{file:?}");
            let q = got[2].1.unclosed_quote.clone().expect("flagged");
            assert_eq!(q.line, first);
            assert_eq!(q.end, QuoteEnd::JoinsRows { line: first + 1 });
            assert!(!q.cut());
            assert!(
                q.describe().contains("closes only on line 4"),
                "{}",
                q.describe()
            );
            // Kept whole: the next record read is the one after both lines.
            if let Some((next, info)) = got.get(3) {
                assert_eq!(next[0], "4");
                assert_eq!(info.line, 5);
            }
        }
        // A quoted note across two lines, neither a row by itself: one ordinary field.
        let got = read_all(b"id,note,a,b\n1,\"first, line\nsecond\",0,y\n2,x,0,y\n", 4);
        assert!(got.iter().all(|(_, i)| i.unclosed_quote.is_none()));
        assert_eq!(got[1].0[1], "first, line\nsecond");
    }

    #[test]
    fn an_unclosed_quote_cuts_its_row_and_the_rest_is_read() {
        let got = read_all(b"id,a,b\n1,x,y\n2,\"oops,y\n3,x,y\n4,x,y\n", 3);
        let ids: Vec<&str> = got.iter().map(|(f, _)| f[0].as_str()).collect();
        assert_eq!(ids, ["id", "1", "2", "3", "4"]);
        let q = got[2].1.unclosed_quote.clone().expect("row 2 is flagged");
        assert_eq!((q.line, q.field), (3, 1));
        assert_eq!(q.end, QuoteEnd::SwallowedRecord { line: 4 });
        assert_eq!(got[2].0, ["2", "oops,y"]);
        assert_eq!(got[3].1.line, 4);
        assert!(got[3].1.unclosed_quote.is_none());
        // The quote reaching the end of the file, CRLF and CR line endings.
        for (file, lines) in [
            (&b"id,a,b\r\n1,x,y\r\n\"2,x\r\nz\r\n"[..], [1, 2, 3, 4]),
            (&b"id,a,b\r1,x,y\r\"2,x\rz\r"[..], [1, 2, 3, 4]),
        ] {
            let got = read_all(file, 3);
            let fields: Vec<Vec<String>> = got.iter().map(|(f, _)| f.clone()).collect();
            assert_eq!(fields[2], ["2,x"], "{fields:?}");
            assert_eq!(fields[3], ["z"]);
            let q = got[2].1.unclosed_quote.clone().unwrap();
            assert_eq!((q.line, q.end), (3, QuoteEnd::EndOfFile));
            let at: Vec<u64> = got.iter().map(|(_, i)| i.line).collect();
            assert_eq!(at, lines);
        }
    }

    #[test]
    fn closed_and_literal_quotes_are_left_alone() {
        // A quote inside an unquoted field is literal; a quoted note may span lines as long
        // as no line inside it is a whole record; blank lines are skipped but counted.
        let got = read_all(
            b"id,a,b\n1,55\" TV,y\n2,\"two\nlines, here\",y\n\n3,\"say \"\"hi\"\"\",y\n",
            3,
        );
        let fields: Vec<Vec<String>> = got.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(fields[1], ["1", "55\" TV", "y"]);
        assert_eq!(fields[2], ["2", "two\nlines, here", "y"]);
        assert_eq!(fields[3], ["3", "say \"hi\"", "y"]);
        assert!(got.iter().all(|(_, i)| i.unclosed_quote.is_none()));
        let at: Vec<u64> = got.iter().map(|(_, i)| i.line).collect();
        assert_eq!(at, [1, 2, 3, 6]);
    }

    #[test]
    fn a_long_unclosed_quote_is_cut_at_the_limit() {
        let mut file = b"id,a\n1,\"open\n".to_vec();
        for _ in 0..200 {
            file.extend_from_slice(b"no delimiter here\n");
        }
        let mut r = reader(&file[..]).unwrap();
        r.set_width(2);
        r.set_max_record_bytes(1000);
        let mut rec = csv::ByteRecord::new();
        let mut n = 0;
        let mut flagged = Vec::new();
        while next_record(&mut r, &mut rec).unwrap() {
            n += 1;
            if let Some(q) = &r.last().unclosed_quote {
                flagged.push((q.line, q.end.clone()));
            }
        }
        assert_eq!(flagged, [(2, QuoteEnd::TooLong { bytes: 1000 })]);
        assert_eq!(
            n,
            2 + 200,
            "the header, the cut row and every line after it"
        );
        // A single line over the limit without a quote is an error naming its line.
        let mut r = reader(&b"id,a\n1,aaaaaaaaaaaaaaaaaaaa\n"[..]).unwrap();
        r.set_max_record_bytes(10);
        assert!(next_record(&mut r, &mut rec).unwrap());
        match next_record(&mut r, &mut rec) {
            Err(ReadError::Malformed(m)) => assert!(m.contains("line 2"), "{m}"),
            other => panic!("{other:?}"),
        }
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
