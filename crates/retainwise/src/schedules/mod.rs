//! Scheduled re-scoring: an organisation's cron schedules, each re-scoring the organisation's
//! latest completed upload or a file at an object key of its upload folder with the active
//! model, so customer history and drift accumulate without anyone uploading.
//!
//! A schedule's slots are the times its standard 5-field cron expression names, in UTC (parsed
//! by the `croner` crate, POSIX/Vixie semantics: `minute hour day-of-month month day-of-week`).
//! A periodic loop ([`tick::run`], in the `serve` and `api` roles: they always run, while
//! workers may scale to zero on an empty queue, and they hold the grant to write under
//! `uploads/`) queues one ordinary prediction per (schedule, slot) through the upload's own
//! enqueue path (so history, drift, shadow scoring, metering,
//! the quota and webhooks apply), in the transaction that inserts the slot's `schedule_runs`
//! row with `ON CONFLICT DO NOTHING`: exactly one run per slot however many processes tick.
//! Slots passed over while no API process ran are not run in a burst: only the latest of them runs,
//! once, and its run counts the others as `missed`. A slot that cannot be queued (the source
//! file is gone, the quota or the job cap refuses) is recorded SKIPPED with the reason.

pub mod cli;
pub mod tick;

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::parser::{CronParser, Seconds, Year};
use serde::Serialize;
use sqlx::AnyPool;

use crate::audit::{self, Action, Actor};
use crate::domain::{ObjectKey, OrgId};

/// Schedules an organisation may have: each can queue a prediction a minute, so a runaway
/// script adding them is stopped well before it fills the queue.
pub const MAX_PER_ORG: i64 = 50;

/// Runs kept per schedule in listings (newest first).
pub const RUNS_SHOWN: i64 = 10;

/// Earlier slots counted as missed before a run, at most (a minutely schedule after a week
/// down would otherwise walk ten thousand slots).
const MISSED_COUNT_LIMIT: u64 = 10_000;

/// A parsed cron expression: 5 fields, UTC.
#[derive(Debug, Clone)]
pub struct CronExpr(croner::Cron);

impl FromStr for CronExpr {
    type Err = String;

    /// Parses a standard 5-field expression (`*/15 * * * *`, `0 6 * * MON`); seconds and year
    /// fields are refused, as is an expression whose next slot cannot be found (`0 0 30 2 *`).
    ///
    /// Errors: what is expected and the parser's reason.
    fn from_str(raw: &str) -> Result<Self, String> {
        let expected = "expected a standard 5-field cron expression in UTC: minute hour \
                        day-of-month month day-of-week, e.g. \"0 6 * * 1\" (Mondays at 06:00 UTC)";
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(format!("it is empty; {expected}"));
        }
        if raw.len() > 200 {
            return Err(format!("it is longer than 200 characters; {expected}"));
        }
        let fields = raw.split_whitespace().count();
        if fields != 5 && !raw.starts_with('@') {
            return Err(format!("{raw:?} has {fields} fields; {expected}"));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(raw)
            .map_err(|e| format!("{raw:?} does not read: {e}; {expected}"))?;
        let expr = Self(cron);
        if expr.next_after(crate::time::now_ms()).is_none() {
            return Err(format!(
                "{raw:?} names no time that ever comes (e.g. the 30th of February); {expected}"
            ));
        }
        Ok(expr)
    }
}

/// Epoch milliseconds as a UTC time (the epoch itself for a value out of range).
fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl CronExpr {
    /// The expression as written (normalised by the parser to upper case).
    pub fn as_str(&self) -> &str {
        self.0.pattern.as_str()
    }

    /// The first slot strictly after `ms` (epoch milliseconds), `None` when none can be found.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        self.0
            .find_next_occurrence(&utc(ms), false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// The slot to run at `now`: the latest slot in `(after, now]` and how many earlier slots
    /// of that range it passes over (counted up to a limit), `None` when no slot is due.
    pub fn due(&self, after: i64, now: i64) -> Option<(i64, u64)> {
        let slot = self
            .0
            .find_previous_occurrence(&utc(now), true)
            .ok()?
            .timestamp_millis();
        if slot <= after {
            return None;
        }
        let missed = self
            .0
            .iter_after(utc(after))
            .take_while(|t| t.timestamp_millis() < slot)
            .take(MISSED_COUNT_LIMIT as usize)
            .count() as u64;
        Some((slot, missed))
    }
}

/// What a schedule re-scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The organisation's latest upload whose prediction completed.
    Latest,
    /// A file the organisation keeps at this key of its upload folder (`uploads/{org}/x.csv`),
    /// e.g. rewritten each night by its own export.
    Object(ObjectKey),
}

impl Source {
    /// `latest`, or an object key (a full URL under the storage root is accepted too) that must
    /// be a `.csv` directly in `org`'s upload folder.
    ///
    /// Errors: what to write instead.
    pub fn parse(raw: &str, root_url: &str, org: &OrgId) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("latest") {
            return Ok(Self::Latest);
        }
        ObjectKey::parse_upload(raw, root_url, org)
            .map(Self::Object)
            .map_err(|e| {
                format!(
                    "{e}; give \"latest\" (the latest completed upload) or the key of a CSV in \
                     your upload folder, uploads/{}/NAME.csv",
                    org.folder()
                )
            })
    }

    /// The stored text: `latest` or the key.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Latest => "latest",
            Self::Object(key) => key.as_str(),
        }
    }
}

/// A schedule as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Schedule {
    /// Its id (a UUID).
    pub id: String,
    /// The name given, or the cron expression when none was.
    pub name: String,
    /// The cron expression (5 fields, UTC).
    pub cron: String,
    /// `latest` or the object key re-scored.
    pub source: String,
    /// True while paused: no slot runs, and none is made up on resuming.
    pub paused: bool,
    /// When it was added (RFC 3339).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub created_at: i64,
    /// Who added it (the user, or the operator).
    pub created_by: String,
    /// The next slot (RFC 3339), `null` while paused.
    #[serde(serialize_with = "crate::time::serialize_rfc3339_opt")]
    pub next_run_at: Option<i64>,
    /// The latest runs, newest first (at most [`RUNS_SHOWN`]).
    pub runs: Vec<Run>,
    /// Slots at or before this are not run (epoch ms).
    #[serde(skip)]
    pub after_ms: i64,
}

/// One slot of a schedule.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Run {
    /// The slot's time (RFC 3339).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub slot: i64,
    /// `QUEUED` (a prediction was queued: follow it for its status) or `SKIPPED`.
    pub status: String,
    /// The prediction queued for the slot.
    pub prediction_id: Option<String>,
    /// Why the slot was skipped.
    pub reason: Option<String>,
    /// Earlier slots passed over while no process ticked (only this latest one ran).
    pub missed: i64,
}

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    id: String,
    name: String,
    cron: String,
    source: String,
    paused: i64,
    created_at: i64,
    created_by: String,
    after_ms: i64,
}

/// What a new schedule is made of, checked by [`NewSchedule::check`].
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// The cron expression.
    pub cron: CronExpr,
    /// What it re-scores.
    pub source: Source,
    /// Its name (at most 100 characters).
    pub name: String,
}

impl NewSchedule {
    /// Checks the fields a person gave (`cron`, `source`, optional `name`) for `org`.
    ///
    /// Errors: (the field at fault, what is wrong and what is expected).
    pub fn check(
        cron: Option<&str>,
        source: Option<&str>,
        name: Option<&str>,
        root_url: &str,
        org: &OrgId,
    ) -> Result<Self, (&'static str, String)> {
        let cron_raw = cron.ok_or((
            "cron",
            "missing; give a standard 5-field cron expression in UTC, e.g. \"0 6 * * 1\""
                .to_owned(),
        ))?;
        let cron: CronExpr = cron_raw.parse().map_err(|e| ("cron", e))?;
        let source =
            Source::parse(source.unwrap_or("latest"), root_url, org).map_err(|e| ("source", e))?;
        let name = name.map(str::trim).unwrap_or_default();
        if name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err((
                "name",
                "at most 100 characters, without control characters".to_owned(),
            ));
        }
        let name = if name.is_empty() {
            cron_raw.trim().to_owned()
        } else {
            name.to_owned()
        };
        Ok(Self { cron, source, name })
    }
}

/// Why adding a schedule was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The organisation has [`MAX_PER_ORG`] schedules already.
    #[error(
        "your organisation has {MAX_PER_ORG} schedules, the most it may have; remove one first"
    )]
    TooMany,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Adds `new` to `org`'s schedules (audited as `schedule.add` by `actor`); its first slot is
/// the first after now. Returns its id.
///
/// Errors: [`AddError`].
pub async fn add(
    pool: &AnyPool,
    org: &OrgId,
    new: &NewSchedule,
    actor: &Actor,
) -> Result<String, AddError> {
    let mut tx = pool.begin().await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM schedules WHERE org_id = $1")
        .bind(org.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_PER_ORG {
        return Err(AddError::TooMany);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::time::now_ms();
    let by = actor.user.clone().unwrap_or_default();
    sqlx::query(
        "INSERT INTO schedules (id, org_id, name, cron, source, paused, created_at, created_by, after_ms) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $6)",
    )
    .bind(&id)
    .bind(org.as_str())
    .bind(&new.name)
    .bind(new.cron.as_str())
    .bind(new.source.as_str())
    .bind(now)
    .bind(&by)
    .execute(&mut *tx)
    .await?;
    let record = Some(("schedule", id.as_str()));
    audit::record(
        &mut *tx,
        actor,
        Action::ScheduleAdd,
        record,
        &audit::Outcome::Ok,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Removes `org`'s schedule `id` and its runs (the predictions it queued stay); audited as
/// `schedule.remove`. False when `org` has no such schedule.
///
/// Errors: the database's.
pub async fn remove(
    pool: &AnyPool,
    org: &OrgId,
    id: &str,
    actor: &Actor,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let gone = sqlx::query("DELETE FROM schedules WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
    if gone.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM schedule_runs WHERE schedule_id = $1 AND org_id = $2")
        .bind(id)
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
    let record = Some(("schedule", id));
    audit::record(
        &mut *tx,
        actor,
        Action::ScheduleRemove,
        record,
        &audit::Outcome::Ok,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Pauses (`paused`) or resumes `org`'s schedule `id`; audited as `schedule.pause` or
/// `schedule.resume`. Resuming starts from now: slots that passed while paused never run.
/// False when `org` has no such schedule.
///
/// Errors: the database's.
pub async fn set_paused(
    pool: &AnyPool,
    org: &OrgId,
    id: &str,
    paused: bool,
    actor: &Actor,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let now = crate::time::now_ms();
    let sql = if paused {
        "UPDATE schedules SET paused = 1 WHERE id = $1 AND org_id = $2"
    } else {
        "UPDATE schedules SET paused = 0, after_ms = CASE WHEN after_ms > $3 THEN after_ms ELSE $3 END \
         WHERE id = $1 AND org_id = $2 AND paused = 1"
    };
    let mut query = sqlx::query(sql).bind(id).bind(org.as_str());
    if !paused {
        query = query.bind(now);
    }
    let changed = query.execute(&mut *tx).await?.rows_affected() > 0;
    if !changed {
        // Resuming a running schedule changes nothing; only a missing one is "no such".
        let exists = get_row(&mut tx, org, id).await?.is_some();
        return Ok(exists);
    }
    let action = if paused {
        Action::SchedulePause
    } else {
        Action::ScheduleResume
    };
    let record = Some(("schedule", id));
    audit::record(&mut *tx, actor, action, record, &audit::Outcome::Ok).await?;
    tx.commit().await?;
    Ok(true)
}

async fn get_row(
    conn: &mut sqlx::AnyConnection,
    org: &OrgId,
    id: &str,
) -> Result<Option<ScheduleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, cron, source, paused, created_at, created_by, after_ms \
         FROM schedules WHERE id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(org.as_str())
    .fetch_optional(conn)
    .await
}

/// `org`'s schedules, oldest first, each with its next slot after `now` and its latest runs.
///
/// Errors: the database's.
pub async fn list(pool: &AnyPool, org: &OrgId, now: i64) -> Result<Vec<Schedule>, sqlx::Error> {
    let rows: Vec<ScheduleRow> = sqlx::query_as(
        "SELECT id, name, cron, source, paused, created_at, created_by, after_ms \
         FROM schedules WHERE org_id = $1 ORDER BY created_at, id",
    )
    .bind(org.as_str())
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let runs = runs(pool, org, &row.id, RUNS_SHOWN).await?;
        out.push(schedule_of(row, runs, now));
    }
    Ok(out)
}

/// `org`'s schedule `id` with its latest `limit` runs, `None` when it has no such schedule.
///
/// Errors: the database's.
pub async fn get(
    pool: &AnyPool,
    org: &OrgId,
    id: &str,
    limit: i64,
    now: i64,
) -> Result<Option<Schedule>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let Some(row) = get_row(&mut conn, org, id).await? else {
        return Ok(None);
    };
    drop(conn);
    let runs = runs(pool, org, id, limit).await?;
    Ok(Some(schedule_of(row, runs, now)))
}

fn schedule_of(row: ScheduleRow, runs: Vec<Run>, now: i64) -> Schedule {
    let paused = row.paused != 0;
    let next_run_at = if paused {
        None
    } else {
        row.cron
            .parse::<CronExpr>()
            .ok()
            .and_then(|c| c.next_after(now.max(row.after_ms)))
    };
    Schedule {
        id: row.id,
        name: row.name,
        cron: row.cron,
        source: row.source,
        paused,
        created_at: row.created_at,
        created_by: row.created_by,
        next_run_at,
        runs,
        after_ms: row.after_ms,
    }
}

async fn runs(pool: &AnyPool, org: &OrgId, id: &str, limit: i64) -> Result<Vec<Run>, sqlx::Error> {
    sqlx::query_as(
        "SELECT slot, status, prediction_id, reason, missed FROM schedule_runs \
         WHERE schedule_id = $1 AND org_id = $2 ORDER BY slot DESC LIMIT $3",
    )
    .bind(id)
    .bind(org.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        crate::time::to_ms(crate::time::parse_rfc3339(s).unwrap())
    }

    #[test]
    fn five_fields_in_utc_and_refusals_say_what_is_expected() {
        let c: CronExpr = "0 6 * * 1".parse().unwrap();
        // 2026-12-07 is a Monday.
        assert_eq!(
            c.next_after(ms("2026-12-07T05:00:00Z")),
            Some(ms("2026-12-07T06:00:00Z"))
        );
        for bad in [
            "",
            "0 6 * *",
            "0 0 6 * * 1",
            "61 * * * *",
            "0 0 30 2 *",
            "hello",
        ] {
            let e = bad.parse::<CronExpr>().unwrap_err();
            assert!(e.contains("5-field cron expression in UTC"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_the_latest_missed_slot_is_due_and_the_others_are_counted() {
        let c: CronExpr = "0 * * * *".parse().unwrap();
        let after = ms("2026-12-07T00:30:00Z");
        assert_eq!(c.due(after, ms("2026-12-07T00:59:59Z")), None);
        assert_eq!(
            c.due(after, ms("2026-12-07T01:00:00Z")),
            Some((ms("2026-12-07T01:00:00Z"), 0))
        );
        assert_eq!(
            c.due(after, ms("2026-12-07T04:10:00Z")),
            Some((ms("2026-12-07T04:00:00Z"), 3))
        );
        assert_eq!(
            c.due(ms("2026-12-07T04:00:00Z"), ms("2026-12-07T04:10:00Z")),
            None
        );
    }
}
