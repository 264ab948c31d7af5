//! Retention: how long an organisation keeps its files, and removing what is due. An uploaded
//! file is kept `upload_days` after its prediction finished (default 30), its results and report
//! `result_days` (default 365); an organisation's own setting (`org_retention`, set by an owner
//! or the operator) wins over the operator's defaults (`RETAINWISE_RETENTION_UPLOAD_DAYS`,
//! `RETAINWISE_RETENTION_RESULT_DAYS`).
//!
//! Enforced by the `retention` job (`worker/retention.rs`), which [`schedule`] queues once per
//! organisation per UTC day: the `retention_runs` row and its message commit together, and the
//! row's UNIQUE (organisation, day) key makes a second worker's insert do nothing, so a fleet
//! queues each day's run exactly once. A run judges "due" by its own `as_of` time (the
//! scheduler's clock when it was queued), so a retried run removes exactly what the first
//! attempt would have, and a test moves a [`Clock`] instead of waiting 30 days.

use sqlx::AnyConnection;

use crate::app::App;
use crate::config::Retention;
use crate::domain::{OrgId, PredictionId};
use crate::storage::StorageError;
use crate::time::{utc_day, Clock, DAY_MS};

/// `org`'s retention and whether it is its own (else the operator's defaults, `default`).
///
/// Errors: the database's.
pub async fn of(
    pool: &sqlx::AnyPool,
    org: &OrgId,
    default: Retention,
) -> Result<(Retention, bool), sqlx::Error> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT upload_days, result_days FROM org_retention WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        Some((u, r)) => (
            Retention {
                upload_days: u32::try_from(u).unwrap_or(u32::MAX),
                result_days: u32::try_from(r).unwrap_or(u32::MAX),
            },
            true,
        ),
        None => (default, false),
    })
}

/// Largest number of days a retention may be (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// Checks days given by a person: 1 to [`MAX_DAYS`] each. Errors: a sentence naming the field,
/// the value and the range.
pub fn check(uploads_days: i64, results_days: i64) -> Result<Retention, String> {
    let one = |name: &str, v: i64| -> Result<u32, String> {
        u32::try_from(v)
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| format!("{name} {v} is out of range: use 1 to {MAX_DAYS} days"))
    };
    Ok(Retention {
        upload_days: one("uploads_days", uploads_days)?,
        result_days: one("results_days", results_days)?,
    })
}

/// Sets `org`'s own retention on `conn` (the caller's transaction, with its audit entry).
///
/// Errors: the database's.
pub async fn set(
    conn: &mut AnyConnection,
    org: &OrgId,
    retention: Retention,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO org_retention (org_id, upload_days, result_days, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (org_id) DO UPDATE SET \
         upload_days = excluded.upload_days, result_days = excluded.result_days, \
         updated_at = excluded.updated_at",
    )
    .bind(org.as_str())
    .bind(i64::from(retention.upload_days))
    .bind(i64::from(retention.result_days))
    .bind(crate::time::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queues today's (by `clock`, UTC) retention run of every organisation that has none yet;
/// returns how many this call queued (0 when another process was first). Cheap when there is
/// nothing to queue (one query); `app::spawn_retention_scheduler` calls it hourly.
///
/// Errors: the database's or the queue's (the next pass tries again).
pub async fn schedule(app: &App, clock: &dyn Clock) -> anyhow::Result<u64> {
    let as_of = clock.now_ms();
    let day = utc_day(as_of);
    let orgs: Vec<(String,)> = sqlx::query_as(
        "SELECT o.id FROM (SELECT id FROM organisations UNION SELECT user_id FROM predictions) o \
         WHERE NOT EXISTS (SELECT 1 FROM retention_runs r WHERE r.user_id = o.id AND r.day = $1)",
    )
    .bind(&day)
    .fetch_all(app.db.pool())
    .await?;
    let mut queued = 0;
    for (org,) in orgs {
        let Ok(org) = org.parse::<OrgId>() else {
            continue;
        };
        let mut tx = app.db.pool().begin().await?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = crate::time::now_ms();
        let inserted = sqlx::query(
            "INSERT INTO retention_runs (id, user_id, day, as_of, status, queued_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'QUEUED', $5, $5) ON CONFLICT (user_id, day) DO NOTHING",
        )
        .bind(&id)
        .bind(org.as_str())
        .bind(&day)
        .bind(as_of)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            let message = crate::worker::RetentionMessage {
                run_id: id,
                user_id: org.to_string(),
            };
            crate::worker::enqueue::<crate::worker::RetentionRun>(
                app,
                &mut tx,
                &message,
                retainwise_queue::Priority::Normal,
            )
            .await?;
            queued += 1;
        }
        tx.commit().await?;
    }
    if queued > 0 {
        app.queue.wake();
    }
    Ok(queued)
}

/// What one run removed: uploads and results (with their reports), counted by prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Predictions whose uploaded file this run removed.
    pub uploads: u64,
    /// Predictions whose results and report this run removed.
    pub results: u64,
}

/// Why a run failed; both are transient.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
}

/// When a prediction finished: COMPLETED and FAILED have `completed_at`; a cancelled one, the
/// time it was cancelled.
/// (`PredictionRow::finished_at`, the same rule.)
const FINISHED_AT: &str = "CASE WHEN status = 'CANCELLED' THEN updated_at ELSE completed_at END";

/// Removes what is due in `org` at `as_of` with `retention`: the uploads of predictions finished
/// at least `upload_days` before, the results, download copies, reports, pieces and shadow scores
/// of those finished at least `result_days` before; each prediction records when (`as_of`) and
/// the days that applied. Idempotent: the counts are of predictions marked at `as_of`, so a
/// retried run reports what the run removed in all.
///
/// Errors: storage or database (transient).
pub async fn sweep(
    app: &App,
    org: &OrgId,
    as_of: i64,
    retention: Retention,
) -> Result<Swept, SweepError> {
    let f = org.folder();
    let finished = format!(
        "user_id = $1 AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND deleted_at IS NULL \
         AND ({FINISHED_AT}) <= $2"
    );
    let upload_cutoff = as_of - i64::from(retention.upload_days) * DAY_MS;
    let due: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT id, upload_id FROM predictions WHERE {finished} AND upload_deleted_at IS NULL"
    ))
    .bind(org.as_str())
    .bind(upload_cutoff)
    .fetch_all(app.db.pool())
    .await?;
    for (id, upload) in due {
        app.storage
            .delete_prefix(&format!("uploads/{f}/{upload}.csv"))
            .await?;
        app.storage
            .delete_prefix(&format!("incoming/uploads/{f}/{upload}.csv/"))
            .await?;
        sqlx::query(
            "UPDATE predictions SET upload_deleted_at = $1, upload_retention_days = $2 \
             WHERE id = $3 AND user_id = $4 AND upload_deleted_at IS NULL",
        )
        .bind(as_of)
        .bind(i64::from(retention.upload_days))
        .bind(&id)
        .bind(org.as_str())
        .execute(app.db.pool())
        .await?;
    }
    let result_cutoff = as_of - i64::from(retention.result_days) * DAY_MS;
    let due: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT id FROM predictions WHERE {finished} AND results_deleted_at IS NULL"
    ))
    .bind(org.as_str())
    .bind(result_cutoff)
    .fetch_all(app.db.pool())
    .await?;
    for (id,) in due {
        let Ok(prediction) = id.parse::<PredictionId>() else {
            continue;
        };
        for prefix in crate::deletion::result_prefixes(org, prediction) {
            app.storage.delete_prefix(&prefix).await?;
        }
        sqlx::query(
            "UPDATE predictions SET results_deleted_at = $1, results_retention_days = $2, \
             result_key = NULL, report_key = NULL \
             WHERE id = $3 AND user_id = $4 AND results_deleted_at IS NULL",
        )
        .bind(as_of)
        .bind(i64::from(retention.result_days))
        .bind(&id)
        .bind(org.as_str())
        .execute(app.db.pool())
        .await?;
    }
    let count = |column: &'static str| {
        let sql = format!("SELECT COUNT(*) FROM predictions WHERE user_id = $1 AND {column} = $2");
        async move {
            let (n,): (i64,) = sqlx::query_as(&sql)
                .bind(org.as_str())
                .bind(as_of)
                .fetch_one(app.db.pool())
                .await?;
            Ok::<u64, sqlx::Error>(n as u64)
        }
    };
    Ok(Swept {
        uploads: count("upload_deleted_at").await?,
        results: count("results_deleted_at").await?,
    })
}

/// Which of a prediction's files a retention notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// The uploaded CSV.
    Upload,
    /// The results and the report.
    Results,
}

/// The sentence a person reads about a file retention removes or will remove: `upload deleted
/// on DAY (retention: N days)` once `deleted_at` is set (N: the days that applied then, else
/// `days_now`), else `the uploaded file will be deleted on DAY` (`finished_at` + `days_now`),
/// else nothing (the prediction has not finished). Days are UTC calendar days.
pub fn notice(
    file: File,
    finished_at: Option<i64>,
    deleted_at: Option<i64>,
    days_then: Option<i64>,
    days_now: u32,
) -> Option<String> {
    let (short, long) = match file {
        File::Upload => ("upload", "the uploaded file"),
        File::Results => ("results and report", "the results and report"),
    };
    if let Some(at) = deleted_at {
        let days = days_then.unwrap_or(i64::from(days_now));
        return Some(format!(
            "{short} deleted on {} (retention: {days} days)",
            utc_day(at)
        ));
    }
    let due = finished_at? + i64::from(days_now) * DAY_MS;
    Some(format!("{long} will be deleted on {}", utc_day(due)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_the_day_before_and_after() {
        // 2026-12-07T00:00:00Z.
        let finished = 1_796_601_600_000;
        assert_eq!(
            notice(File::Upload, Some(finished), None, None, 30).unwrap(),
            "the uploaded file will be deleted on 2027-01-06"
        );
        assert_eq!(
            notice(
                File::Upload,
                Some(finished),
                Some(finished + 31 * DAY_MS),
                Some(30),
                7
            )
            .unwrap(),
            "upload deleted on 2027-01-07 (retention: 30 days)"
        );
        assert_eq!(notice(File::Results, None, None, None, 365), None);
    }

    #[test]
    fn days_are_checked() {
        assert!(check(30, 365).is_ok());
        assert!(check(0, 365).unwrap_err().contains("uploads_days 0"));
        assert!(check(30, 36_501)
            .unwrap_err()
            .contains("results_days 36501"));
    }
}
