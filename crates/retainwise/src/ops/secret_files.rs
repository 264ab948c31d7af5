//! Secrets from files: for every variable `X` the binary reads (see [`super::env_vars`]),
//! `X_FILE=/path` sets `X` to that file's content, the convention of Docker and Kubernetes
//! secrets (a mounted file, never in the task's environment listing or `ps`).
//!
//! Runs before the command line is parsed, so every setting — `RETAINWISE_DATABASE_URL`,
//! `DATABASE_URL`, `RETAINWISE_JWT_SECRET`, … — can come from a file. The content is never
//! printed: errors name the variable and the path only.

use std::path::Path;

/// Largest secret file read, in bytes: a URL or a key, not a document.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Why a `*_FILE` variable could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Both `X` and `X_FILE` are set: which one wins would be a guess.
    #[error("both {var} and {var}_FILE are set; set only one")]
    Both {
        /// The variable, without `_FILE`.
        var: String,
    },
    /// The file could not be read.
    #[error("{var}_FILE={path}: cannot read the file: {source}")]
    Read {
        /// The variable, without `_FILE`.
        var: String,
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is too large, empty, or not UTF-8.
    #[error("{var}_FILE={path}: {what}")]
    Content {
        /// The variable, without `_FILE`.
        var: String,
        /// The path given.
        path: String,
        /// What is wrong (never the content).
        what: &'static str,
    },
}

/// Sets every variable of `vars` whose `NAME_FILE` is set from that file, with one trailing
/// line ending removed (what `echo … > file` and most secret stores add). Returns the names set.
///
/// Call it before any thread starts (it writes the process environment).
///
/// Errors: see [`SecretFileError`]; nothing is set when an error is returned for that variable.
pub fn load(vars: &[&str]) -> Result<Vec<String>, SecretFileError> {
    let mut set = Vec::new();
    for var in vars {
        let file_var = format!("{var}_FILE");
        let Some(path) = std::env::var_os(&file_var).filter(|p| !p.is_empty()) else {
            continue;
        };
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            return Err(SecretFileError::Both {
                var: (*var).to_owned(),
            });
        }
        let value = read(var, Path::new(&path))?;
        std::env::set_var(var, value);
        set.push((*var).to_owned());
    }
    Ok(set)
}

fn read(var: &str, path: &Path) -> Result<String, SecretFileError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let fail = |source| SecretFileError::Read {
        var: var.to_owned(),
        path: shown.clone(),
        source,
    };
    let content = |what| SecretFileError::Content {
        var: var.to_owned(),
        path: shown.clone(),
        what,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(fail)?
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(content("larger than 64 KiB; a secret file holds one value"));
    }
    let mut text = String::from_utf8(bytes).map_err(|_| content("not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(content("the file is empty"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sets_its_variable_without_the_line_ending_and_conflicts_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://u:s3cret@db/x\r\n").unwrap();
        let var = "RETAINWISE_TEST_SECRET_FILES_A";
        std::env::set_var(format!("{var}_FILE"), &file);
        assert_eq!(load(&[var]).unwrap(), vec![var.to_owned()]);
        assert_eq!(std::env::var(var).unwrap(), "postgres://u:s3cret@db/x");
        // Now both are set: refused, and the message carries no secret.
        let err = load(&[var]).unwrap_err().to_string();
        assert!(err.contains("both") && !err.contains("s3cret"), "{err}");
        std::env::remove_var(var);

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let var = "RETAINWISE_TEST_SECRET_FILES_B";
        std::env::set_var(format!("{var}_FILE"), &empty);
        let err = load(&[var]).unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains(&format!("{var}_FILE")),
            "{err}"
        );
        assert!(std::env::var_os(var).is_none());
        std::env::set_var(format!("{var}_FILE"), dir.path().join("missing"));
        assert!(load(&[var])
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
    }
}
