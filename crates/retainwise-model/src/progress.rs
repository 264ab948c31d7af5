//! How far a training has got, for a progress bar: training a model on a large file takes
//! minutes, most of them in the search's inner fits, and a silent terminal looks hung.
//!
//! The trainer reports [`TrainStage`]s through a caller's callback ([`ProgressFn`]); the
//! callback may be called from several rayon threads at once, in any order of `done` values
//! (each call carries the count of fits finished so far, so a consumer keeps the largest).
//! The callback's answer is whether to go on: `false` stops the training at the next fit
//! boundary (a time budget, a lost lease, a cancelled job), and the trainer returns
//! `TrainError::Stopped` instead of a model.

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

/// The callback a caller gives to receive [`TrainStage`]s; it answers whether to go on
/// (`&|_| true` to watch nothing and never stop).
pub type ProgressFn<'a> = &'a (dyn Fn(TrainStage) -> bool + Sync);

/// Why the search ended without a model: the callback asked to stop (mapped to
/// `TrainError::Stopped`), or the learner failed (its message; `TrainError::Learner`).
#[derive(Debug)]
pub(crate) enum SearchError {
    Stopped,
    Learner(String),
}

impl From<String> for SearchError {
    fn from(message: String) -> Self {
        SearchError::Learner(message)
    }
}

/// Counts finished fits and reports each one.
pub(crate) struct FitCounter<'a> {
    done: std::sync::atomic::AtomicUsize,
    total: usize,
    report: ProgressFn<'a>,
}

impl<'a> FitCounter<'a> {
    /// A counter of `total` fits; reports `Fitting { done: 0, total }` at once.
    ///
    /// # Errors
    /// [`SearchError::Stopped`] when the callback asks to stop.
    pub(crate) fn new(total: usize, report: ProgressFn<'a>) -> Result<Self, SearchError> {
        if !report(TrainStage::Fitting { done: 0, total }) {
            return Err(SearchError::Stopped);
        }
        Ok(Self {
            done: std::sync::atomic::AtomicUsize::new(0),
            total,
            report,
        })
    }

    /// One more fit finished.
    ///
    /// # Errors
    /// [`SearchError::Stopped`] when the callback asks to stop.
    pub(crate) fn tick(&self) -> Result<(), SearchError> {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let go_on = (self.report)(TrainStage::Fitting {
            done: done.min(self.total),
            total: self.total,
        });
        if go_on {
            Ok(())
        } else {
            Err(SearchError::Stopped)
        }
    }
}
