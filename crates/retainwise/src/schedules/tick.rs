//! The schedule loop of the `serve` and `api` roles: every tick finds each running schedule's
//! due slot and queues its prediction, exactly once per (schedule, slot) whatever the number of
//! processes ticking.
//!
//! One slot is one transaction: the schedule's `after_ms` moved to the slot (only while it is
//! before it and the schedule is not paused or removed), the `schedule_runs` row (`INSERT …
//! ON CONFLICT DO NOTHING`, its UNIQUE (schedule_id, slot) the arbiter), and the prediction
//! queued by the upload's own path (`api::queue_prediction_in`). A process whose
//! update or insert finds the slot taken rolls back and has done nothing. The
//! source file is copied to an upload of the run's own first (the prediction reads that copy
//! whatever later happens to the source); a process that loses the slot removes its copy.

use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{CronExpr, Source};
use crate::api::{ApiError, QueueSettings, StoredCsv};
use crate::app::App;
use crate::audit::Actor;
use crate::domain::{ObjectKey, OrgId, PredictionId, UploadId};

/// How often a process looks for due slots: well under the cron's one-minute resolution, so a
/// slot runs within this long of its time.
pub const EVERY: Duration = Duration::from_secs(15);

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ticked {
    /// Slots whose prediction this tick queued.
    pub queued: u64,
    /// Slots this tick recorded as skipped (with the reason on the run).
    pub skipped: u64,
    /// Due slots another process had already taken.
    pub taken: u64,
    /// Due slots that failed (storage or the database; logged, tried again at the next tick).
    pub failed: u64,
}

/// Ticks every `every` (with the real clock) until `shutdown`; a failing or panicking tick is
/// logged and the next one runs.
pub async fn run(app: App, every: Duration, shutdown: CancellationToken) {
    loop {
        let now = crate::time::now_ms();
        match std::panic::AssertUnwindSafe(tick(&app, now))
            .catch_unwind()
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(
                error = crate::error_chain::chain_anyhow(&e),
                "schedule tick failed"
            ),
            Err(panic) => tracing::error!(
                error = crate::worker::panic_message(&*panic),
                "schedule tick panicked; it runs again at the next interval"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[derive(sqlx::FromRow)]
struct Due {
    id: String,
    org_id: String,
    cron: String,
    source: String,
    after_ms: i64,
}

/// One pass at time `now` (epoch ms; tests give their own clock): every running schedule with
/// a slot in `(after_ms, now]` gets its latest such slot queued or recorded skipped. A schedule
/// that fails (storage or database down) is logged and tried again at the next tick; the
/// others go on.
///
/// Errors: the schedules could not be read.
pub async fn tick(app: &App, now: i64) -> anyhow::Result<Ticked> {
    let due: Vec<Due> = sqlx::query_as(
        "SELECT id, org_id, cron, source, after_ms FROM schedules WHERE paused = 0 \
         ORDER BY after_ms, id",
    )
    .fetch_all(app.db.pool())
    .await?;
    let mut ticked = Ticked::default();
    for schedule in due {
        let cron = match schedule.cron.parse::<CronExpr>() {
            Ok(cron) => cron,
            Err(e) => {
                warn!(schedule_id = %schedule.id, error = %e, "schedule_cron_unreadable");
                continue;
            }
        };
        let Some((slot, missed)) = cron.due(schedule.after_ms, now) else {
            continue;
        };
        match run_slot(app, &schedule, slot, missed).await {
            Ok(Slot::Queued) => ticked.queued += 1,
            Ok(Slot::Skipped) => ticked.skipped += 1,
            Ok(Slot::Taken) => ticked.taken += 1,
            Err(e) => {
                ticked.failed += 1;
                warn!(
                    schedule_id = %schedule.id,
                    slot = %crate::time::rfc3339(slot),
                    error = crate::error_chain::chain_anyhow(&e),
                    "schedule_slot_failed; tried again at the next tick"
                )
            }
        }
    }
    Ok(ticked)
}

enum Slot {
    Queued,
    Skipped,
    Taken,
}

/// A source file copied to an upload of the run's own, with the column choices to score it by.
struct Prepared {
    stored: StoredCsv,
    manual: retainwise_model::ManualMapping,
}

async fn run_slot(app: &App, schedule: &Due, slot: i64, missed: u64) -> anyhow::Result<Slot> {
    let org: OrgId = schedule.org_id.parse()?;
    let source = Source::parse(&schedule.source, app.storage.root_url(), &org)
        .map_err(anyhow::Error::msg)?;
    let prepared = prepare(app, &org, &source).await?;
    let outcome = claim_and_queue(app, &org, schedule, slot, missed, &prepared).await;
    // The copy stays only when a committed prediction refers to it.
    if !matches!(outcome, Ok(Slot::Queued)) {
        if let Ok(p) = &prepared {
            let _ = app.storage.delete(&p.stored.key).await;
        }
    }
    if let Ok(Slot::Queued | Slot::Skipped) = &outcome {
        info!(
            schedule_id = %schedule.id,
            slot = %crate::time::rfc3339(slot),
            missed,
            queued = matches!(outcome, Ok(Slot::Queued)),
            "schedule_slot_run"
        );
    }
    outcome
}

async fn claim_and_queue(
    app: &App,
    org: &OrgId,
    schedule: &Due,
    slot: i64,
    missed: u64,
    prepared: &Result<Prepared, String>,
) -> anyhow::Result<Slot> {
    let quota = match prepared {
        Ok(p) => crate::api::quota_hold(app, org, &p.stored.key)
            .await
            .map_err(api_error)?,
        Err(_) => None,
    };
    // Read before the transaction: SQLite's pool has one connection, which the transaction holds.
    let model_id = app.registry.active_id(&app.db, org).await?;
    let prediction = PredictionId::new();
    let (status, prediction_id, reason) = match prepared {
        Ok(_) => ("QUEUED", Some(prediction.to_string()), None),
        Err(why) => ("SKIPPED", None, Some(why.as_str())),
    };
    let mut tx = app.db.pool().begin().await?;
    // The schedule's row first: a second process at the same slot waits on it and then finds
    // `after_ms` moved (a schedule removed, paused or already past this slot meanwhile
    // matches nothing either); the UNIQUE (schedule_id, slot) below is the arbiter still.
    let moved = sqlx::query(
        "UPDATE schedules SET after_ms = $1 WHERE id = $2 AND after_ms < $1 AND paused = 0",
    )
    .bind(slot)
    .bind(&schedule.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(Slot::Taken);
    }
    let inserted = sqlx::query(
        "INSERT INTO schedule_runs (schedule_id, slot, org_id, status, prediction_id, reason, missed, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (schedule_id, slot) DO NOTHING",
    )
    .bind(&schedule.id)
    .bind(slot)
    .bind(org.as_str())
    .bind(status)
    .bind(&prediction_id)
    .bind(reason)
    .bind(i64::try_from(missed).unwrap_or(i64::MAX))
    .bind(crate::time::now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(Slot::Taken);
    }
    let Ok(p) = prepared else {
        tx.commit().await?;
        return Ok(Slot::Skipped);
    };
    let settings = QueueSettings {
        model_id: &model_id,
        high: false,
        reference_date: None,
        manual: &p.manual,
        explain: retainwise_model::Explain::Top,
        direct: false,
    };
    let actor = Actor::schedule(org, &schedule.id);
    let queued = crate::api::queue_prediction_in(
        &mut tx, app, org, prediction, &p.stored, &settings, &actor, quota,
    )
    .await;
    let slot_state = match queued {
        Ok(_) => Slot::Queued,
        Err(ApiError::Internal(e)) => return Err(e),
        // A refusal a person uploading would get (the job cap, the quota): the slot is
        // recorded skipped with it, never a silent gap.
        Err(refusal) => {
            sqlx::query(
                "UPDATE schedule_runs SET status = 'SKIPPED', prediction_id = NULL, reason = $1 \
                 WHERE schedule_id = $2 AND slot = $3",
            )
            .bind(refusal.to_string())
            .bind(&schedule.id)
            .bind(slot)
            .execute(&mut *tx)
            .await?;
            Slot::Skipped
        }
    };
    tx.commit().await?;
    if matches!(slot_state, Slot::Queued) {
        app.queue.wake();
    }
    Ok(slot_state)
}

fn api_error(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Internal(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

#[derive(sqlx::FromRow)]
struct LatestUpload {
    object_key: String,
    filename: String,
    column_mapping: Option<String>,
}

/// The source copied to a fresh upload of `org`'s (`uploads/{org}/{new id}.csv`), or the
/// reason the slot is skipped: no completed upload yet, or no file at the key.
///
/// Errors: storage or the database failed (the slot is tried again at the next tick).
async fn prepare(
    app: &App,
    org: &OrgId,
    source: &Source,
) -> anyhow::Result<Result<Prepared, String>> {
    let (from, filename, manual) = match source {
        Source::Latest => {
            let latest: Option<LatestUpload> = sqlx::query_as(
                "SELECT u.object_key, u.filename, p.column_mapping FROM predictions p \
                 JOIN uploads u ON u.id = p.upload_id \
                 WHERE p.user_id = $1 AND p.status = 'COMPLETED' \
                 ORDER BY u.created_at DESC, u.id DESC LIMIT 1",
            )
            .bind(org.as_str())
            .fetch_optional(app.db.pool())
            .await?;
            let Some(latest) = latest else {
                return Ok(Err(
                    "no upload of the organisation has completed yet: upload a file, or give the schedule an object key"
                        .to_owned(),
                ));
            };
            let manual = match latest.column_mapping.as_deref() {
                Some(json) => serde_json::from_str(json)?,
                None => retainwise_model::ManualMapping::default(),
            };
            let key = ObjectKey::parse_upload(&latest.object_key, app.storage.root_url(), org)?;
            (key, latest.filename, manual)
        }
        Source::Object(key) => {
            let name = key.as_str().rsplit('/').next().unwrap_or("scheduled.csv");
            (
                key.clone(),
                name.to_owned(),
                retainwise_model::ManualMapping::default(),
            )
        }
    };
    let upload_id = UploadId::new();
    let to = ObjectKey::upload(org, upload_id);
    if !app.storage.copy(&from, &to).await? {
        return Ok(Err(format!(
            "the source file {} is not there (removed, expired or not written yet)",
            from.as_str()
        )));
    }
    let size = app.storage.size_of(&to).await?.unwrap_or(0);
    Ok(Ok(Prepared {
        stored: StoredCsv {
            upload_id,
            key: to,
            filename,
            size,
            head: Vec::new(),
        },
        manual,
    }))
}
