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

/// True when `raw` (trimmed, ASCII case ignored) is one of [`MISSING_TOKENS`].
pub fn is_missing(raw: &str) -> bool {
    let t = raw.trim();
    MISSING_TOKENS.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// Why a cell could not be read as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// The text is not a decimal number.
    NotANumber,
    /// The text is `NaN` or an infinity, which no model input may be.
    NotFinite,
}

impl NumberError {
    /// The sentence put in a row issue: what the cell should have held.
    pub fn expected(self) -> &'static str {
        match self {
            NumberError::NotANumber => "expected a number",
            NumberError::NotFinite => "expected a number (NaN and infinity are not allowed)",
        }
    }
}

/// Reads a numeric cell: `Ok(None)` for a missing value, `Ok(Some(x))` for a finite number.
///
/// Accepts what Rust's `f64::from_str` accepts (optional sign, decimal point, exponent) after
/// trimming surrounding whitespace.
///
/// # Errors
/// [`NumberError::NotANumber`] for other text, [`NumberError::NotFinite`] for NaN/infinity.
pub fn parse_number(raw: &str) -> Result<Option<f64>, NumberError> {
    if is_missing(raw) {
        return Ok(None);
    }
    match raw.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        Ok(_) => Err(NumberError::NotFinite),
        Err(_) => Err(NumberError::NotANumber),
    }
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

/// The key category levels are matched by: lower-cased with all whitespace removed, so
/// `"Fiber optic"`, `" fiber  optic "` and `"FIBER OPTIC"` are one level.
pub fn level_key(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The key column names are matched by when the exact name is absent: lower-cased, ignoring
/// whitespace, `_` and `-`, so `customer_id`, `Customer ID` and `customerID` match.
pub fn column_key(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
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
        assert_eq!(parse_number("1,5"), Err(NumberError::NotANumber));
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
    }
}
