//! Making text cells safe to open in a spreadsheet ("CSV injection", or formula injection).
//!
//! A cell that starts with `=`, `+`, `-`, `@`, a tab, a carriage return or a line feed can be
//! run as a formula by Excel, LibreOffice or Google Sheets. Following the OWASP guidance
//! (<https://owasp.org/www-community/attacks/CSV_Injection>), such a cell is prefixed with a
//! single quote, which spreadsheets show as text and do not evaluate. The same holds for the
//! variants that the short list misses but spreadsheets still evaluate: the triggers after
//! leading whitespace (` =1+2`: Excel and LibreOffice skip leading spaces when they read a
//! formula), and their full-width forms `＝` `＋` `－` `＠` (U+FF1D, U+FF0B, U+FF0D, U+FF20),
//! which Excel with an East Asian input method converts to the ASCII ones. A cell that is
//! plainly a number (`-2`, `+1.5`, `-1e3`) is left as it is, so numbers stay numbers. Quoting of
//! commas, quotes and line breaks is left to the CSV writer (RFC 4180).
//!
//! The escape is applied only where a file is written for a person to open: the scored CSV
//! of `retainwise predict` and of the results download, and the Excel export. Stored results
//! keep the raw values ([`SafeCsvWriter`] escapes them on the way out), so the pages and the
//! API show a customer id exactly as it was given.

use std::borrow::Cow;
use std::io::{self, Write};

/// The first characters that make a spreadsheet treat a cell as a formula (also after
/// leading whitespace, see [`escape_cell`]).
pub const FORMULA_TRIGGERS: &[char] = &[
    '=', '+', '-', '@', '\t', '\r', '\n', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// True when a spreadsheet could read `text` as a formula: it starts with one of
/// [`FORMULA_TRIGGERS`], possibly after whitespace, and is not plainly a number.
pub fn needs_escape(text: &str) -> bool {
    let rest =
        text.trim_start_matches(|c: char| c.is_whitespace() && c != '\t' && c != '\r' && c != '\n');
    let triggered = text.starts_with(FORMULA_TRIGGERS) || rest.starts_with(FORMULA_TRIGGERS);
    triggered && !is_plain_number(text)
}

/// `text` unchanged, or with a leading `'` when a spreadsheet could read it as a formula
/// ([`needs_escape`]).
pub fn escape_cell(text: &str) -> Cow<'_, str> {
    if needs_escape(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// [`escape_cell`] for a field's bytes (a field that is not UTF-8 is checked on its ASCII
/// start only).
pub fn escape_bytes(field: &[u8]) -> Cow<'_, [u8]> {
    let risky = match std::str::from_utf8(field) {
        Ok(text) => needs_escape(text),
        Err(_) => field
            .iter()
            .find(|b| !matches!(b, b' '))
            .is_some_and(|&b| b.is_ascii() && FORMULA_TRIGGERS.contains(&char::from(b))),
    };
    if risky {
        let mut out = Vec::with_capacity(field.len() + 1);
        out.push(b'\'');
        out.extend_from_slice(field);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(field)
    }
}

/// True for a plain decimal number: optional sign, digits with an optional fraction, an
/// optional exponent (`-2`, `+1.5`, `.5`, `-1e3`). Nothing else: no spaces, no words.
fn is_plain_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A [`Write`] that takes a CSV (as the scorer writes it: `,`-delimited, RFC 4180 quoting) and
/// writes it to `W` with every field made spreadsheet-safe ([`escape_bytes`]), streaming: it
/// holds one record at most. Fields that need no escape are written back byte for byte as the
/// scorer's CSV writer wrote them (same writer settings), so a clean file passes unchanged.
/// Call [`SafeCsvWriter::finish`] at the end (a last record without a line break is written
/// then).
pub struct SafeCsvWriter<W: Write> {
    core: csv_core::Reader,
    /// The same writer settings as the scorer's `csv::WriterBuilder::new()` (RFC 4180 quoting
    /// where needed, `\n` line ends).
    writer: csv_core::Writer,
    inner: W,
    /// Escaped output not yet handed to `inner`.
    pending: Vec<u8>,
    scratch: Vec<u8>,
    field: Vec<u8>,
    ends: Vec<usize>,
    outlen: usize,
    endlen: usize,
}

impl<W: Write> SafeCsvWriter<W> {
    /// A writer escaping into `inner`.
    pub fn new(inner: W) -> SafeCsvWriter<W> {
        SafeCsvWriter {
            core: csv_core::Reader::new(),
            writer: csv_core::Writer::new(),
            inner,
            pending: Vec::new(),
            scratch: vec![0; 4096],
            field: vec![0; 1024],
            ends: vec![0; 16],
            outlen: 0,
            endlen: 0,
        }
    }

    /// The writer underneath (what was written may still be pending: call [`Write::flush`]
    /// first).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Parses `input` (empty: the end of the CSV) and writes every record it completes.
    fn feed(&mut self, mut input: &[u8]) -> io::Result<()> {
        use csv_core::ReadRecordResult as R;
        let at_end = input.is_empty();
        loop {
            let (res, nin, nout, nend) = self.core.read_record(
                input,
                &mut self.field[self.outlen..],
                &mut self.ends[self.endlen..],
            );
            input = &input[nin..];
            self.outlen += nout;
            self.endlen += nend;
            match res {
                R::InputEmpty => return Ok(()),
                R::OutputFull => {
                    let n = self.field.len() * 2;
                    self.field.resize(n, 0);
                }
                R::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                R::Record => {
                    let mut start = 0;
                    for (k, &end) in self.ends[..self.endlen].iter().enumerate() {
                        if k > 0 {
                            emit(&mut self.scratch, &mut self.pending, |out| {
                                let (r, n) = self.writer.delimiter(out);
                                (r, 0, n)
                            });
                        }
                        let mut rest: &[u8] = &escape_bytes(&self.field[start..end]);
                        emit(&mut self.scratch, &mut self.pending, |out| {
                            let (r, i, n) = self.writer.field(rest, out);
                            rest = &rest[i..];
                            (r, i, n)
                        });
                        start = end;
                    }
                    emit(&mut self.scratch, &mut self.pending, |out| {
                        let (r, n) = self.writer.terminator(out);
                        (r, 0, n)
                    });
                    self.outlen = 0;
                    self.endlen = 0;
                    if self.pending.len() >= 64 * 1024 {
                        self.inner.write_all(&self.pending)?;
                        self.pending.clear();
                    }
                    if at_end {
                        return Ok(());
                    }
                }
                R::End => return Ok(()),
            }
        }
    }

    /// Writes what is left and returns the writer underneath, flushed.
    ///
    /// # Errors
    /// Writing failed.
    pub fn finish(mut self) -> io::Result<W> {
        self.feed(&[])?;
        self.flush()?;
        Ok(self.inner)
    }
}

/// Runs one `csv_core` write step until it has written everything, collecting its output.
fn emit(
    scratch: &mut [u8],
    out: &mut Vec<u8>,
    mut step: impl FnMut(&mut [u8]) -> (csv_core::WriteResult, usize, usize),
) {
    loop {
        let (res, _, n) = step(scratch);
        out.extend_from_slice(&scratch[..n]);
        if res == csv_core::WriteResult::InputEmpty {
            return;
        }
    }
}

impl SafeCsvWriter<Vec<u8>> {
    /// The escaped bytes written so far, taken out (for streaming a download chunk by chunk).
    ///
    /// # Errors
    /// None (writing to memory); the signature matches [`Write::flush`].
    pub fn take_output(&mut self) -> io::Result<Vec<u8>> {
        self.flush()?;
        Ok(std::mem::take(&mut self.inner))
    }
}

impl<W: Write> Write for SafeCsvWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            self.feed(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.write_all(&self.pending)?;
        self.pending.clear();
        self.inner.flush()
    }
}

/// Makes a whole CSV spreadsheet-safe at once ([`SafeCsvWriter`] over a slice).
///
/// # Errors
/// None in practice (writing to memory); kept for the signature of [`SafeCsvWriter::finish`].
pub fn escape_csv(csv: &[u8]) -> io::Result<Vec<u8>> {
    let mut w = SafeCsvWriter::new(Vec::with_capacity(csv.len() + 64));
    w.write_all(csv)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_formula_starts_only() {
        assert_eq!(escape_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(escape_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(escape_cell("-2+3"), "'-2+3");
        assert_eq!(escape_cell("+A1"), "'+A1");
        assert_eq!(escape_cell("\tx"), "'\tx");
        assert_eq!(escape_cell("\rx"), "'\rx");
        assert_eq!(escape_cell("\nx"), "'\nx");
        assert_eq!(escape_cell("-"), "'-");
        assert!(matches!(
            escape_cell("0042-ABCD"),
            Cow::Borrowed("0042-ABCD")
        ));
        assert_eq!(escape_cell(""), "");
        assert_eq!(escape_cell("a=b"), "a=b");
    }

    /// OWASP's list after leading whitespace, full-width triggers, and numbers kept as numbers.
    #[test]
    fn escapes_the_variants_spreadsheets_still_run() {
        for cell in [
            " =1+2",
            "  @SUM(A1)",
            "\u{a0}+1+1",
            "\u{3000}-1+2",
            " \t=x",
            "\u{FF1D}1+2",
            "\u{FF0B}1",
            "\u{FF0D}1",
            "\u{FF20}SUM(A1)",
            " \u{FF1D}1",
        ] {
            assert_eq!(escape_cell(cell), format!("'{cell}"), "{cell:?}");
        }
        for number in ["-2", "+1", "-1.5", "+.5", "-1e3", "-2E-7", "12", "0.000001"] {
            assert_eq!(escape_cell(number), number, "{number:?}");
        }
        for not_number in ["-1e", "-.", "+", "-2 ", "-0x1", "-inf", "-NaN", "--1"] {
            assert_eq!(escape_cell(not_number), format!("'{not_number}"));
        }
        assert_eq!(
            &*escape_bytes(b" \xff=x"),
            b" \xff=x",
            "not UTF-8: ASCII start only"
        );
        assert_eq!(&*escape_bytes(b"  =\xff"), b"'  =\xff");
    }

    #[test]
    fn a_csv_is_escaped_field_by_field_and_clean_bytes_pass_unchanged() {
        let clean = "customer_id,churn_probability,summary\nA-1,0.500000,\"Tenure of 2, month-to-month\"\n\"multi\nline\",0.1,\"say \"\"hi\"\"\"\n";
        assert_eq!(escape_csv(clean.as_bytes()).unwrap(), clean.as_bytes());
        let risky = "customer_id,churn_probability,summary\n=1+2,0.5,-2\n\" @x\",-1,\"=A1,B1\"\n";
        let got = String::from_utf8(escape_csv(risky.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            got,
            "customer_id,churn_probability,summary\n'=1+2,0.5,-2\n' @x,-1,\"'=A1,B1\"\n"
        );
        // Fed one byte at a time, and without a final line break: the same bytes.
        let mut w = SafeCsvWriter::new(Vec::new());
        let mut streamed = Vec::new();
        for b in risky.trim_end().as_bytes() {
            w.write_all(&[*b]).unwrap();
            streamed.extend(w.take_output().unwrap());
        }
        streamed.extend(w.finish().unwrap());
        assert_eq!(String::from_utf8(streamed).unwrap(), got);
    }
}
