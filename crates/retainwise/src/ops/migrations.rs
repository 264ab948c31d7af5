//! The database schema as a deployment step: `retainwise migrate` applies every migration (the
//! application's and the queue's) and exits; a role started with `--no-migrate` applies none and
//! checks instead that the schema is the one this build expects.
//!
//! Both sets share sqlx's `_sqlx_migrations` table (each ignores the other's versions). On
//! Postgres sqlx takes an advisory lock around a run, so concurrent starts never apply a
//! migration twice; `--no-migrate` still matters for a fleet: a schema change happens once, at a
//! moment the operator chose, under a role that may change the schema.

use std::collections::HashMap;

use anyhow::Context;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::AnyPool;

/// The application's migrations (`crates/retainwise/migrations`).
pub fn app_migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Every migrator a running `retainwise` applies, with a name for messages.
fn migrators() -> [(&'static str, Migrator); 2] {
    let mut queue = retainwise_queue::migrator();
    queue.set_ignore_missing(true);
    [("application", app_migrator()), ("queue", queue)]
}

/// Applies every pending migration of this build (both sets), then checks the result as
/// `--no-migrate` would; returns how many migrations of this build the database holds and the
/// latest version.
///
/// Errors: a migration fails, or an applied one differs from this build's (checksum).
pub async fn apply(pool: &AnyPool) -> anyhow::Result<(usize, i64)> {
    let mut count = 0;
    let mut latest = 0;
    for (name, migrator) in migrators() {
        migrator
            .run(pool)
            .await
            .with_context(|| format!("applying the {name} migrations"))?;
        for m in migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
        {
            count += 1;
            latest = latest.max(m.version);
        }
    }
    check(pool).await?;
    Ok((count, latest))
}

/// Checks, without changing anything, that every migration of this build is applied with the
/// same checksum (versions applied by a newer build are fine, as in a rolling deploy).
///
/// Errors: the migrations table cannot be read (nothing applied yet), a migration is missing,
/// or one was applied from different SQL; the message names the versions and says to run
/// `retainwise migrate`.
pub async fn check(pool: &AnyPool) -> anyhow::Result<()> {
    let applied = applied(pool).await.context(
        "--no-migrate: cannot read the applied migrations (has `retainwise migrate` run on this database?)",
    )?;
    let mut missing = Vec::new();
    let mut changed = Vec::new();
    for (name, migrator) in migrators() {
        for m in migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
        {
            match applied.get(&m.version) {
                None => missing.push(format!("{} {} ({name})", m.version, m.description)),
                Some(sum) if sum.as_slice() != &*m.checksum => {
                    changed.push(format!("{} {} ({name})", m.version, m.description))
                }
                Some(_) => {}
            }
        }
    }
    // Applied, but no migration of this build: a newer release migrated the database, and this
    // one (a rollback) does not know the schema it finds.
    let known: std::collections::HashSet<i64> = migrators()
        .iter()
        .flat_map(|(_, m)| m.iter().map(|m| m.version))
        .collect();
    let mut unknown: Vec<i64> = applied
        .keys()
        .filter(|v| !known.contains(v))
        .copied()
        .collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        anyhow::bail!(
            "the database has {} migration(s) this build does not know ({}): a newer release migrated it; run that release, or restore the database from before it",
            unknown.len(),
            unknown
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !changed.is_empty() {
        anyhow::bail!(
            "--no-migrate: migrations applied from different SQL than this build's: {}",
            changed.join(", ")
        );
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "--no-migrate: the database lacks {} migration(s) of this build: {}; run `retainwise migrate` \
             (the one-off migrate task) first, or start without RETAINWISE_NO_MIGRATE",
            missing.len(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// Applied migrations: version → checksum.
async fn applied(pool: &AnyPool) -> anyhow::Result<HashMap<i64, Vec<u8>>> {
    let mut conn = pool.acquire().await?;
    let rows = conn.list_applied_migrations().await?;
    Ok(rows
        .into_iter()
        .map(|m| (m.version, m.checksum.into_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn check_names_missing_and_changed_migrations_and_apply_fills_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let (pool, _) = retainwise_queue::connect(&url).await.unwrap();
        let err = check(&pool).await.unwrap_err().to_string();
        assert!(err.contains("retainwise migrate"), "{err}");

        let (count, latest) = apply(&pool).await.unwrap();
        assert!(count >= 9, "{count}");
        check(&pool).await.unwrap();

        // A database one migration behind this build (an older release's): the missing one is
        // named, with the command that fixes it, and `migrate` applies just that one.
        let behind_url = format!("sqlite://{}", dir.path().join("behind.sqlite").display());
        let (behind, _) = retainwise_queue::connect(&behind_url).await.unwrap();
        retainwise_queue::migrator().run(&behind).await.unwrap();
        let mut older = app_migrator();
        let newest = older.migrations.last().unwrap().version;
        let kept = older.migrations[..older.migrations.len() - 1].to_vec();
        older.migrations = std::borrow::Cow::Owned(kept);
        older.run(&behind).await.unwrap();
        let err = check(&behind).await.unwrap_err().to_string();
        assert!(
            err.contains(&newest.to_string()) && err.contains("lacks 1 migration"),
            "{err}"
        );
        apply(&behind).await.unwrap();
        check(&behind).await.unwrap();

        // An applied migration whose SQL differs from this build's.
        sqlx::query(&format!(
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = {latest}"
        ))
        .execute(&pool)
        .await
        .unwrap();
        let err = check(&pool).await.unwrap_err().to_string();
        assert!(err.contains("different SQL"), "{err}");

        // A migration of a newer release (a rollback to this build): refused, naming it, by
        // the check and by `migrate`.
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (20991231000000, 'future', TRUE, x'00', 0)",
        )
        .execute(&behind)
        .await
        .unwrap();
        for err in [check(&behind).await, apply(&behind).await.map(|_| ())] {
            let err = err.unwrap_err().to_string();
            assert!(
                err.contains("20991231000000") && err.contains("does not know"),
                "{err}"
            );
        }
    }
}
