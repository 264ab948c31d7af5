//! Failure points: named moments inside the driver where a test makes the worker "crash" (a
//! panic that unwinds out of the driver: nothing after the point runs, no nack, no record, no
//! ack — as if the process died there), in the style of meilisearch's index-scheduler. Tests
//! arm them through [`WorkerOptions::failure_points`](super::WorkerOptions::failure_points);
//! a worker built with the defaults has none, and each point is then one branch on `None`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A moment in the life cycle of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailurePoint {
    /// The message is validated; the record is not started.
    BeforeStart,
    /// The record is RUNNING under this attempt's lease; the run has not begun.
    AfterStart,
    /// Inside the run (a panic here is the job's own: caught and counted as an attempt).
    DuringRun,
    /// The run succeeded; nothing is recorded.
    AfterRun,
    /// The outcome is committed; the message is not acked.
    AfterRecord,
    /// The message is acked.
    AfterAck,
}

impl FailurePoint {
    /// Every point, in the order a delivery passes them.
    pub const ALL: [FailurePoint; 6] = [
        Self::BeforeStart,
        Self::AfterStart,
        Self::DuringRun,
        Self::AfterRun,
        Self::AfterRecord,
        Self::AfterAck,
    ];
}

#[derive(Debug, Default)]
struct Points {
    /// Crashes left to cause, per point.
    armed: HashMap<FailurePoint, u32>,
    /// Times each point was passed (crashes included).
    passed: HashMap<FailurePoint, u32>,
}

/// The failure points of one worker: none unless a test arms one. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct FailurePoints(Option<Arc<Mutex<Points>>>);

impl FailurePoints {
    /// Failure points a test can arm (none armed yet).
    pub fn armable() -> Self {
        Self(Some(Arc::default()))
    }

    /// The next `times` passes of `point` crash.
    pub fn arm(&self, point: FailurePoint, times: u32) {
        if let Some(points) = &self.0 {
            *lock(points).armed.entry(point).or_default() += times;
        }
    }

    /// How many times `point` was passed so far.
    pub fn passed(&self, point: FailurePoint) -> u32 {
        self.0
            .as_ref()
            .map_or(0, |p| lock(p).passed.get(&point).copied().unwrap_or(0))
    }

    /// Passes `point`: panics (a simulated crash) when it is armed.
    pub(super) fn pass(&self, point: FailurePoint) {
        let Some(points) = &self.0 else {
            return;
        };
        let crash = {
            let mut p = lock(points);
            *p.passed.entry(point).or_default() += 1;
            match p.armed.get_mut(&point) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            }
        };
        if crash {
            panic!("failure point {point:?}");
        }
    }
}

fn lock(points: &Mutex<Points>) -> std::sync::MutexGuard<'_, Points> {
    // A crash is a panic outside the lock; a poisoned lock still holds good counts.
    points.lock().unwrap_or_else(|e| e.into_inner())
}
