//! Making text cells safe to open in a spreadsheet.
//!
//! A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return can be run as a formula
//! by Excel, LibreOffice or Google Sheets ("CSV injection"). Following the OWASP guidance
//! (<https://owasp.org/www-community/attacks/CSV_Injection>), such a cell is prefixed with a single
//! quote, which spreadsheets show as text and do not evaluate. Quoting of commas, quotes and line
//! breaks is left to the CSV writer (RFC 4180).

use std::borrow::Cow;

/// The first characters that make a spreadsheet treat a cell as a formula.
pub const FORMULA_TRIGGERS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// `text` unchanged, or with a leading `'` when it starts with one of [`FORMULA_TRIGGERS`].
pub fn escape_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_TRIGGERS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_formula_starts_only() {
        assert_eq!(escape_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(escape_cell("+1"), "'+1");
        assert_eq!(escape_cell("-2"), "'-2");
        assert_eq!(escape_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(escape_cell("\tx"), "'\tx");
        assert_eq!(escape_cell("\rx"), "'\rx");
        assert!(matches!(
            escape_cell("0042-ABCD"),
            Cow::Borrowed("0042-ABCD")
        ));
        assert_eq!(escape_cell(""), "");
    }
}
