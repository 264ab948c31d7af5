//! Decoding a customer file to UTF-8 while it streams: encoding detection and transcoding.
//!
//! Spreadsheet programs, CRMs and billing systems write CSV files in several encodings. This
//! module decides which one a file uses from its first bytes and hands the CSV reader UTF-8:
//!
//! - a byte-order mark decides: UTF-8 (`EF BB BF`, Excel's "CSV UTF-8"), UTF-16LE (`FF FE`,
//!   Excel's "Unicode Text") or UTF-16BE (`FE FF`); the mark itself is removed;
//! - without a mark, a sample where ASCII characters alternate with NUL bytes is UTF-16 (some
//!   database tools write it without a mark);
//! - otherwise a sample that is valid UTF-8 is UTF-8, and anything else is windows-1252, the
//!   encoding the WHATWG Encoding Standard (<https://encoding.spec.whatwg.org/#names-and-labels>)
//!   uses for "Latin-1" and what Excel on Windows writes for "CSV (Comma delimited)".
//!
//! Memory is constant: the sample is at most [`SAMPLE_BYTES`], and transcoding works on
//! fixed-size buffers. A UTF-8 file whose invalid bytes appear only after the sample is passed
//! through unchanged; [`crate::csv_input::decode_field`] then reads those fields as
//! windows-1252 (counted in the validation report), so no field is ever reported as "invalid
//! UTF-8".

use std::io::{self, Read};

use serde::Serialize;

/// Bytes read ahead to detect the encoding and, after decoding, the delimiter (64 KiB).
pub const SAMPLE_BYTES: usize = 64 * 1024;

/// Input bytes transcoded per step once past the sample.
const CHUNK: usize = 16 * 1024;

/// The text encoding of a customer file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// UTF-8 without a byte-order mark (also plain ASCII).
    Utf8,
    /// UTF-8 with a byte-order mark.
    Utf8Bom,
    /// UTF-16 little-endian (with a byte-order mark or detected from NUL bytes).
    Utf16Le,
    /// UTF-16 big-endian (with a byte-order mark or detected from NUL bytes).
    Utf16Be,
    /// Windows-1252 (WHATWG's "latin1"/"iso-8859-1" label), chosen when the sample is not UTF-8.
    Windows1252,
}

impl Encoding {
    /// The name shown to users: `"UTF-8"`, `"UTF-8 with BOM"`, `"UTF-16LE"`, `"UTF-16BE"` or
    /// `"windows-1252"`.
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Bom => "UTF-8 with BOM",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Windows1252 => "windows-1252",
        }
    }

    fn transcoder(self) -> Option<&'static encoding_rs::Encoding> {
        match self {
            Encoding::Utf8 | Encoding::Utf8Bom => None,
            Encoding::Utf16Le => Some(encoding_rs::UTF_16LE),
            Encoding::Utf16Be => Some(encoding_rs::UTF_16BE),
            Encoding::Windows1252 => Some(encoding_rs::WINDOWS_1252),
        }
    }
}

/// Detects the encoding of a file from its first bytes; also returns how many leading bytes are
/// a byte-order mark. `complete` is true when `sample` is the whole file (so a multi-byte
/// character cut at its end is an error, not the sample boundary).
pub fn detect(sample: &[u8], complete: bool) -> (Encoding, usize) {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return (Encoding::Utf8Bom, 3);
    }
    if sample.starts_with(&[0xFF, 0xFE]) {
        return (Encoding::Utf16Le, 2);
    }
    if sample.starts_with(&[0xFE, 0xFF]) {
        return (Encoding::Utf16Be, 2);
    }
    if let Some(e) = utf16_without_bom(sample) {
        return (e, 0);
    }
    match std::str::from_utf8(sample) {
        Ok(_) => (Encoding::Utf8, 0),
        // Only the last character is cut by the sample boundary: still UTF-8.
        Err(e) if e.error_len().is_none() && !complete => (Encoding::Utf8, 0),
        Err(_) if mostly_utf8(sample, complete) => (Encoding::Utf8, 0),
        Err(_) => (Encoding::Windows1252, 0),
    }
}

/// True when `sample` holds any valid multi-byte UTF-8 character besides its invalid byte runs:
/// a UTF-8 file with stray windows-1252 bytes (a curly quote pasted from Word, a name typed in
/// another program) is read as UTF-8, and only the cells holding such bytes are read as
/// windows-1252 ([`crate::csv_input::decode_field`], each listed in the report's warnings),
/// rather than every accented character of the file being garbled (`Zoë` → `ZoÃ«`). One valid
/// character is enough: windows-1252 text almost never forms a valid UTF-8 sequence (a lead
/// byte `Ã`–`ß` followed by a byte 0x80–0xBF), and reading a windows-1252 file as UTF-8 still
/// decodes each of its invalid cells correctly and says so, while the opposite mistake garbles
/// valid text in silence. A windows-1252 file's accented letters are all invalid UTF-8 runs, so
/// it keeps its encoding.
fn mostly_utf8(sample: &[u8], complete: bool) -> bool {
    let (mut valid, mut invalid) = (0usize, 0usize);
    let chunks: Vec<_> = sample.utf8_chunks().collect();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        valid += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        // A character cut by the end of a partial sample is not evidence either way.
        let cut = i == last && !complete && chunk.invalid().len() < 4;
        if !chunk.invalid().is_empty() && !cut {
            invalid += 1;
        }
    }
    valid > 0 || invalid == 0
}

/// UTF-16 without a mark: in CSV text most characters are ASCII, so nearly every other byte is
/// NUL. Requires a few characters of evidence so that a stray NUL in a short file does not count.
fn utf16_without_bom(sample: &[u8]) -> Option<Encoding> {
    let pairs = sample.len() / 2;
    if pairs < 4 {
        return None;
    }
    let (mut even_nul, mut odd_nul) = (0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        even_nul += usize::from(pair[0] == 0);
        odd_nul += usize::from(pair[1] == 0);
    }
    let most = pairs * 7 / 10;
    let few = pairs / 20;
    if odd_nul >= most && even_nul <= few {
        Some(Encoding::Utf16Le)
    } else if even_nul >= most && odd_nul <= few {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// Names the format of a file that is plainly not CSV text, from its magic number (or, failing
/// that, NUL bytes left after UTF-16 detection, or more than 2 % control bytes other than tab,
/// line ends and form feed: random bytes hold about 11 %, text written by people none), so that
/// the user is told to export a CSV instead of getting a confusing column error.
pub fn not_text(head: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (
            b"PK\x03\x04",
            "an Excel workbook or other zip archive (.xlsx, .zip)",
        ),
        (
            &[0xD0, 0xCF, 0x11, 0xE0],
            "an old-style Excel workbook (.xls)",
        ),
        (b"%PDF", "a PDF document"),
        (&[0x1F, 0x8B], "a gzip archive"),
        (b"SQLite format 3", "an SQLite database"),
        (&[0x89, b'P', b'N', b'G'], "a PNG image"),
        (&[0xFF, 0xD8, 0xFF], "a JPEG image"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Some(what);
    }
    if matches!(detect(head, true).0, Encoding::Utf8 | Encoding::Windows1252) {
        let nul = head.iter().filter(|&&b| b == 0).count();
        let control = head
            .iter()
            .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C)) || b == 0x7F)
            .count();
        if nul * 100 > head.len() || control * 50 > head.len() {
            return Some("binary data");
        }
    }
    None
}

/// A reader yielding the UTF-8 text of `inner`, whatever its [`Encoding`].
///
/// Reads [`SAMPLE_BYTES`] ahead on construction to detect the encoding; [`DecodeReader::take_sample`]
/// gives the decoded sample (for delimiter detection). Malformed sequences in a transcoded file
/// become U+FFFD, as the WHATWG decoders specify.
pub struct DecodeReader<R> {
    inner: R,
    encoding: Encoding,
    decoder: Option<encoding_rs::Decoder>,
    /// Undecoded input, `raw[raw_pos..]` still to decode.
    raw: Vec<u8>,
    raw_pos: usize,
    /// Decoded output not yet handed out, `out[out_pos..]`.
    out: Vec<u8>,
    out_pos: usize,
    /// The inner reader reached its end.
    eof: bool,
    /// The decoder has been told the input ended and has flushed.
    finished: bool,
    /// The decoded sample, kept until taken.
    sample: String,
    /// The sample is the whole file.
    whole: bool,
    /// What the file is when it is plainly not text (see [`not_text`]).
    not_text: Option<&'static str>,
    /// Bytes of the byte-order mark removed from the start.
    bom: usize,
}

impl<R: Read> DecodeReader<R> {
    /// Reads the sample from `inner` and detects its encoding.
    ///
    /// # Errors
    /// Any I/O error of `inner` while reading the sample.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut head = vec![0u8; SAMPLE_BYTES];
        let n = read_full(&mut inner, &mut head)?;
        head.truncate(n);
        let eof = n < SAMPLE_BYTES;
        let (encoding, bom) = detect(&head, eof);
        head.drain(..bom);
        let mut me = DecodeReader {
            inner,
            encoding,
            decoder: encoding
                .transcoder()
                .map(|e| e.new_decoder_without_bom_handling()),
            raw: Vec::new(),
            raw_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            eof,
            finished: false,
            sample: String::new(),
            whole: eof,
            not_text: not_text(&head),
            bom,
        };
        match &mut me.decoder {
            None => {
                // UTF-8 passes through; the sample is the head itself (a cut final character
                // or stray invalid bytes are shown lossily, they do not affect detection).
                me.sample = String::from_utf8_lossy(&head).into_owned();
                me.out = head;
            }
            Some(_) => {
                me.raw = head;
                me.fill()?;
                // Decode up to the end of the sample so the sample text is complete.
                let mut text = Vec::new();
                while me.raw_pos < me.raw.len() || (me.eof && !me.finished) {
                    text.extend_from_slice(&me.out[me.out_pos..]);
                    me.out_pos = me.out.len();
                    me.fill()?;
                }
                text.extend_from_slice(&me.out[me.out_pos..]);
                me.sample = String::from_utf8_lossy(&text).into_owned();
                me.out = text;
                me.out_pos = 0;
            }
        }
        Ok(me)
    }

    /// The detected encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Bytes of the byte-order mark removed from the start of the file (0, 2 or 3).
    pub fn bom_len(&self) -> usize {
        self.bom
    }

    /// A reader that passes `inner` through as the rest of a UTF-8 file already detected as
    /// `encoding` ([`Encoding::Utf8`] or [`Encoding::Utf8Bom`]): nothing is read ahead and
    /// nothing sniffed, so a piece of a file read from the middle ([`crate::chunks`]) is read
    /// exactly as the whole file's reader reads those bytes.
    ///
    /// # Panics
    /// When `encoding` is transcoded (UTF-16, windows-1252): their byte offsets are not the
    /// decoded text's, so a file in them is never read in pieces.
    pub fn passthrough(inner: R, encoding: Encoding) -> Self {
        assert!(
            encoding.transcoder().is_none(),
            "only UTF-8 is read from the middle"
        );
        DecodeReader {
            inner,
            encoding,
            decoder: None,
            raw: Vec::new(),
            raw_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            eof: false,
            finished: false,
            sample: String::new(),
            whole: false,
            not_text: None,
            bom: 0,
        }
    }

    /// What the file is when it is plainly not a text file: `"an Excel workbook (.xlsx)"`,
    /// `"a PDF document"`, `"binary data"`, ...; `None` for text.
    pub fn not_text(&self) -> Option<&'static str> {
        self.not_text
    }

    /// Skips the first `n` bytes of decoded output (a line the caller has consumed from the
    /// sample, such as Excel's `sep=;`). `n` is at most the sample's decoded length.
    pub fn skip_decoded(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
    }

    /// True when the sample read on construction is the whole file.
    pub fn sample_is_whole_file(&self) -> bool {
        self.whole
    }

    /// The decoded start of the file (at most about [`SAMPLE_BYTES`] of input), for dialect
    /// detection. Taking it frees its memory; a second call returns an empty string.
    pub fn take_sample(&mut self) -> String {
        std::mem::take(&mut self.sample)
    }

    /// Decodes the next piece of `raw` (reading more input when it is used up) into `out`.
    fn fill(&mut self) -> io::Result<()> {
        let Some(decoder) = &mut self.decoder else {
            return Ok(());
        };
        if self.raw_pos == self.raw.len() && !self.eof {
            self.raw.resize(CHUNK, 0);
            let n = read_full(&mut self.inner, &mut self.raw)?;
            self.raw.truncate(n);
            self.raw_pos = 0;
            self.eof = n == 0;
        }
        let input = &self.raw[self.raw_pos..];
        let room = decoder
            .max_utf8_buffer_length(input.len())
            .unwrap_or(4 * input.len() + 16)
            .max(16);
        self.out.clear();
        self.out.resize(room, 0);
        self.out_pos = 0;
        let last = self.eof;
        let (_, read, written, _) = decoder.decode_to_utf8(input, &mut self.out, last);
        self.raw_pos += read;
        self.out.truncate(written);
        if last && self.raw_pos == self.raw.len() {
            self.finished = true;
        }
        Ok(())
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.out_pos);
                buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.decoder.is_none() {
                // Pass-through UTF-8: the sample is served, the rest comes straight through.
                if !self.out.is_empty() {
                    self.out = Vec::new();
                    self.out_pos = 0;
                }
                return self.inner.read(buf);
            }
            if self.finished {
                return Ok(0);
            }
            self.fill()?;
        }
    }
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (Encoding, String, String) {
        let mut r = DecodeReader::new(bytes).unwrap();
        let sample = r.take_sample();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        (r.encoding(), sample, s)
    }

    fn utf16(text: &str, le: bool, bom: bool) -> Vec<u8> {
        let mut v = Vec::new();
        if bom {
            v.extend_from_slice(if le { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
        }
        for u in text.encode_utf16() {
            v.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        v
    }

    /// A UTF-8 file with one stray windows-1252 byte (a curly quote, 0x93) keeps its UTF-8: its
    /// accented ids are read as written; a windows-1252 file stays windows-1252.
    #[test]
    fn a_stray_windows_1252_byte_in_utf8_text_does_not_make_it_windows_1252() {
        let mut text = Vec::new();
        for i in 0..50 {
            text.extend_from_slice(format!("Zo\u{eb}-{i},caf\u{e9}\n").as_bytes());
        }
        text.extend_from_slice(b"X,\x93quoted\x94\n");
        assert_eq!(detect(&text, true).0, Encoding::Utf8);
        assert_eq!(
            crate::csv_input::decode_field(b"\x93quoted\x94"),
            "\u{201c}quoted\u{201d}"
        );
        assert_eq!(
            detect(b"id,name\n1,Zo\xEB\n2,caf\xE9\n", true).0,
            Encoding::Windows1252
        );
        // One valid character against as many stray bytes, the stray one first: still UTF-8.
        let mixed: &[u8] = b"id\nM\xFCller-1\nZo\xC3\xAB-2\n";
        assert_eq!(detect(mixed, true).0, Encoding::Utf8);
    }

    #[test]
    fn detects_and_decodes_each_encoding() {
        let text = "id,name\n1,café\n";
        assert_eq!(
            decode(text.as_bytes()),
            (Encoding::Utf8, text.into(), text.into())
        );
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(decode(&bom).2, text);
        assert_eq!(decode(&bom).0, Encoding::Utf8Bom);
        for (le, bom) in [(true, true), (false, true), (true, false), (false, false)] {
            let (e, sample, s) = decode(&utf16(text, le, bom));
            assert_eq!(s, text, "le={le} bom={bom}");
            assert_eq!(sample, text);
            assert_eq!(
                e,
                if le {
                    Encoding::Utf16Le
                } else {
                    Encoding::Utf16Be
                }
            );
        }
        let (e, _, s) = decode(b"id,name\n1,caf\xe9 \x80\n");
        assert_eq!(
            (e, s.as_str()),
            (Encoding::Windows1252, "id,name\n1,café €\n")
        );
    }

    #[test]
    fn long_inputs_stream_across_chunks() {
        let line = "0042-ABCD,Fiber optic,Müller,29.85\n";
        let text: String = line.repeat(5000);
        assert!(text.len() > 2 * SAMPLE_BYTES);
        assert_eq!(decode(&utf16(&text, true, true)).2, text);
        assert_eq!(decode(text.as_bytes()).2, text);
        let latin: Vec<u8> = encoding_rs::WINDOWS_1252.encode(&text).0.into_owned();
        assert_eq!(decode(&latin).2, text);
        // A multi-byte character cut by the sample boundary is still UTF-8.
        let mut cut = "a".repeat(SAMPLE_BYTES - 1);
        cut.push_str("é and more");
        assert_eq!(decode(cut.as_bytes()).0, Encoding::Utf8);
    }

    #[test]
    fn tiny_and_empty_inputs() {
        assert_eq!(decode(b"").2, "");
        assert_eq!(decode(b"\xFF\xFE").2, "");
        assert_eq!(decode(b"\xFF\xFEa").2, "\u{FFFD}");
        assert_eq!(decode(b"a").2, "a");
        assert_eq!(decode(b"\xEF\xBB").0, Encoding::Windows1252);
    }

    #[test]
    fn random_bytes_are_binary_and_european_text_is_not() {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let random: Vec<u8> = (0..8192)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(not_text(&random), Some("binary data"));
        let text = "id;name;amount\r\n1;Müller\tFrançois;1.049,34 \u{20ac}\x0c\r\n";
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(text);
        assert_eq!(not_text(&cp1252), None);
        assert_eq!(not_text(text.as_bytes()), None);
    }
}
