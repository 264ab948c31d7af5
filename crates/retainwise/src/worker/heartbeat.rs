//! Keeps a job's lease alive while it runs: extends the message's visibility every third of
//! the timeout, and publishes the rows-scored counter to the prediction row every second. The original
//! service did not extend, so a long file outlived its visibility timeout and ran twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use retainwise_queue::{QueueError, Receipt};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::app::App;
use crate::domain::PredictionId;
use crate::error_chain::Chain;

/// How often rows-scored progress is written to the prediction row.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// A running heartbeat; stop it with [`Heartbeat::stop`].
pub struct Heartbeat {
    task: JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Heartbeat {
    /// Starts beating for `receipt`; `rows` is read at each beat and written as progress.
    pub fn start(
        app: &App,
        prediction: PredictionId,
        receipt: Receipt,
        rows: Arc<AtomicU64>,
    ) -> Self {
        Self::spawn(
            app,
            prediction.to_string(),
            receipt,
            Some((prediction, rows)),
        )
    }

    /// Starts beating for `receipt` with no progress to publish (a training); `job` names the
    /// job in logs.
    pub fn lease_only(app: &App, job: String, receipt: Receipt) -> Self {
        Self::spawn(app, job, receipt, None)
    }

    fn spawn(
        app: &App,
        job: String,
        receipt: Receipt,
        progress: Option<(PredictionId, Arc<AtomicU64>)>,
    ) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let timeout = app.config.visibility_timeout;
        let extend_every = (timeout / 3).max(Duration::from_millis(100));
        let (app, flag) = (app.clone(), lost.clone());
        let task = tokio::spawn(async move {
            // Progress is published every second so a person watching sees rows move; the
            // lease is extended only every third of the visibility timeout.
            let mut tick = tokio::time::interval(PROGRESS_EVERY.min(extend_every));
            tick.tick().await;
            let mut extended = tokio::time::Instant::now();
            let mut published = 0;
            loop {
                tick.tick().await;
                if extended.elapsed() >= extend_every {
                    match app.queue.extend(&receipt, timeout).await {
                        Ok(()) => extended = tokio::time::Instant::now(),
                        Err(QueueError::LeaseLost { .. }) => {
                            warn!(job = %job, "lease lost: another worker may take this job over");
                            flag.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A blip: the next beat retries well before the timeout runs out.
                        Err(e) => {
                            warn!(job = %job, error = %Chain(&e), "heartbeat failed")
                        }
                    }
                }
                let Some((prediction, rows)) = &progress else {
                    continue;
                };
                let seen = rows.load(Ordering::Relaxed);
                if seen != published {
                    match app.db.progress(*prediction, receipt.as_str(), seen).await {
                        Ok(_) => published = seen,
                        Err(e) => {
                            warn!(prediction_id = %prediction, error = %Chain(&e), "progress update failed")
                        }
                    }
                }
            }
        });
        Self { task, lost }
    }

    /// Stops beating; true when the lease was lost while the job ran.
    pub fn stop(self) -> bool {
        self.task.abort();
        self.lost.load(Ordering::SeqCst)
    }
}
