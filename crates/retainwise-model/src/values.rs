//! Parsing of single cell values: numbers, booleans, labels, category levels and column names.
//!
//! Every function here takes the raw text of one cell exactly as the CSV reader produced it and
//! decides what it means. The rules are shared by training and scoring so that a file the trainer
//! accepted is read the same way by the scorer.

/// Cell texts that mean "no value", compared after trimming and ignoring ASCII case.
///
/// The Telco data writes a missing `TotalCharges` as a single space; spreadsheets and pandas write
/// blanks, `NA`, `N/A` or `null`; some exports write `-`. `NaN` is deliberately *not* here: at
/// scoring it is rejected as "not a number" because a literal NaN usually means an upstream
/// computation failed, which a person should look at.
pub const MISSING_TOKENS: &[&str] = &["", "na", "n/a", "null", "-"];

/// The error values a spreadsheet writes into a cell whose formula failed, as Excel spells them
/// (<https://support.microsoft.com/office/how-to-correct-a-n-a-error-a9e9f4ba-3c96-4fd7-893e-4a8d3f4e1c64>
/// and the pages linked from it; LibreOffice and Google Sheets write the same words). Such a
/// cell holds no value: it is read as missing, with a warning naming it.
pub const EXCEL_ERRORS: &[&str] = &[
    "#N/A",
    "#VALUE!",
    "#DIV/0!",
    "#REF!",
    "#NAME?",
    "#NUM!",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
    "#FIELD!",
    "#BLOCKED!",
    "#CONNECT!",
    "#BUSY!",
    "#UNKNOWN!",
    "#GETTING_DATA",
];

/// True when `raw` (trimmed, ASCII case ignored) is one of [`MISSING_TOKENS`] or
/// [`EXCEL_ERRORS`].
pub fn is_missing(raw: &str) -> bool {
    let t = raw.trim();
    MISSING_TOKENS.iter().any(|m| t.eq_ignore_ascii_case(m)) || is_excel_error(t)
}

/// True when `raw` (trimmed, ASCII case ignored) is one of [`EXCEL_ERRORS`].
pub fn is_excel_error(raw: &str) -> bool {
    let t = raw.trim();
    t.starts_with('#') && EXCEL_ERRORS.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// What a missing cell `raw` ([`is_missing`]) held, in words for a warning: `"blank"`,
/// `"the Excel error value #N/A"` or `"the missing-value marker NA"`.
pub fn missing_kind(raw: &str) -> String {
    let t = raw.trim();
    if t.is_empty() {
        "blank".into()
    } else if is_excel_error(t) {
        format!("the Excel error value {t}")
    } else {
        format!("the missing-value marker {t}")
    }
}

/// Why a cell could not be read as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// The text is not a decimal number.
    NotANumber,
    /// The text is `NaN` or an infinity, which no model input may be.
    NotFinite,
    /// The text is a number too large for a 64-bit float (e.g. `1e999`).
    Overflow,
    /// The text is a number that can be read two ways ([`Ambiguity`]); no reading is chosen
    /// for it. Scoring reads such a cell as missing, with a warning ([`read_number`]).
    Ambiguous(Ambiguity),
    /// The text is a number written with the other decimal separator than the file's
    /// (`29,85` in a file whose numbers use `.`, as a quoted field keeps its comma): `comma`
    /// is true when the cell used a comma. Not guessed: the file's own convention says the
    /// cell is inconsistent, so the person who knows it decides.
    OtherDecimalSeparator {
        /// The cell's separator is a comma (the file's is a dot); false: the other way round.
        comma: bool,
    },
}

impl NumberError {
    /// The sentence put in a row issue: what the cell should have held.
    pub fn expected(self) -> &'static str {
        match self {
            NumberError::NotANumber => "expected a number",
            NumberError::NotFinite => "expected a number (NaN and infinity are not allowed)",
            NumberError::Overflow => "expected a number (this one is too large to represent)",
            NumberError::Ambiguous(a) => a.reason(),
            NumberError::OtherDecimalSeparator { comma: true } => {
                "looks like a number with a decimal comma, but this file writes decimals with '.': write it with a '.' (or save the whole file with one convention)"
            }
            NumberError::OtherDecimalSeparator { comma: false } => {
                "looks like a number with a decimal point, but this file writes decimals with ',': write it with a ',' (or save the whole file with one convention)"
            }
        }
    }
}

/// Why a number's text has two readings, neither of which is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ambiguity {
    /// A percentage (`88%`): it may mean 88 (a score out of 100) or 0.88 (a share), and the
    /// column's unit decides which, which a cell cannot tell.
    Percent,
    /// In a file whose numbers use a decimal comma, a single `.` before exactly three digits
    /// (`1.234`): a thousands separator (1234) or a decimal point (1.234).
    DotGroupOrDecimal,
    /// In a file whose sample showed no number that tells its decimal separator
    /// ([`NumberFormat::undecided`]), a single `,` or `.` before exactly three digits
    /// (`1,516`, `1.234`): a thousands separator or a decimal separator.
    GroupOrDecimal,
}

impl Ambiguity {
    /// What the cell holds and how to write it instead.
    pub fn reason(self) -> &'static str {
        match self {
            Ambiguity::Percent => "a percentage: whether 88% means 88 or 0.88 cannot be told from the cell; write the number without % in the column's own unit",
            Ambiguity::DotGroupOrDecimal => "a number that reads two ways in a decimal-comma file: 1.234 is 1234 with a thousands separator or 1.234 with a decimal point; write 1234 or 1,234",
            Ambiguity::GroupOrDecimal => "a number that reads two ways: the file's numbers do not show whether its decimal separator is . or , so 1,516 (or 1.516) is 1516 with a thousands separator or 1.516 with a decimal separator; write 1516, or the decimal with more or fewer than three digits after the separator",
        }
    }
}

/// How a numeric cell was read by [`read_number`].
#[derive(Clone, Debug, PartialEq)]
pub enum NumberRead {
    /// A missing value ([`is_missing`]).
    Missing,
    /// A number in plain float syntax (digits, one decimal separator, a `-` sign, an exponent):
    /// its value is the number written.
    Plain(f64),
    /// A number read exactly, but from a spelling that had to be undone first (a currency
    /// symbol, thousands separators, accounting parentheses, a Unicode minus, a leading `+`,
    /// a value too small for a 64-bit float read as 0): `how` says what, in words, so that
    /// the reading is listed, never silent.
    Respelled {
        /// The number read.
        value: f64,
        /// What was undone, e.g. `"currency symbol removed; thousands separators removed"`.
        how: String,
    },
    /// A number with two readings ([`Ambiguity`]): no value; scoring reads it as missing and
    /// flags it.
    Ambiguous(Ambiguity),
}

/// How numbers are written in a file.
///
/// Chosen per file by [`crate::dialect::numbers`] from the numbers of a sample of its rows,
/// whatever the delimiter: `29,85` (spreadsheets in most of continental Europe) shows a decimal
/// comma, and then `1.049,34` means 1049.34; `29.85` shows a decimal point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NumberFormat {
    /// `,` is the decimal separator and `.` groups thousands (instead of the other way round).
    pub decimal_comma: bool,
    /// The sample showed no number that tells the separator (only integers and cells such as
    /// `1,516` that read both ways), or as many of each kind: each cell is read by the one reading it
    /// has, and a cell with two ([`Ambiguity::GroupOrDecimal`]) gets no number.
    /// `decimal_comma` is then false and not used.
    pub undecided: bool,
}

/// What one cell's spelling tells about a file's decimal separator ([`separator_evidence`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeparatorEvidence {
    /// Only a decimal point reads it (`29.85`, `0.516`, `1,234.5`, `1,234,567`).
    Point,
    /// Only a decimal comma reads it (`29,85`, `0,516`, `1.234,5`, `1.234.567`).
    Comma,
    /// Both read it, differently (`1,516`, `1.234`).
    Either,
}

/// What the spelling of the number in `raw` tells about the decimal separator, `None` when
/// nothing (an integer, a word, a date such as `07.12.2026`). Signs, currency symbols,
/// accounting parentheses and space or apostrophe thousands separators are looked through.
pub fn separator_evidence(raw: &str) -> Option<SeparatorEvidence> {
    let core: String = raw
        .trim()
        .trim_matches(|c: char| {
            matches!(c, '(' | ')' | '-' | '+')
                || OTHER_MINUS.contains(&c)
                || CURRENCY.contains(&c)
                || c.is_whitespace()
        })
        .chars()
        .filter(|c| !GROUP_SPACES.contains(c))
        .collect();
    if core.is_empty()
        || !core
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return None;
    }
    let last = core.rfind(['.', ','])?;
    let sep = core.as_bytes()[last];
    let other = if sep == b'.' { ',' } else { '.' };
    let decimal = |c: u8| {
        Some(if c == b'.' {
            SeparatorEvidence::Point
        } else {
            SeparatorEvidence::Comma
        })
    };
    let (int, frac) = core.split_at(last);
    let frac = &frac[1..];
    let groups: Vec<&str> = core.split(sep as char).collect();
    let grouped = |gs: &[&str]| {
        gs.len() >= 2
            && (1..=3).contains(&gs[0].len())
            && gs[1..].iter().all(|g| g.len() == 3)
            && gs.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
    };
    if int.contains(other) {
        // `1,234.5`: the last separator is the decimal one, the other groups.
        let gs: Vec<&str> = int.split(other).collect();
        return (grouped(&gs) && !frac.is_empty() && !int.contains(sep as char))
            .then_some(())
            .and(decimal(sep));
    }
    if groups.len() > 2 {
        // `1.234.567`: the separator repeated only groups thousands.
        return grouped(&groups).then_some(()).and(decimal(other as u8));
    }
    if frac.is_empty() {
        return None;
    }
    if grouped(&groups) && !int.starts_with('0') {
        return Some(SeparatorEvidence::Either);
    }
    decimal(sep)
}

/// Currency symbols stripped from either end of a number (`$29.85`, `29,85 €`).
const CURRENCY: &[char] = &['$', '€', '£', '¥', '₹', '₩', '₽', '₺', '₪', '¢'];

/// Characters that group thousands in either format: spaces (plain, no-break, narrow no-break,
/// as French and Swiss exports write) and the Swiss apostrophe.
const GROUP_SPACES: &[char] = &[' ', '\u{a0}', '\u{202f}', '\'', '’'];

/// Minus signs other than the ASCII hyphen-minus that word processors and some exports write:
/// U+2212 MINUS SIGN, U+FE63 SMALL HYPHEN-MINUS, U+FF0D FULLWIDTH HYPHEN-MINUS.
const OTHER_MINUS: &[char] = &['\u{2212}', '\u{fe63}', '\u{ff0d}'];

/// Reads a numeric cell: `Ok(None)` for a missing value, `Ok(Some(x))` for a finite number.
///
/// Same as [`parse_number_with`] in the default format (decimal point, `,` groups thousands).
///
/// # Errors
/// See [`parse_number_with`].
pub fn parse_number(raw: &str) -> Result<Option<f64>, NumberError> {
    parse_number_with(raw, NumberFormat::default())
}

/// Reads a numeric cell written in `format`: `Ok(None)` for a missing value ([`is_missing`]),
/// `Ok(Some(x))` for a finite number, read exactly as [`read_number`] reads it (plain or
/// respelled).
///
/// # Errors
/// As [`read_number`], and [`NumberError::Ambiguous`] for a number with two readings.
pub fn parse_number_with(raw: &str, format: NumberFormat) -> Result<Option<f64>, NumberError> {
    match read_number(raw, format)? {
        NumberRead::Missing => Ok(None),
        NumberRead::Plain(x) | NumberRead::Respelled { value: x, .. } => Ok(Some(x)),
        NumberRead::Ambiguous(a) => Err(NumberError::Ambiguous(a)),
    }
}

/// Reads a numeric cell written in `format`, saying how: the one number reader of training and
/// scoring. The policy: a cell's number is either the number written (after undoing a spelling
/// that does not change it, said in [`NumberRead::Respelled`]), or, when the text has two
/// readings, no number at all ([`NumberRead::Ambiguous`]) — never a different number in
/// silence.
///
/// Accepted, after trimming: what Rust's `f64::from_str` accepts (sign, decimal separator,
/// exponent) as [`NumberRead::Plain`]; respelled: a leading `+`; a Unicode minus (`−5`);
/// thousands groups of exactly three digits (`1,049.34`, or `1.049,34` with a decimal comma;
/// also space and apostrophe groups); a currency symbol before or after the number, also
/// after the sign (`$29.85`, `-$5`, `29,85 €`); accounting negatives `(5.00)`; a non-zero
/// number too small for a 64-bit float (`1e-400`, read as 0). Ambiguous: a trailing `%`
/// ([`Ambiguity::Percent`]); with a decimal comma, `1.234` ([`Ambiguity::DotGroupOrDecimal`]).
/// With a decimal comma, a number holding a single `.` and no `,` that is not of that form
/// is read with a decimal point (`29.85`), because files mixing both are common.
///
/// # Errors
/// [`NumberError::NotANumber`] for other text (including ambiguous grouping such as `1,5` with
/// a decimal point), [`NumberError::NotFinite`] for NaN or infinity, [`NumberError::Overflow`]
/// for a number beyond `f64::MAX`.
pub fn read_number(raw: &str, format: NumberFormat) -> Result<NumberRead, NumberError> {
    if is_missing(raw) {
        return Ok(NumberRead::Missing);
    }
    let t = raw.trim();
    let format = if format.undecided {
        match separator_evidence(t) {
            Some(SeparatorEvidence::Either) => {
                return Ok(NumberRead::Ambiguous(Ambiguity::GroupOrDecimal));
            }
            evidence => NumberFormat {
                decimal_comma: evidence == Some(SeparatorEvidence::Comma),
                undecided: false,
            },
        }
    } else {
        format
    };
    if format.decimal_comma && dot_group_or_decimal(t) {
        return Ok(NumberRead::Ambiguous(Ambiguity::DotGroupOrDecimal));
    }
    // Fast path: the plain spelling of almost every cell.
    if let Ok(x) = t.parse::<f64>() {
        let x = finite(t, x)?;
        let mut how = Vec::new();
        if t.starts_with('+') {
            how.push("leading + removed");
        }
        if underflowed(t, x) {
            how.push(UNDERFLOW);
        }
        return Ok(if how.is_empty() {
            NumberRead::Plain(x)
        } else {
            NumberRead::Respelled {
                value: x,
                how: how.join("; "),
            }
        });
    }
    let mut how: Vec<&'static str> = Vec::new();
    let mut s = t;
    let mut negative = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
        negative = true;
        s = inner.trim();
        how.push("accounting parentheses read as a minus sign");
    }
    if s.ends_with('%') {
        return Ok(NumberRead::Ambiguous(Ambiguity::Percent));
    }
    let before = s;
    s = s.trim_end_matches(CURRENCY).trim_end();
    let mut currency = s.len() != before.len();
    let mut signed = false;
    for _ in 0..2 {
        // One sign and a currency symbol in either order: `-$5`, `$-5`.
        if !signed {
            if let Some(v) = s.strip_prefix('-') {
                negative = !negative;
                signed = true;
                s = v.trim_start();
            } else if let Some(v) = s.strip_prefix(OTHER_MINUS) {
                negative = !negative;
                signed = true;
                s = v.trim_start();
                how.push("Unicode minus sign read as -");
            } else if let Some(v) = s.strip_prefix('+') {
                signed = true;
                s = v.trim_start();
                how.push("leading + removed");
            }
        }
        let before = s;
        s = s.trim_start_matches(CURRENCY).trim_start();
        currency |= s.len() != before.len();
    }
    if currency {
        how.push("currency symbol removed");
    }
    if format.decimal_comma && dot_group_or_decimal(s) {
        return Ok(NumberRead::Ambiguous(Ambiguity::DotGroupOrDecimal));
    }
    let Some((clean, grouped)) = normalise_digits(s, format) else {
        // Read with the other decimal separator, and not as grouping: a cell written under
        // the other convention (`29,85` quoted in a comma-delimited file with decimal points).
        let other = NumberFormat {
            decimal_comma: !format.decimal_comma,
            undecided: false,
        };
        let separator = if format.decimal_comma { '.' } else { ',' };
        return Err(
            if s.contains(separator) && matches!(normalise_digits(s, other), Some((_, false))) {
                NumberError::OtherDecimalSeparator {
                    comma: !format.decimal_comma,
                }
            } else {
                NumberError::NotANumber
            },
        );
    };
    if grouped {
        how.push("thousands separators removed");
    }
    let x: f64 = clean.parse().map_err(|_| NumberError::NotANumber)?;
    let x = if negative { -x } else { x };
    let x = finite(&clean, x)?;
    if underflowed(&clean, x) {
        how.push(UNDERFLOW);
    }
    Ok(if how.is_empty() {
        // Only a decimal comma was read: the file's format, said once in the report.
        NumberRead::Plain(x)
    } else {
        NumberRead::Respelled {
            value: x,
            how: how.join("; "),
        }
    })
}

/// The note of a non-zero number too small for a 64-bit float.
const UNDERFLOW: &str = "a non-zero number too small for a 64-bit float, read as 0";

/// True when `x` is 0 but the mantissa of `text` (float syntax) has a non-zero digit.
fn underflowed(text: &str, x: f64) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    x == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// True for `1.234` (an optional sign, 1 to 3 digits not starting with 0, one `.`, exactly
/// three digits): in a decimal-comma file a thousands group or a decimal fraction.
fn dot_group_or_decimal(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let Some((int, frac)) = t.split_once('.') else {
        return false;
    };
    (1..=3).contains(&int.len())
        && !int.starts_with('0')
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() == 3
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// `Ok(x)` when finite; otherwise tells overflow (digits) from NaN/infinity (words).
fn finite(text: &str, x: f64) -> Result<f64, NumberError> {
    if x.is_finite() {
        Ok(x)
    } else if text.chars().any(|c| c.is_ascii_digit()) {
        Err(NumberError::Overflow)
    } else {
        Err(NumberError::NotFinite)
    }
}

/// The digits of `s` as Rust float syntax (`1049.34`) and whether thousands separators were
/// removed, or `None` when the grouping is not thousands of three digits or other characters
/// remain.
fn normalise_digits(s: &str, format: NumberFormat) -> Option<(String, bool)> {
    // An exponent (`1.5e3`, `$1e6`) is kept as it is; grouping applies to the mantissa.
    let (s, exponent) = match s.find(['e', 'E']) {
        Some(at) => {
            let e = &s[at + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&s[..at], &s[at..])
        }
        None => (s, ""),
    };
    if s.is_empty() {
        return None;
    }
    let (mut decimal, mut group) = if format.decimal_comma {
        (',', '.')
    } else {
        ('.', ',')
    };
    if format.decimal_comma && !s.contains(',') && s.matches('.').count() == 1 {
        decimal = '.';
        group = ',';
    }
    let (int_part, frac_part) = match s.rsplit_once(decimal) {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let mut out = String::with_capacity(s.len());
    let groups: Vec<&str> = int_part
        .split(|c: char| c == group || GROUP_SPACES.contains(&c))
        .collect();
    for (k, g) in groups.iter().enumerate() {
        let ok_len = if groups.len() == 1 {
            !g.is_empty() || frac_part.is_some()
        } else if k == 0 {
            (1..=3).contains(&g.len())
        } else {
            g.len() == 3
        };
        if !ok_len || !g.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        out.push_str(g);
    }
    if let Some(f) = frac_part {
        if !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.push('.');
        out.push_str(f);
    }
    if out.is_empty() || out == "." {
        return None;
    }
    out.push_str(exponent);
    Some((out, groups.len() > 1))
}

/// Reads a yes/no cell (`Yes`/`No`, `Y`/`N`, `true`/`false`, `T`/`F`, `1`/`0`, any case).
/// `None` when the text is none of these. Missing values are the caller's business.
pub fn parse_bool(raw: &str) -> Option<bool> {
    let t = raw.trim();
    const TRUE: &[&str] = &["yes", "y", "true", "t", "1"];
    const FALSE: &[&str] = &["no", "n", "false", "f", "0"];
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// True for the texts a training column must hold (besides missing values) to be typed boolean.
///
/// Narrower than [`parse_bool`]: a column of `1`/`0` is numeric, and `t`/`f` alone are too
/// ambiguous to type a column by.
pub fn is_bool_word(raw: &str) -> bool {
    let t = raw.trim();
    ["yes", "no", "y", "n", "true", "false"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
}

/// The label spellings accepted for the positive (churned) and negative class, shown in errors.
pub const LABEL_SPELLINGS: &str = "Yes/No, 1/0, true/false or churned/active";

/// Reads a label cell: `Some(true)` = churned. Accepts [`LABEL_SPELLINGS`] in any case, also
/// `Y`/`N`, `1.0`/`0.0`, `churn`, `retained` and `stayed`.
pub fn parse_label(raw: &str) -> Option<bool> {
    let t = raw.trim();
    const POS: &[&str] = &["yes", "y", "1", "1.0", "true", "churned", "churn"];
    const NEG: &[&str] = &[
        "no", "n", "0", "0.0", "false", "active", "retained", "stayed",
    ];
    if POS.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if NEG.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// The key category levels are matched by: lower-cased, accents removed, and everything but
/// letters and digits dropped, so `"Fiber optic"`, `" fiber  optic "`, `"FIBER-OPTIC"` and
/// `"Month to month"`/`"month-to-month"` are one level each. A level made only of punctuation
/// keeps its trimmed text so that it still has a key.
pub fn level_key(raw: &str) -> String {
    let key = fold_key(raw);
    if key.is_empty() {
        raw.trim().to_lowercase()
    } else {
        key
    }
}

/// The key column names are matched by when the exact name is absent: lower-cased, accents
/// removed, everything but letters and digits dropped, so `customer_id`, `Customer ID`,
/// `customerID` and `Customer-ID.` match, and so do `Données` and `donnees`.
pub fn column_key(raw: &str) -> String {
    fold_key(raw)
}

/// Lower-case letters and digits of `raw`, with Latin accents folded (`é` → `e`, `ß` → `ss`).
fn fold_key(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                match fold_accent(l) {
                    Some(f) => out.push_str(f),
                    None => out.push(l),
                }
            }
        }
    }
    out
}

/// The unaccented spelling of a lower-case Latin letter with a diacritic, for the letters of
/// Latin-1 and the common Latin Extended-A ones (enough for western European column names and
/// category levels; other scripts are kept as they are).
fn fold_accent(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' | 'ģ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ķ' => "k",
        'ł' | 'ľ' | 'ĺ' | 'ļ' => "l",
        'ñ' | 'ń' | 'ň' | 'ņ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ř' => "r",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_missing_and_errors() {
        assert_eq!(parse_number(" 29.85 "), Ok(Some(29.85)));
        assert_eq!(parse_number("-1e3"), Ok(Some(-1000.0)));
        assert_eq!(parse_number(" "), Ok(None));
        assert_eq!(parse_number("N/A"), Ok(None));
        assert_eq!(parse_number("null"), Ok(None));
        assert_eq!(parse_number("-"), Ok(None));
        assert_eq!(parse_number("abc"), Err(NumberError::NotANumber));
        assert_eq!(parse_number("NaN"), Err(NumberError::NotFinite));
        assert_eq!(parse_number("inf"), Err(NumberError::NotFinite));
        assert_eq!(
            parse_number("1,5"),
            Err(NumberError::OtherDecimalSeparator { comma: true })
        );
        assert_eq!(parse_number("1e999"), Err(NumberError::Overflow));
        assert_eq!(parse_number("-Infinity"), Err(NumberError::NotFinite));
    }

    #[test]
    fn grouped_currency_and_percent_numbers() {
        assert_eq!(parse_number("1,049.34"), Ok(Some(1049.34)));
        assert_eq!(parse_number("$29.85"), Ok(Some(29.85)));
        assert_eq!(parse_number(" $1,049.34 "), Ok(Some(1049.34)));
        assert_eq!(parse_number("-$5"), Ok(Some(-5.0)));
        assert_eq!(parse_number("$-5"), Ok(Some(-5.0)));
        assert_eq!(parse_number("(5.00)"), Ok(Some(-5.0)));
        assert_eq!(parse_number("£12"), Ok(Some(12.0)));
        assert_eq!(
            parse_number("12.5%"),
            Err(NumberError::Ambiguous(Ambiguity::Percent))
        );
        assert_eq!(parse_number("1 049.5"), Ok(Some(1049.5)));
        assert_eq!(parse_number("1,0493.4"), Err(NumberError::NotANumber));
        assert_eq!(
            parse_number("12,34"),
            Err(NumberError::OtherDecimalSeparator { comma: true })
        );
        assert_eq!(parse_number("$"), Err(NumberError::NotANumber));
        assert_eq!(parse_number("1.2.3"), Err(NumberError::NotANumber));
        assert_eq!(parse_number("$1e999"), Err(NumberError::Overflow));
        let eu = NumberFormat {
            decimal_comma: true,
            undecided: false,
        };
        assert_eq!(parse_number_with("29,85", eu), Ok(Some(29.85)));
        assert_eq!(parse_number_with("1.049,34 €", eu), Ok(Some(1049.34)));
        assert_eq!(parse_number_with("29.85", eu), Ok(Some(29.85)));
        assert_eq!(parse_number_with("1.234.567", eu), Ok(Some(1234567.0)));
        assert_eq!(parse_number_with("12", eu), Ok(Some(12.0)));
        assert_eq!(parse_number_with("1,5e3", eu), Ok(Some(1500.0)));
        assert_eq!(parse_number_with("NaN", eu), Err(NumberError::NotFinite));
    }

    #[test]
    fn every_respelling_is_said_and_two_readings_give_no_number() {
        let us = NumberFormat::default();
        let eu = NumberFormat {
            decimal_comma: true,
            undecided: false,
        };
        let how = |raw: &str, f| match read_number(raw, f) {
            Ok(NumberRead::Respelled { value, how }) => (value, how),
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(read_number("29.85", us), Ok(NumberRead::Plain(29.85)));
        assert_eq!(read_number("29,85", eu), Ok(NumberRead::Plain(29.85)));
        assert_eq!(read_number("1e308", us), Ok(NumberRead::Plain(1e308)));
        assert_eq!(read_number(" ", us), Ok(NumberRead::Missing));
        for (raw, f, value, word) in [
            ("+5", us, 5.0, "leading +"),
            ("\u{2212}12", us, -12.0, "Unicode minus"),
            ("(12)", us, -12.0, "accounting parentheses"),
            ("$29.85", us, 29.85, "currency symbol"),
            ("1,234.50", us, 1234.5, "thousands separators"),
            ("1.234,50", eu, 1234.5, "thousands separators"),
            ("1 234", us, 1234.0, "thousands separators"),
            ("1e-400", us, 0.0, "too small"),
        ] {
            let (v, h) = how(raw, f);
            assert_eq!(v, value, "{raw}");
            assert!(h.contains(word), "{raw}: {h}");
        }
        assert_eq!(
            read_number("88%", us),
            Ok(NumberRead::Ambiguous(Ambiguity::Percent))
        );
        assert_eq!(
            read_number("(88 %)", us),
            Ok(NumberRead::Ambiguous(Ambiguity::Percent))
        );
        assert_eq!(
            read_number("1.234", eu),
            Ok(NumberRead::Ambiguous(Ambiguity::DotGroupOrDecimal))
        );
        assert_eq!(
            read_number("-€1.234", eu),
            Ok(NumberRead::Ambiguous(Ambiguity::DotGroupOrDecimal))
        );
        assert_eq!(read_number("0.123", eu), Ok(NumberRead::Plain(0.123)));
        assert_eq!(read_number("1.234", us), Ok(NumberRead::Plain(1.234)));
        assert_eq!(read_number("1.234,5.6", eu), Err(NumberError::NotANumber));
    }

    #[test]
    fn a_file_without_telling_numbers_reads_each_cell_by_its_one_reading() {
        use SeparatorEvidence::*;
        for (raw, want) in [
            ("29.85", Some(Point)),
            ("$1,234.50", Some(Point)),
            ("1,234,567", Some(Point)),
            ("0.516", Some(Point)),
            ("29,85", Some(Comma)),
            ("-1.234,5 €", Some(Comma)),
            ("1.234.567", Some(Comma)),
            ("1234,567", Some(Comma)),
            ("1 234,5", Some(Comma)),
            ("1,516", Some(Either)),
            ("(1.234)", Some(Either)),
            ("12", None),
            ("07.12.2026", None),
            ("1e5", None),
            ("Fiber optic", None),
        ] {
            assert_eq!(separator_evidence(raw), want, "{raw}");
        }
        let per_cell = NumberFormat {
            decimal_comma: false,
            undecided: true,
        };
        let read = |raw| read_number(raw, per_cell);
        assert_eq!(read("29,85"), Ok(NumberRead::Plain(29.85)));
        assert_eq!(read("29.85"), Ok(NumberRead::Plain(29.85)));
        assert_eq!(read("12"), Ok(NumberRead::Plain(12.0)));
        assert!(
            matches!(read("1.234.567"), Ok(NumberRead::Respelled { value, .. }) if value == 1234567.0)
        );
        for raw in ["1,516", "1.516", "-$1,516"] {
            assert_eq!(
                read(raw),
                Ok(NumberRead::Ambiguous(Ambiguity::GroupOrDecimal)),
                "{raw}"
            );
        }
        // A decided decimal point reads `1,516` as grouped thousands, and says so.
        assert!(matches!(
            read_number("1,516", NumberFormat::default()),
            Ok(NumberRead::Respelled { value, .. }) if value == 1516.0
        ));
    }

    #[test]
    fn booleans_and_labels() {
        assert_eq!(parse_bool(" yes"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert!(is_bool_word("No"));
        assert!(!is_bool_word("1"));
        assert_eq!(parse_label("Churned"), Some(true));
        assert_eq!(parse_label("active"), Some(false));
        assert_eq!(parse_label("0"), Some(false));
        assert_eq!(parse_label(""), None);
    }

    #[test]
    fn keys() {
        assert_eq!(level_key(" Fiber  Optic "), "fiberoptic");
        assert_eq!(column_key("Customer_ID"), column_key("customer-id"));
        assert_eq!(column_key("Total Charges"), "totalcharges");
        assert_eq!(column_key("Données-Client."), "donneesclient");
        assert_eq!(level_key("Month to month"), level_key("month-to-month"));
        assert_eq!(
            level_key("Credit card (automatic)"),
            level_key("credit card automatic")
        );
        assert_eq!(level_key("?"), "?");
    }
}
