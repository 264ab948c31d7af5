//! Numbers and times as people read them on the pages.

/// `1234567` → `"1,234,567"`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text` cut to its first `max` characters with how long it was, so that a 309-digit number or
/// a pasted paragraph cannot stretch a table: `"12345678…" (309 characters)`. Shorter text is
/// returned whole.
pub fn clipped(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let n = text.chars().count();
    if n <= max {
        return text.into();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}… ({n} characters)").into()
}

/// A share `part / whole` as a percentage with one decimal, `"0.0%"` when `whole` is 0.
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0.0%".to_owned();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

/// A probability 0–1 as a percentage with one decimal, rounded down: `0.7277` → `"72.7%"`.
/// Down, so a customer just under a risk threshold (0.6995 under "high ≥ 70.0%") never reads
/// as if they had reached it.
pub fn percent(p: f64) -> String {
    // The small nudge keeps exact tenths (0.7 is 0.69999… in binary) on their own value.
    format!("{:.1}%", (1000.0 * p + 1e-9).floor() / 10.0)
}

/// The complement of a churn probability `p` as shown beside [`percent`]`(p)`: 100 % minus
/// the shown churn figure, so that churn and retention on one page add up to exactly 100.0 %
/// (each rounded on its own could give 99.9 %).
pub fn retention_percent(p: f64) -> String {
    let churn_tenths = (1000.0 * p + 1e-9).floor().clamp(0.0, 1000.0);
    format!("{:.1}%", (1000.0 - churn_tenths) / 10.0)
}

/// An amount with thousands separators and two decimals: `12345.6` → `"12,345.60"`.
pub fn money(x: f64) -> String {
    let cents = (x.abs() * 100.0).round() as u64;
    let sign = if x < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", int(cents / 100), cents % 100)
}

/// Epoch milliseconds as `2026-11-30 04:37 UTC`.
pub fn time(ms: i64) -> String {
    let t = crate::time::rfc3339(ms);
    // rfc3339 gives 2026-11-30T04:37:21.123Z; minutes are enough on a page.
    match (t.get(0..10), t.get(11..16)) {
        (Some(date), Some(hm)) => format!("{date} {hm} UTC"),
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(clipped("abc", 3), "abc");
        assert_eq!(clipped("abcd", 3), "abc… (4 characters)");
        assert_eq!(clipped("ééééé", 2), "éé… (5 characters)");
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(share(1, 3), "33.3%");
        assert_eq!(share(1, 0), "0.0%");
        assert_eq!(percent(0.72771), "72.7%");
        assert_eq!(percent(0.699523), "69.9%");
        assert_eq!(percent(0.7), "70.0%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(money(12345.6), "12,345.60");
        assert_eq!(money(-0.001), "0.00");
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
    }
}
