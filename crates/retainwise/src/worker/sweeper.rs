//! Closes predictions and trainings whose message was dead-lettered by the queue itself (a worker crashed on
//! the last allowed receive, so no worker was there to record the failure). Without it such a
//! prediction would stay RUNNING forever.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::message;

/// Dead messages inspected per sweep (newest first).
const BATCH: usize = 200;

/// Sweeps every `every` until `shutdown`.
pub async fn run(app: App, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&app).await {
            warn!(
                error = crate::error_chain::chain_anyhow(&e),
                "dead-letter sweep failed"
            );
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One pass: every dead message naming a prediction that is still QUEUED or RUNNING (and
/// untouched since the message died) marks it FAILED with the queue's last error.
pub async fn sweep(app: &App) -> anyhow::Result<u64> {
    let mut closed = 0;
    for dead in app.queue.dead(BATCH).await? {
        // The queue's last error is the worker's internal text (paths, endpoints): it goes to
        // the log; the owner reads a plain sentence.
        let reason = dead
            .last_error
            .as_deref()
            .unwrap_or("the job did not finish within the allowed attempts");
        let shown = super::public_text::gave_up(dead.receive_count);
        let dead_at = crate::time::to_ms(dead.dead_at);
        if let Some((id, user)) = message::owner(&crate::original_message::translate(&dead.body)) {
            if app
                .db
                .fail_dead_lettered(id, &user, &shown, dead_at)
                .await?
            {
                info!(prediction_id = %id, status = "FAILED", reason, "prediction_status_updated");
                closed += 1;
            }
        } else if let Some((id, user)) = message::training_owner(&dead.body) {
            if app
                .db
                .fail_dead_lettered_training(id, &user, &shown, dead_at)
                .await?
            {
                info!(training_id = %id, status = "FAILED", reason, "training_failed");
                closed += 1;
            }
        }
    }
    Ok(closed)
}
