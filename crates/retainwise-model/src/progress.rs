//! How far a training has got, for a progress bar: training a model on a large file takes
//! minutes, most of them in the search's inner fits, and a silent terminal looks hung.
//!
//! The trainer reports [`TrainStage`]s through a caller's callback ([`ProgressFn`]); the
//! callback may be called from several rayon threads at once, in any order of `done` values
//! (each call carries the count of fits finished so far, so a consumer keeps the largest).

/// A point in a training run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainStage {
    /// Reading and parsing the training file (before the first fit).
    Reading,
    /// The cross-validated search: `done` of `total` model fits finished (tree candidates on
    /// every fold combination, the regression's penalties, and the final fit on all rows).
    Fitting {
        /// Fits finished so far, 0..=`total`.
        done: usize,
        /// Fits in the whole training run.
        total: usize,
    },
}

/// The callback a caller gives to receive [`TrainStage`]s (`&|_| {}` for none).
pub type ProgressFn<'a> = &'a (dyn Fn(TrainStage) + Sync);

/// Counts finished fits and reports each one.
pub(crate) struct FitCounter<'a> {
    done: std::sync::atomic::AtomicUsize,
    total: usize,
    report: ProgressFn<'a>,
}

impl<'a> FitCounter<'a> {
    /// A counter of `total` fits; reports `Fitting { done: 0, total }` at once.
    pub(crate) fn new(total: usize, report: ProgressFn<'a>) -> Self {
        report(TrainStage::Fitting { done: 0, total });
        Self {
            done: std::sync::atomic::AtomicUsize::new(0),
            total,
            report,
        }
    }

    /// One more fit finished.
    pub(crate) fn tick(&self) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        (self.report)(TrainStage::Fitting {
            done: done.min(self.total),
            total: self.total,
        });
    }
}
