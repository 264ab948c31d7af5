//! Files answered as downloads (`Content-Disposition: attachment`), for the API and the pages.

/// A file name safe inside a quoted Content-Disposition value: ASCII letters, digits, `-`, `_`
/// and `.` (anything else becomes `_`), at most 100 characters, `upload` when nothing is left.
pub fn ascii_filename(stem: &str) -> String {
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if clean.is_empty() {
        "upload".to_owned()
    } else {
        clean
    }
}
