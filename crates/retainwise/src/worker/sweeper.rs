//! Closes jobs whose message was dead-lettered by the queue itself (a worker crashed on the last
//! allowed receive, so no worker was there to record the failure). Without it such a job would
//! stay RUNNING forever. Every registered kind is swept (`kinds.rs`).

use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::kinds;
use crate::app::App;

/// Dead messages inspected per sweep (newest first).
const BATCH: usize = 200;

/// Sweeps every `every` until `shutdown`.
pub async fn run(app: App, every: Duration, shutdown: CancellationToken) {
    loop {
        // A pass that panics is logged and the next one runs: the sweeper never stops quietly.
        match std::panic::AssertUnwindSafe(sweep(&app))
            .catch_unwind()
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(
                error = crate::error_chain::chain_anyhow(&e),
                "dead-letter sweep failed"
            ),
            Err(panic) => tracing::error!(
                error = super::driver::panic_message(&*panic),
                "dead-letter sweep panicked; it runs again at the next interval"
            ),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One pass: every dead message naming a job that is still QUEUED or RUNNING (and untouched
/// since the message died) is closed by its kind's dead-letter behaviour (by default FAILED,
/// `dead_lettered_at` set). Returns how many jobs it closed.
pub async fn sweep(app: &App) -> anyhow::Result<u64> {
    let mut closed = 0;
    for dead in app.queue.dead(BATCH).await? {
        // The original service's message names its job in its own words.
        let dead = match crate::original_message::translate(&dead.body) {
            std::borrow::Cow::Owned(body) => retainwise_queue::DeadMessage { body, ..dead },
            std::borrow::Cow::Borrowed(_) => dead,
        };
        let Some(kind) = kinds::of(&dead.body) else {
            continue;
        };
        if (kind.close_dead)(app, &dead).await? {
            closed += 1;
        }
    }
    Ok(closed)
}
