//! Opening a pool with the settings the queue relies on.

use super::Dialect;
use crate::QueueError;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use std::path::Path;

/// Run on every new SQLite connection. busy_timeout first, so that switching to WAL waits for
/// another process's lock instead of failing.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    // With WAL, NORMAL loses at most the last commits on power loss, never on a process crash.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
];

/// Connections of a Postgres pool.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;

/// Opens a pool for a database URL and tells which dialect it speaks.
///
/// * `sqlite://PATH` (or `sqlite:PATH`; `sqlite::memory:` for a throwaway database): the file
///   and its parent folder are created if missing (percent-escapes in PATH are not decoded for
///   that). Every connection runs WAL journal mode, `busy_timeout` 10 s, `synchronous=NORMAL`
///   and `foreign_keys=ON`. The pool has **one** connection, kept open for the pool's life, so
///   that the API and the worker in one process serialise their writes through it and never
///   see "database is locked"; other processes on the same file wait up to the busy timeout.
/// * `postgres://…` / `postgresql://…`: a pool of up to 10 connections.
///
/// Installs sqlx's `Any` drivers on first use (panics, as sqlx does, if someone installed a
/// different driver set before).
///
/// Errors: [`QueueError::InvalidUrl`] for another scheme, [`QueueError::Io`] if the SQLite file
/// cannot be created, [`QueueError::Database`] if connecting fails.
pub async fn connect(url: &str) -> Result<(AnyPool, Dialect), QueueError> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::from_url(url).ok_or_else(|| QueueError::InvalidUrl(url.to_owned()))?;
    let pool = match dialect {
        Dialect::Sqlite => {
            if let Some(path) = sqlite_file_path(url) {
                create_file(Path::new(path))?;
            }
            AnyPoolOptions::new()
                .max_connections(1)
                // An in-memory database lives as long as its connection; a file database
                // gains nothing from reconnecting either.
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(*pragma).await?;
                        }
                        Ok(())
                    })
                })
                .connect(url)
                .await?
        }
        Dialect::Postgres => {
            AnyPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .connect(url)
                .await?
        }
    };
    Ok((pool, dialect))
}

/// The file a `sqlite:` URL names, or `None` for in-memory databases. Mirrors sqlx's own
/// parsing (scheme, then everything before `?`).
fn sqlite_file_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path.is_empty() || path == ":memory:" || params.split('&').any(|kv| kv == "mode=memory");
    (!in_memory).then_some(path)
}

/// sqlx opens SQLite files without `create` unless the URL says `mode=rwc`; creating the file
/// here keeps URLs plain (`sqlite://data/retainwise.db` just works).
fn create_file(path: &Path) -> Result<(), QueueError> {
    let io_error = |source| QueueError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_error)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_file_path("sqlite://data/x.db"), Some("data/x.db"));
        assert_eq!(
            sqlite_file_path("sqlite:///abs/x.db?mode=rwc"),
            Some("/abs/x.db")
        );
        assert_eq!(sqlite_file_path("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("sqlite://:memory:"), None);
        assert_eq!(sqlite_file_path("sqlite://?mode=memory"), None);
        assert_eq!(sqlite_file_path("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file_path("postgres://h/db"), None);
    }

    #[test]
    fn dialect_from_url() {
        assert_eq!(Dialect::from_url("sqlite://x.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::from_url("sqlite::memory:"), Some(Dialect::Sqlite));
        assert_eq!(
            Dialect::from_url("postgres://u@h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            Dialect::from_url("postgresql://u@h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("mysql://h/db"), None);
        assert_eq!(Dialect::from_url("db"), None);
    }
}
