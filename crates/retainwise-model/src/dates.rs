//! Date cells: the spellings read as calendar dates, the ones refused as ambiguous, and the
//! feature a date becomes — whole days before a reference date.
//!
//! Accepted, after trimming (ISO 8601 calendar dates and the common export spellings of them):
//! - `YYYY-MM-DD` (`2024-05-31`) and `YYYY/MM/DD`, month and day each with one digit or two
//!   in either (`2024-6-1`, `2024/5/31`): year first is never ambiguous, and a spelling read
//!   zero-padded is read unpadded too (a trial found `2024/6/1` read and `2024-6-1` refused);
//! - either of those followed by `T` or a space and a time `H:MM[:SS[.fff…]]`, each of hours,
//!   minutes and seconds with one digit or two, optionally with `Z` or an offset `±HH:MM`,
//!   `±HHMM`, `±HH` (`2024-05-31T23:30:00-02:00`). The date taken is the calendar date of that
//!   instant in UTC when an offset is given (so the example is 2024-06-01), else the date as
//!   written.
//!
//! Refused: day-first and month-first forms such as `03/04/2024`, `3-4-24` or `03.04.2024`.
//! Which of day and month comes first is a locale's convention that the file does not state,
//! and a wrong guess is a silent wrong number, so such columns are not used
//! ([`looks_ambiguous`] gives the reason) and the user is asked for ISO dates.
//!
//! Calendar arithmetic (validity of a day, days between two dates, offsets) is chrono's.

use chrono::{Datelike, NaiveDateTime, NaiveTime, TimeDelta};

/// A calendar date (chrono's), re-exported so callers need no chrono of their own.
pub use chrono::NaiveDate;

use crate::values;

/// The example shown when a cell should have held a date.
pub const EXAMPLE: &str = "2024-05-31";

/// What a date cell should hold, as put in a row issue.
pub const EXPECTED: &str = "expected a date like 2024-05-31 (ISO 8601, year first)";

/// A cell that is not a date in an accepted spelling (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotADate;

/// Reads a date cell: `Ok(None)` for a missing value ([`values::is_missing`]), `Ok(Some(d))`
/// for a date in one of the accepted spellings (see the module doc).
///
/// # Errors
/// [`NotADate`] for anything else, including impossible dates (`2023-02-29`) and the ambiguous
/// day/month forms.
pub fn parse_date(raw: &str) -> Result<Option<NaiveDate>, NotADate> {
    if values::is_missing(raw) {
        return Ok(None);
    }
    parse_present(raw.trim().as_bytes())
        .map(Some)
        .ok_or(NotADate)
}

/// The date of a non-missing, trimmed cell.
fn parse_present(s: &[u8]) -> Option<NaiveDate> {
    let (date, rest) = date_part(s)?;
    if rest.is_empty() {
        return Some(date);
    }
    let rest = match rest.split_first()? {
        (b'T' | b't' | b' ', r) => r,
        _ => return None,
    };
    let (time, rest) = time_part(rest)?;
    let local = NaiveDateTime::new(date, time);
    let offset_seconds = offset(rest)?;
    let utc = local.checked_sub_signed(TimeDelta::try_seconds(offset_seconds)?)?;
    Some(utc.date())
}

/// `YYYY-M-D` or `YYYY/M/D` (month and day of one or two digits) at the start of `s`, and what
/// follows.
fn date_part(s: &[u8]) -> Option<(NaiveDate, &[u8])> {
    let (year, s) = digits(s, 4, 4)?;
    let sep = *s.first()?;
    if !matches!(sep, b'-' | b'/') {
        return None;
    }
    let (month, s) = digits(&s[1..], 1, 2)?;
    if s.first() != Some(&sep) {
        return None;
    }
    let (day, s) = digits(&s[1..], 1, 2)?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some((date, s))
}

/// `H:M[:S[.f…]]` (each of one or two digits) at the start of `s`, and what follows.
fn time_part(s: &[u8]) -> Option<(NaiveTime, &[u8])> {
    let (hour, s) = digits(s, 1, 2)?;
    let s = s.strip_prefix(b":")?;
    let (minute, mut s) = digits(s, 1, 2)?;
    let mut second = 0;
    if let Some(r) = s.strip_prefix(b":") {
        let (sec, r) = digits(r, 1, 2)?;
        second = sec;
        s = r;
        if let Some(r) = s.strip_prefix(b".").or_else(|| s.strip_prefix(b",")) {
            // Fractions of a second do not move the calendar date: checked, then skipped.
            let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            s = &r[n..];
        }
    }
    // A leap second (`23:59:60`) is still that day.
    let time = NaiveTime::from_hms_opt(hour, minute, second.min(59))?;
    Some((time, s))
}

/// The UTC offset in seconds of what follows a time: empty (taken as written), `Z`, or
/// `±HH:MM`, `±HHMM`, `±HH`.
fn offset(s: &[u8]) -> Option<i64> {
    let (sign, s) = match s.split_first() {
        None => return Some(0),
        Some((b'Z' | b'z', [])) => return Some(0),
        Some((b'+', r)) => (1, r),
        Some((b'-', r)) => (-1, r),
        _ => return None,
    };
    let (hours, minutes) = match s {
        [h1, h2] => (pair(*h1, *h2)?, 0),
        [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (pair(*h1, *h2)?, pair(*m1, *m2)?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (i64::from(hours) * 3600 + i64::from(minutes) * 60))
}

/// The number written by two ASCII digits.
fn pair(a: u8, b: u8) -> Option<u32> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
}

/// Between `min` and `max` ASCII digits at the start of `s` (no more follow), and the rest.
fn digits(s: &[u8], min: usize, max: usize) -> Option<(u32, &[u8])> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n < min || n > max {
        return None;
    }
    let value = s[..n]
        .iter()
        .fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
    Some((value, &s[n..]))
}

/// True when `raw` looks like a date written day-first or month-first (`03/04/2024`,
/// `3-4-24`, `03.04.2024 10:00`): one or two digits, a separator, one or two digits, the same
/// separator, two or four digits, then optionally a time.
pub fn looks_ambiguous(raw: &str) -> bool {
    let s = raw.trim().as_bytes();
    let Some((_, r)) = digits(s, 1, 2) else {
        return false;
    };
    let Some((&sep, r)) = r.split_first() else {
        return false;
    };
    if !matches!(sep, b'/' | b'-' | b'.') {
        return false;
    }
    let Some((_, r)) = digits(r, 1, 2) else {
        return false;
    };
    let Some(r) = r.strip_prefix(&[sep]) else {
        return false;
    };
    let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
    (n == 2 || n == 4) && (r.len() == n || matches!(r[n], b' ' | b'T'))
}

/// The feature value of `date` against `reference`: whole days from the date to the
/// reference date, positive when the date is before it (a future date is negative).
pub fn days_before(date: NaiveDate, reference: NaiveDate) -> i64 {
    reference.signed_duration_since(date).num_days()
}

/// The date `days` whole days before `reference` (the inverse of [`days_before`]), `None`
/// outside chrono's range (about ±262,000 years).
pub fn date_days_before(reference: NaiveDate, days: i64) -> Option<NaiveDate> {
    reference.checked_sub_signed(TimeDelta::try_days(days)?)
}

/// `days` as said before the reference date: `"412 days before"`, `"1 day before"`, `"on"`
/// (the same day), `"3 days after"`.
pub fn relative(days: i64) -> String {
    match days {
        0 => "on".into(),
        1 => "1 day before".into(),
        -1 => "1 day after".into(),
        d if d > 0 => format!("{d} days before"),
        d => format!("{} days after", -d),
    }
}

/// Today's date (UTC) by the system clock.
pub fn today() -> NaiveDate {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    chrono::DateTime::from_timestamp(secs, 0).map_or(NaiveDate::MIN, |t| t.date_naive())
}

/// A file's own reference date when none is given: the latest of its `dates` that is not after
/// `today`, or `today` when every date is after it (or there is none).
///
/// A file describes customers as of some day that has already come; a date after today is a
/// typo (2099-01-01) or a scheduled date, and taking it as "now" would shift every customer's
/// day counts by years — scoring a whole file wrong without a single bad-looking row (found by
/// a fresh-user trial: one `last_login` of 2099 took a model to 0 % churn for everyone). Such
/// dates are still read, as negative day counts ("N days after").
pub fn reference_from(dates: impl IntoIterator<Item = NaiveDate>, today: NaiveDate) -> NaiveDate {
    dates
        .into_iter()
        .filter(|d| *d <= today)
        .max()
        .unwrap_or(today)
}

/// Most days the latest dates of a file may stand after the next latest and still be its
/// reference date ([`latest_not_apart`]): a month, the longest gap between two exports of a
/// file kept up to date.
pub const REFERENCE_GAP_DAYS: i64 = 31;

/// Fewest date cells a file needs before [`latest_not_apart`] passes over any date: with fewer,
/// one customer's recent date is as likely real as mistyped.
pub const MIN_DATES_TO_PASS_OVER: u64 = 10;

/// The reference date of a file whose date cells not after `today` are `seen` (date → cells),
/// each first seen at `first` (date → data row and column name), and where it came from in
/// words: the latest date not standing apart from the rest ([`latest_not_apart`]), with its
/// row and column and the dates passed over (with theirs), or today when every date is after
/// it ([`reference_from`]). The one rule of scoring and training.
pub fn reference_with_source(
    seen: &std::collections::BTreeMap<NaiveDate, u64>,
    first: &std::collections::BTreeMap<NaiveDate, (u64, String)>,
    today: NaiveDate,
) -> (NaiveDate, String) {
    let latest = latest_not_apart(seen);
    let place = |d: &NaiveDate| {
        first.get(d).map_or(String::new(), |(row, column)| {
            format!(" (data row {row}, column {column})")
        })
    };
    let source = match latest {
        Some(d) => {
            let mut text = format!("the latest date in the file, {}{}", iso(d), place(&d));
            let passed: Vec<String> = seen
                .range(d.succ_opt().unwrap_or(d)..)
                .map(|(p, _)| format!("{}{}", iso(*p), place(p)))
                .collect();
            if !passed.is_empty() {
                text.push_str(&format!(
                    "; passed over, as more than {REFERENCE_GAP_DAYS} days after the rest of the file's dates: {} (flagged: after the reference date)",
                    passed.join(", ")
                ));
            }
            text
        }
        None => "today: every date in the file is after today".to_owned(),
    };
    (reference_from(latest, today), source)
}

/// The latest of `seen`'s dates (each with the number of cells holding it) that does not stand
/// apart from the rest: the latest dates are passed over while they are more than
/// [`REFERENCE_GAP_DAYS`] after the next latest date and, together, hold at most 1 % of the
/// cells (at least one cell), in a file of at least [`MIN_DATES_TO_PASS_OVER`] date cells. A
/// single mistyped `2026-03-15` among 2025 dates is not the file's reference date; a file whose
/// dates simply run later is unaffected, as is one whose latest date is shared by more than
/// 1 % of its cells, and a file of a few dates, where a gap says nothing, keeps its latest. Rows holding a passed-over date then lie after
/// the reference date, and scoring flags them as outside the training range. `None` when
/// `seen` is empty.
pub fn latest_not_apart(seen: &std::collections::BTreeMap<NaiveDate, u64>) -> Option<NaiveDate> {
    let total: u64 = seen.values().sum();
    if total < MIN_DATES_TO_PASS_OVER {
        return seen.keys().next_back().copied();
    }
    let cap = (total / 100).max(1);
    let dates: Vec<(&NaiveDate, &u64)> = seen.iter().rev().collect();
    let mut pick = 0;
    let mut above = 0;
    for (i, pair) in dates.windows(2).enumerate() {
        above += *pair[0].1;
        if above > cap {
            break;
        }
        if (*pair[0].0 - *pair[1].0).num_days() > REFERENCE_GAP_DAYS {
            pick = i + 1;
        }
    }
    dates.get(pick).map(|(d, _)| **d)
}

/// Parses a reference date given by a person (a flag, a form field): `YYYY-MM-DD`, month and
/// day also with one digit (`2025-4-7`), as date cells are read.
///
/// # Errors
/// A sentence saying what was expected.
pub fn parse_reference(raw: &str) -> Result<NaiveDate, String> {
    let t = raw.trim();
    match date_part(t.as_bytes()) {
        Some((d, [])) if t.as_bytes().get(4) == Some(&b'-') => Ok(d),
        _ => Err(format!(
            "the reference date {raw:?} is not a date like {EXAMPLE} (YYYY-MM-DD)"
        )),
    }
}

/// `YYYY-MM-DD` of `date` (years 0–9999; chrono's own `Display` is the same there).
pub fn iso(date: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One mistyped date far after the rest is passed over; a later date shared by more than
    /// 1 % of the cells, or one within a month of the next, is the reference.
    #[test]
    fn a_lone_date_far_after_the_rest_is_not_the_reference() {
        let day = |m, d| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let typo = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let mut seen: std::collections::BTreeMap<NaiveDate, u64> =
            (1..=28).map(|d| (day(6, d), 10)).collect();
        assert_eq!(latest_not_apart(&seen), Some(day(6, 28)));
        seen.insert(typo, 1);
        assert_eq!(latest_not_apart(&seen), Some(day(6, 28)));
        // Two typos, each far apart, still under 1 % of the cells.
        seen.insert(day(11, 1), 1);
        assert_eq!(latest_not_apart(&seen), Some(day(6, 28)));
        // Shared by many cells: a real later date.
        seen.insert(typo, 50);
        assert_eq!(latest_not_apart(&seen), Some(typo));
        // Within a month of the next: kept.
        let mut close: std::collections::BTreeMap<NaiveDate, u64> =
            (1..=28).map(|d| (day(6, d), 10)).collect();
        close.insert(day(7, 20), 1);
        assert_eq!(latest_not_apart(&close), Some(day(7, 20)));
        assert_eq!(latest_not_apart(&Default::default()), None);
        // A few dates: a gap says nothing, the latest is kept.
        let few: std::collections::BTreeMap<NaiveDate, u64> =
            [(day(1, 10), 2), (day(6, 21), 1), (typo, 1)].into();
        assert_eq!(latest_not_apart(&few), Some(typo));
    }

    fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, day)
    }

    #[test]
    fn iso_dates_and_slash_dates() {
        assert_eq!(parse_date("2024-05-31"), Ok(d(2024, 5, 31)));
        assert_eq!(parse_date(" 2024-02-29 "), Ok(d(2024, 2, 29)));
        assert_eq!(parse_date("2024/05/31"), Ok(d(2024, 5, 31)));
        assert_eq!(parse_date("2024/5/3"), Ok(d(2024, 5, 3)));
        assert_eq!(parse_date(""), Ok(None));
        assert_eq!(parse_date("NA"), Ok(None));
        assert_eq!(parse_date("2023-02-29"), Err(NotADate));
        assert_eq!(parse_date("2024-13-01"), Err(NotADate));
        // Each spelling read zero-padded is read unpadded too.
        assert_eq!(parse_date("2024-5-31"), Ok(d(2024, 5, 31)));
        assert_eq!(parse_date("2024-6-1"), Ok(d(2024, 6, 1)));
        assert_eq!(parse_date("2024-06-1"), Ok(d(2024, 6, 1)));
        assert_eq!(parse_date("2024-6-1 9:05"), Ok(d(2024, 6, 1)));
        assert_eq!(parse_date("2024/6/1T9:5:7Z"), Ok(d(2024, 6, 1)));
        assert_eq!(parse_date("2024-6-1T23:30-02:00"), Ok(d(2024, 6, 2)));
        assert_eq!(parse_date("2024-006-01"), Err(NotADate));
        assert_eq!(parse_date("24-6-1"), Err(NotADate));
        assert_eq!(parse_date("2024-6-"), Err(NotADate));
        assert_eq!(parse_date("2024/05-31"), Err(NotADate));
        assert_eq!(parse_date("20240531"), Err(NotADate));
        assert_eq!(parse_date("2024-05-31x"), Err(NotADate));
        assert_eq!(parse_date("yesterday"), Err(NotADate));
    }

    #[test]
    fn date_times_take_the_utc_calendar_date() {
        assert_eq!(parse_date("2024-05-31T10:00:00"), Ok(d(2024, 5, 31)));
        assert_eq!(parse_date("2024-05-31 10:00:00"), Ok(d(2024, 5, 31)));
        assert_eq!(parse_date("2024-05-31 10:00"), Ok(d(2024, 5, 31)));
        assert_eq!(parse_date("2024-05-31T10:00:00.123Z"), Ok(d(2024, 5, 31)));
        // 23:30 at UTC−2 is 01:30 the next day in UTC.
        assert_eq!(parse_date("2024-05-31T23:30:00-02:00"), Ok(d(2024, 6, 1)));
        // 00:30 at UTC+02:00 is the evening before in UTC.
        assert_eq!(parse_date("2024-01-01T00:30:00+02:00"), Ok(d(2023, 12, 31)));
        assert_eq!(parse_date("2024-01-01T00:30:00+0200"), Ok(d(2023, 12, 31)));
        assert_eq!(parse_date("2024-01-01T12:00:00+05"), Ok(d(2024, 1, 1)));
        assert_eq!(parse_date("2024/01/01 23:59:60"), Ok(d(2024, 1, 1)));
        assert_eq!(parse_date("2024-05-31T25:00:00"), Err(NotADate));
        assert_eq!(parse_date("2024-05-31T10:00:00+2"), Err(NotADate));
        assert_eq!(parse_date("2024-05-31T10:00:00."), Err(NotADate));
        assert_eq!(parse_date("2024-05-31T"), Err(NotADate));
    }

    #[test]
    fn day_month_forms_are_ambiguous_not_dates() {
        for raw in [
            "03/04/2024",
            "3/4/24",
            "03.04.2024",
            "31-12-2024",
            "03/04/2024 10:00",
        ] {
            assert_eq!(parse_date(raw), Err(NotADate), "{raw}");
            assert!(looks_ambiguous(raw), "{raw}");
        }
        for raw in ["2024-05-31", "1/2", "12/345/2024", "3/4/202", "abc"] {
            assert!(!looks_ambiguous(raw), "{raw}");
        }
    }

    #[test]
    fn day_counts_and_words() {
        let reference = d(2025, 4, 17).unwrap();
        let signup = d(2024, 3, 1).unwrap();
        assert_eq!(days_before(signup, reference), 412);
        assert_eq!(days_before(d(2025, 4, 20).unwrap(), reference), -3);
        assert_eq!(date_days_before(reference, 412), Some(signup));
        assert_eq!(relative(412), "412 days before");
        assert_eq!(relative(1), "1 day before");
        assert_eq!(relative(0), "on");
        assert_eq!(relative(-3), "3 days after");
        assert_eq!(iso(signup), "2024-03-01");
        assert_eq!(parse_reference("2025-04-17"), Ok(reference));
        assert_eq!(parse_reference("2025-4-17"), Ok(reference));
        // A typo far in the future does not become the file's reference date.
        let today = d(2026, 11, 30).unwrap();
        let file = [signup, reference, d(2099, 1, 1).unwrap()];
        assert_eq!(reference_from(file, today), reference);
        assert_eq!(reference_from([d(2030, 1, 1).unwrap()], today), today);
        assert_eq!(reference_from([], today), today);
        assert!(parse_reference("2025/04/17").is_err());
        assert!(parse_reference("17/04/2025").is_err());
    }
}
