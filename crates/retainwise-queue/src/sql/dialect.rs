//! The few SQL differences between SQLite and Postgres. Everything else is portable SQL run
//! through sqlx's `Any` driver.

/// Which SQL database a pool talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3 (bundled by sqlx): one writer at a time, so the pool has one connection.
    Sqlite,
    /// PostgreSQL (tested with 15).
    Postgres,
}

impl Dialect {
    /// The dialect of a database URL: `sqlite:…` → `Sqlite`, `postgres://…` or
    /// `postgresql://…` → `Postgres`, anything else → `None`.
    pub fn from_url(url: &str) -> Option<Dialect> {
        if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else {
            None
        }
    }

    /// SQL expression for "now" as unix epoch milliseconds (BIGINT) by the database clock.
    /// Both are constant within one statement, so `sent_at` and `visible_at` written by the same
    /// statement agree.
    pub(crate) fn now_ms(self) -> &'static str {
        match self {
            // strftime('%f') is "SS.SSS"; integer arithmetic keeps exact milliseconds where
            // julianday() would go through a double.
            Dialect::Sqlite => {
                "(CAST(strftime('%s','now') AS INTEGER) * 1000 \
                 + CAST(substr(strftime('%f','now'), 4, 3) AS INTEGER))"
            }
            Dialect::Postgres => {
                "CAST(FLOOR(EXTRACT(EPOCH FROM statement_timestamp()) * 1000) AS BIGINT)"
            }
        }
    }

    /// Row-lock clause for the subquery that picks rows to claim. SQLite has no row locks: its
    /// single writer already makes `UPDATE … WHERE id IN (SELECT …)` atomic. In Postgres,
    /// concurrent claimers skip each other's rows instead of waiting (and, since a claim never
    /// waits, two claims can never deadlock).
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }
}
