//! The CSV dialect of a customer file: which delimiter separates fields and how numbers are
//! written, detected from the decoded start of the file.
//!
//! Excel writes `,` or, in locales whose decimal separator is the comma, `;`; "Unicode Text"
//! exports and database tools write tab; some billing systems write `|`. The delimiter is the
//! candidate that splits the header into the most fields while splitting the following lines
//! into the same number (quotes respected: a delimiter inside a quoted field does not count).
//!
//! The decimal separator is not implied by the delimiter (a `;` file may write `29.85`, a tab
//! file exported by a European Excel writes `29,85`): [`numbers`] reads it from the numbers of
//! the sample's rows.

use serde::Serialize;

use crate::values::{self, NumberFormat, SeparatorEvidence};

/// The delimiters considered, in order of preference when two explain the sample equally well.
pub const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Records of the sample looked at.
const SAMPLE_RECORDS: usize = 50;

/// How a file's fields and numbers are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Dialect {
    /// The field delimiter byte: `,`, `;`, tab or `|`.
    #[serde(serialize_with = "serialize_delimiter")]
    pub delimiter: u8,
    /// Number format, from the sample's numbers ([`numbers`]).
    #[serde(skip)]
    pub numbers: NumberFormat,
}

fn serialize_delimiter<S: serde::Serializer>(d: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(delimiter_name(*d))
}

/// The name shown for a delimiter: `","`, `";"`, `"tab"` or `"|"`.
pub fn delimiter_name(d: u8) -> &'static str {
    match d {
        b';' => ";",
        b'\t' => "tab",
        b'|' => "|",
        _ => ",",
    }
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: b',',
            numbers: NumberFormat::default(),
        }
    }
}

impl Dialect {
    /// The dialect of `delimiter` with the number format of `sample` (see [`numbers`]).
    pub fn with_delimiter(delimiter: u8, sample: &str, complete: bool) -> Dialect {
        Dialect {
            delimiter,
            numbers: numbers(sample, delimiter, complete),
        }
    }

    /// The delimiter's display name (see [`delimiter_name`]).
    pub fn delimiter_name(&self) -> &'static str {
        delimiter_name(self.delimiter)
    }
}

/// Detects the dialect of `sample`, the decoded start of a file (UTF-8 text, at most a few
/// tens of KiB). `complete` is true when the sample is the whole file; otherwise its last record
/// may be cut and is not used.
///
/// For each candidate the first 50 records are split respecting quotes. A
/// candidate is eligible when it splits the header into at least two fields; among eligible
/// ones the highest `header fields × share of later records with that many fields` wins, ties
/// going to the earlier of [`CANDIDATES`]. With no eligible candidate (a one-column file) the
/// delimiter is `,`. The number format is then read by [`numbers`].
pub fn detect(sample: &str, complete: bool) -> Dialect {
    let mut best: Option<(f64, u8)> = None;
    for &d in &CANDIDATES {
        let mut counts = field_counts(sample, d);
        if !complete && counts.len() > 1 {
            counts.pop();
        }
        let Some((&header, rest)) = counts.split_first() else {
            continue;
        };
        if header < 2 {
            continue;
        }
        let consistent = if rest.is_empty() {
            1.0
        } else {
            rest.iter().filter(|&&c| c == header).count() as f64 / rest.len() as f64
        };
        let score = header as f64 * consistent;
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, d));
        }
    }
    Dialect::with_delimiter(best.map_or(b',', |(_, d)| d), sample, complete)
}

/// The number format of `sample` (the decoded start of a file, header first) split on
/// `delimiter`: every cell of its first 50 data records is asked what its spelling tells
/// ([`values::separator_evidence`]). More cells only a decimal comma reads (`29,85`: quoted in
/// a `,` file) than cells only a decimal point reads (`29.85`) give a decimal comma, fewer a
/// decimal point (a cell of the other kind then fails to read and is rejected with its row,
/// never read in silence); as many (none at all: only integers and cells such as `1,516` that
/// read both ways) give [`NumberFormat::undecided`], where each cell is read by its own
/// spelling and a cell with two readings is no number. `complete` as in [`detect`].
pub fn numbers(sample: &str, delimiter: u8, complete: bool) -> NumberFormat {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(sample.as_bytes());
    let mut records: Vec<csv::StringRecord> = reader
        .records()
        .take(SAMPLE_RECORDS + 1)
        .map_while(Result::ok)
        .collect();
    if !complete {
        records.pop();
    }
    let (mut point, mut comma) = (0usize, 0usize);
    for cell in records.iter().take(SAMPLE_RECORDS).flat_map(|r| r.iter()) {
        match values::separator_evidence(cell) {
            Some(SeparatorEvidence::Point) => point += 1,
            Some(SeparatorEvidence::Comma) => comma += 1,
            _ => {}
        }
    }
    NumberFormat {
        decimal_comma: comma > point,
        undecided: comma == point,
    }
}

/// Excel's delimiter hint: a first line `sep=;` (any delimiter character), written by some
/// exports so that Excel opens the file right. Returns the delimiter byte and the length of the
/// line with its line ending.
pub fn sep_line(sample: &str) -> Option<(u8, usize)> {
    let rest = sample.strip_prefix("sep=")?;
    let d = *rest.as_bytes().first()?;
    if !d.is_ascii() || d == b'\r' || d == b'\n' || d == b'"' {
        return None;
    }
    let after = &rest[1..];
    let eol = if after.starts_with("\r\n") {
        2
    } else if after.starts_with('\n') || after.starts_with('\r') {
        1
    } else if after.is_empty() {
        0
    } else {
        return None;
    };
    Some((d, 5 + eol))
}

/// Fields per non-blank record of the first [`SAMPLE_RECORDS`] records, splitting on `d` outside
/// quotes. A quote opens a quoted field only at the start of a field (as the CSV reader does);
/// `""` inside a quoted field is an escaped quote.
fn field_counts(sample: &str, d: u8) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut fields = 1;
    let mut blank = true;
    let mut in_quotes = false;
    let mut at_field_start = true;
    let bytes = sample.as_bytes();
    let mut i = 0;
    while i < bytes.len() && counts.len() < SAMPLE_RECORDS {
        let b = bytes[i];
        if in_quotes {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else if b == b'"' && at_field_start {
            in_quotes = true;
            blank = false;
            at_field_start = false;
        } else if b == d {
            fields += 1;
            blank = false;
            at_field_start = true;
        } else if b == b'\n' || b == b'\r' {
            if !blank {
                counts.push(fields);
            }
            fields = 1;
            blank = true;
            at_field_start = true;
        } else {
            if !b.is_ascii_whitespace() {
                blank = false;
            }
            at_field_start = false;
        }
        i += 1;
    }
    if !blank && counts.len() < SAMPLE_RECORDS {
        counts.push(fields);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> u8 {
        detect(s, true).delimiter
    }

    #[test]
    fn picks_the_consistent_delimiter() {
        assert_eq!(d("a,b,c\n1,2,3\n"), b',');
        assert_eq!(d("a;b;c\r\n1,5;2,5;3\r\n"), b';');
        assert_eq!(d("a\tb\tc\n1\t2\t3\n"), b'\t');
        assert_eq!(d("a|b|c\n1|2|3\n"), b'|');
        // Quoted delimiters do not count, quoted newlines do not end a record.
        assert_eq!(d("a;b\n\"x,y,z\";\"1\n,2\"\n3;4\n"), b';');
        assert_eq!(d("a,b,c\n\"1;2;3;4\",2,3\n"), b',');
        // One column, or nothing at all: comma.
        assert_eq!(d("id\n1\n2\n"), b',');
        assert_eq!(d(""), b',');
        assert!(detect("a;b\n1,5;2\n", true).numbers.decimal_comma);
        assert!(!detect("a,b\n1,2\n", true).numbers.decimal_comma);
    }

    #[test]
    fn the_decimal_separator_comes_from_the_numbers_not_the_delimiter() {
        let n = |s: &str| {
            let f = detect(s, true).numbers;
            (f.decimal_comma, f.undecided)
        };
        let (point, comma, undecided) = ((false, false), (true, false), (false, true));
        assert_eq!(n("id;m;t\nA;29.85;\"1,516\"\n"), point);
        assert_eq!(n("id;m\nA;29.85\nB;1,516\n"), point);
        assert_eq!(n("id,m\nA,29.85\n"), point);
        assert_eq!(n("id,m,t\nA,\"29,85\",3\n"), comma);
        assert_eq!(n("id\tm\tt\nA\t29,85\t1.516,5\n"), comma);
        assert_eq!(n("id|m\nA|0,5\n"), comma);
        assert_eq!(n("id;m\nA;1,516\nB;1.234\nC;12\n"), undecided);
        assert_eq!(n("id;m\nA;12\n"), undecided);
        assert_eq!(n("id;m\nA;29,85\nB;29.85\n"), undecided);
        assert_eq!(n("id,m,t\nA,85.5,\"12,34\"\nB,85.5,1\n"), point);
        // The header's words are not numbers; a date is no evidence.
        assert_eq!(n("1.5;2,25\nA;07.12.2026\n"), undecided);
        // An Excel `sep=` line is read past by the caller; the cut last record is not used.
        assert_eq!(
            numbers("a;b\nA;29.85\nB;29,8", b';', false),
            NumberFormat::default()
        );
    }

    #[test]
    fn excel_sep_line() {
        assert_eq!(sep_line("sep=;\r\na;b\n"), Some((b';', 7)));
        assert_eq!(sep_line("sep=|\na|b"), Some((b'|', 6)));
        assert_eq!(sep_line("sep=;x\n"), None);
        assert_eq!(sep_line("a,b\n"), None);
    }

    #[test]
    fn a_cut_last_record_is_ignored() {
        assert_eq!(detect("a;b;c\n1;2;3\n4;5", false).delimiter, b';');
        assert_eq!(field_counts("a,\"b\"\"c\",d\n\n1,2,3", b','), vec![3, 3]);
    }
}
