//! The scored CSV's bytes, written straight into the output buffer.
//!
//! Cells follow the quoting of the `csv` crate's default writer (`QuoteStyle::Necessary`,
//! RFC 4180): a cell holding `,` `"` CR or LF is put in quotes with each `"` doubled, any other
//! is written as it is. So the file is byte for byte what `csv::Writer` wrote (tested against
//! it), without its per-field state machine, and the factor JSON is written already escaped
//! for its quoted cell instead of being built first and scanned again.

use crate::explain::Factor;
use crate::quality::Flag;

/// True when a cell must be quoted (the `csv` crate's rule for `,`-delimited, `\n`-terminated
/// output: CR is quoted too, as readers take it for a line end).
#[inline]
fn needs_quotes(field: &[u8]) -> bool {
    field
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

/// Appends `field` as one CSV cell (quoted, `"` doubled, only where needed).
#[inline]
pub fn push_cell(out: &mut Vec<u8>, field: &[u8]) {
    if !needs_quotes(field) {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    let mut rest = field;
    while let Some(at) = rest.iter().position(|&b| b == b'"') {
        out.extend_from_slice(&rest[..=at]);
        out.push(b'"');
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Appends `n` in decimal.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

/// Appends `m / 10^digits` with exactly `digits` decimals (`m` = 1500, 6 digits: `0.001500`),
/// a `-` before a negative value: the text of `format!("{:.digits$}", m / 10^digits)` computed
/// in integers (the fixed-precision float formatter is slow).
#[inline]
pub fn push_scaled(out: &mut Vec<u8>, m: i64, digits: u32) {
    if m < 0 {
        out.push(b'-');
    }
    let m = m.unsigned_abs();
    let scale = 10u64.pow(digits);
    push_u64(out, m / scale);
    out.push(b'.');
    let mut frac = [b'0'; 20];
    let mut f = m % scale;
    for d in (0..digits as usize).rev() {
        frac[d] = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.extend_from_slice(&frac[..digits as usize]);
}

/// Appends `x` rounded to 6 decimals (`-0.123457`; a value that rounds to zero is `0.000000`,
/// never `-0.000000`). Beyond ±10¹² (never a log-odds contribution in practice) the float
/// formatter's `{x:.6}` is used, so no value is cut.
pub fn push_fixed6(out: &mut Vec<u8>, x: f64) {
    if x.abs() < 1e12 {
        push_scaled(out, (x * 1e6).round() as i64, 6);
    } else {
        out.extend_from_slice(format!("{x:.6}").as_bytes());
    }
}

/// Appends a JSON string literal of `s` (RFC 8259 escaping, as
/// [`crate::explain::factors_json`] writes it) inside a quoted CSV cell: each `"` of the JSON
/// text doubled.
fn push_json_string_in_cell(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(b"\"\"");
    let b = s.as_bytes();
    if !b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\') {
        out.extend_from_slice(b);
    } else {
        for &c in b {
            match c {
                b'"' => out.extend_from_slice(b"\\\"\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                c if c < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(c >> 4)]);
                    out.push(HEX[usize::from(c & 15)]);
                }
                c => out.push(c),
            }
        }
    }
    out.extend_from_slice(b"\"\"");
}

/// Appends the cell of [`crate::explain::factors_json_flagged`]`(factors, flags)`: `[]` for
/// none, else the JSON array in a quoted cell (every object holds a `"`).
pub fn push_factors_cell(out: &mut Vec<u8>, factors: &[Factor<'_>], flags: &[Flag]) {
    if factors.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.extend_from_slice(b"\"[");
    for (i, f) in factors.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"\"feature\"\":");
        push_json_string_in_cell(out, f.feature);
        out.extend_from_slice(b",\"\"value\"\":");
        push_json_string_in_cell(out, &f.value);
        out.extend_from_slice(b",\"\"impact\"\":");
        // Rounded to tenths as the JSON writer rounds them: `-0.04` is `0.0`.
        push_scaled(out, (f.impact * 10.0).round() as i64, 1);
        if let Some((_, name)) = f.with {
            out.extend_from_slice(b",\"\"with\"\":");
            push_json_string_in_cell(out, name);
        }
        if let Some(q) = crate::explain::factor_quality(f, flags) {
            out.extend_from_slice(b",\"\"quality\"\":");
            push_json_string_in_cell(out, &q);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_cell(field: &[u8]) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record([field, b"x"]).unwrap();
        let mut v = w.into_inner().unwrap();
        v.truncate(v.len() - 3);
        v
    }

    #[test]
    fn cells_are_quoted_as_the_csv_writer_quotes_them() {
        for field in [
            &b""[..],
            b"plain",
            b"a,b",
            b"say \"hi\"",
            b"\"",
            b"line\nbreak",
            b"cr\ronly",
            b" spaced ",
            b"#hash",
            b"'quote",
            "Électronique \"chèque\"".as_bytes(),
        ] {
            let mut out = Vec::new();
            push_cell(&mut out, field);
            assert_eq!(out, csv_cell(field), "{:?}", String::from_utf8_lossy(field));
        }
    }

    #[test]
    fn numbers_match_the_float_formatter() {
        for (m, digits) in [(0, 6), (1_000_000, 6), (123, 6), (-5, 1), (-123, 1), (7, 1)] {
            let mut out = Vec::new();
            push_scaled(&mut out, m, digits);
            let want = format!(
                "{:.*}",
                digits as usize,
                m as f64 / 10f64.powi(digits as i32)
            );
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        out.push(b' ');
        push_fixed6(&mut out, -0.0000001);
        out.push(b' ');
        push_fixed6(&mut out, -1.2345678);
        out.push(b' ');
        push_fixed6(&mut out, 2e13);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("0 {} 0.000000 -1.234568 20000000000000.000000", u64::MAX)
        );
    }
}
