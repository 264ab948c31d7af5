//! The per-row work of the scorer, done a batch at a time on every core: probability, risk
//! level, exact explanations and the formatted output line of each encoded row.
//!
//! The scorer ([`crate::score`]) reads and encodes rows in order into a [`Batch`]; a full batch
//! is scored in parallel (rayon, in chunks of [`CHUNK_ROWS`]) and its lines come back in input
//! order, ready to be written. Memory is bounded by [`BATCH_ROWS`] rows whatever the file size.

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::artifact::Model;
use crate::explain::factors_json_flagged;
use crate::portfolio::{revenue_slot, PortfolioAcc};
use crate::quality::{data_quality, Flag};
use crate::score::{RiskLevel, RiskThresholds};

/// Rows per batch: large enough to keep both cores busy between writes, small enough that a
/// batch (encoded rows plus output lines, ~3 MB for the Telco schema) stays in cache-friendly,
/// constant memory.
pub const BATCH_ROWS: usize = 4096;

/// Rows formatted by one parallel task.
pub const CHUNK_ROWS: usize = 256;

/// Encoded rows waiting to be scored, in input order.
pub struct Batch {
    n_features: usize,
    rows: Vec<u64>,
    ids: Vec<Option<String>>,
    /// Each row's flagged values (empty for a clean row, and then not allocated).
    flags: Vec<Vec<Flag>>,
    /// Row `i`'s encoded features at `features[i * n_features..][..n_features]`.
    features: Vec<f64>,
}

/// A scored batch: the output lines (CSV, `\n`-terminated) and each row's probability and
/// risk level, in input order.
pub struct Scored {
    /// The rows' output lines, concatenated.
    pub bytes: Vec<u8>,
    /// Churn probability of each row (unrounded).
    pub probabilities: Vec<f64>,
    /// Risk level of each row.
    pub levels: Vec<RiskLevel>,
    /// The batch's dashboard sums (histogram, revenue at risk, drivers), in input order.
    pub portfolio: PortfolioAcc,
}

impl Batch {
    /// An empty batch for rows of `n_features` encoded features.
    pub fn new(n_features: usize) -> Batch {
        Batch {
            n_features,
            rows: Vec::with_capacity(BATCH_ROWS),
            ids: Vec::with_capacity(BATCH_ROWS),
            flags: Vec::with_capacity(BATCH_ROWS),
            features: vec![0.0; BATCH_ROWS * n_features],
        }
    }

    /// The feature buffer of the next row; it joins the batch only when [`Batch::push`] is
    /// called (so a rejected row's buffer is simply reused).
    pub fn next_features(&mut self) -> &mut [f64] {
        let at = self.rows.len() * self.n_features;
        &mut self.features[at..at + self.n_features]
    }

    /// Adds the row whose features were written into [`Batch::next_features`]: its data row
    /// number, customer id (`None`: the row number is written instead) and flagged values
    /// ([`crate::quality`]).
    pub fn push(&mut self, row: u64, customer_id: Option<String>, flags: Vec<Flag>) {
        self.rows.push(row);
        self.ids.push(customer_id);
        self.flags.push(flags);
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row is waiting.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// True when the batch holds [`BATCH_ROWS`] rows.
    pub fn is_full(&self) -> bool {
        self.rows.len() == BATCH_ROWS
    }

    /// Empties the batch (buffers are kept).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.ids.clear();
        self.flags.clear();
    }

    /// Scores and formats every row, in parallel, returning lines in input order. The bytes
    /// do not depend on the number of threads. `reference` is the date the rows' date columns
    /// were counted from (shown in date factors' values; `None` when the model has none).
    pub fn score(
        &self,
        model: &Model,
        thresholds: &RiskThresholds,
        reference: Option<NaiveDate>,
    ) -> Scored {
        let starts: Vec<usize> = (0..self.len()).step_by(CHUNK_ROWS).collect();
        let parts: Vec<Scored> = starts
            .par_iter()
            .map(|&start| {
                self.score_chunk(
                    model,
                    thresholds,
                    reference,
                    start,
                    (start + CHUNK_ROWS).min(self.len()),
                )
            })
            .collect();
        let mut out = Scored {
            bytes: Vec::with_capacity(parts.iter().map(|p| p.bytes.len()).sum()),
            probabilities: Vec::with_capacity(self.len()),
            levels: Vec::with_capacity(self.len()),
            portfolio: PortfolioAcc::new(model.explainer().n_columns()),
        };
        for p in parts {
            out.bytes.extend_from_slice(&p.bytes);
            out.probabilities.extend(p.probabilities);
            out.levels.extend(p.levels);
            out.portfolio.merge(&p.portfolio);
        }
        out
    }

    fn score_chunk(
        &self,
        model: &Model,
        thresholds: &RiskThresholds,
        reference: Option<NaiveDate>,
        start: usize,
        end: usize,
    ) -> Scored {
        let explainer = model.explainer();
        let model_id = model.id();
        let mut writer =
            csv::WriterBuilder::new().from_writer(Vec::with_capacity((end - start) * 640));
        let mut phi = vec![0.0; explainer.n_columns()];
        let mut probabilities = Vec::with_capacity(end - start);
        let mut levels = Vec::with_capacity(end - start);
        let mut cells = Cells::default();
        let revenue = revenue_slot(model.schema()).map(|(_, slot, scale)| (slot, scale));
        let mut portfolio = PortfolioAcc::new(explainer.n_columns());
        for i in start..end {
            let features = &self.features[i * self.n_features..(i + 1) * self.n_features];
            // The explainer's pass also gives the log-odds, equal to `Forest::log_odds` to the
            // bit (tested), so the trees are walked once per row.
            let e = explainer.explain_at(features, &mut phi, reference);
            let p = e.probability;
            let p6 = (p * 1e6).round() / 1e6;
            let level = thresholds.level(p6);
            // Raw: the escape for spreadsheets is applied where a file is written for a person
            // ([`crate::safe_csv::SafeCsvWriter`]), not to what is stored.
            let row_number;
            let id_cell = match &self.ids[i] {
                Some(id) => id.as_str(),
                None => {
                    row_number = self.rows[i].to_string();
                    row_number.as_str()
                }
            };
            let flags = &self.flags[i];
            cells.fill(p6, &e, flags);
            data_quality(flags, model.schema(), &mut cells.quality);
            let summary = explainer.summary_flagged(&e, flags);
            let recommendation = explainer.recommendation_flagged(&e, level, flags);
            writer
                .write_record([
                    id_cell.as_bytes(),
                    cells.churn.as_bytes(),
                    cells.retention.as_bytes(),
                    level.as_str().as_bytes(),
                    model_id.as_bytes(),
                    cells.risk.as_bytes(),
                    cells.protective.as_bytes(),
                    summary.as_bytes(),
                    recommendation.as_bytes(),
                    cells.quality.as_bytes(),
                ])
                .expect("writing to memory cannot fail");
            portfolio.add(p6, revenue.map(|(slot, scale)| features[slot] * scale), &e);
            probabilities.push(p);
            levels.push(level);
        }
        Scored {
            bytes: writer.into_inner().expect("flushing to memory cannot fail"),
            probabilities,
            levels,
            portfolio,
        }
    }
}

/// Reused buffers for the formatted cells of one row.
#[derive(Default)]
struct Cells {
    churn: String,
    retention: String,
    risk: String,
    protective: String,
    quality: String,
}

impl Cells {
    /// `p` and `1 − p` with exactly 6 decimals (`p` already rounded to 6 decimals, computed in
    /// millionths so that churn + retention is exactly 1 as written), and the factor arrays.
    fn fill(&mut self, p: f64, e: &crate::explain::Explanation, flags: &[Flag]) {
        use std::fmt::Write;
        self.churn.clear();
        self.retention.clear();
        let millionths = (p * 1e6).round() as i64;
        // Integer formatting: the same text as `{p:.6}` for p in [0, 1], without the slow
        // fixed-precision float formatter.
        let _ = write!(
            self.churn,
            "{}.{:06}",
            millionths / 1_000_000,
            millionths % 1_000_000
        );
        let r = 1_000_000 - millionths;
        let _ = write!(self.retention, "{}.{:06}", r / 1_000_000, r % 1_000_000);
        self.risk.clear();
        factors_json_flagged(&e.risk_factors, flags, &mut self.risk);
        self.protective.clear();
        factors_json_flagged(&e.protective_factors, flags, &mut self.protective);
    }
}

/// Scores batches on a background thread (which spreads each batch over the rayon pool) while
/// the caller reads and encodes the next one, so reading overlaps scoring. Results come back
/// in submission order. At most two batches are queued or in progress besides the one being
/// filled, so memory stays bounded.
pub struct Pipeline {
    to_worker: Option<std::sync::mpsc::SyncSender<Batch>>,
    from_worker: std::sync::mpsc::Receiver<(Batch, Scored)>,
    worker: Option<std::thread::JoinHandle<()>>,
    spare: Vec<Batch>,
    in_flight: usize,
    n_features: usize,
}

impl Pipeline {
    /// Starts the scoring thread for `model` (cloned: the thread outlives no borrow; the
    /// explainer tables are shared, not copied); `reference` as in [`Batch::score`].
    pub fn new(
        model: &Model,
        thresholds: &RiskThresholds,
        reference: Option<NaiveDate>,
    ) -> Pipeline {
        let (to_worker, batches) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (results, from_worker) = std::sync::mpsc::channel();
        let model = model.clone();
        let thresholds = thresholds.clone();
        let worker = std::thread::Builder::new()
            .name("retainwise-score".into())
            .spawn(move || {
                for batch in batches {
                    let scored = batch.score(&model, &thresholds, reference);
                    if results.send((batch, scored)).is_err() {
                        break;
                    }
                }
            })
            .expect("starting the scoring thread");
        Pipeline {
            to_worker: Some(to_worker),
            from_worker,
            worker: Some(worker),
            spare: Vec::new(),
            in_flight: 0,
            n_features: 0,
        }
    }

    /// Hands `batch` over for scoring (it is replaced by an empty batch to fill next) and,
    /// once two batches are in flight, waits for the older one and returns its result.
    /// Does nothing for an empty batch.
    pub fn submit(&mut self, batch: &mut Batch) -> Option<Scored> {
        if batch.is_empty() {
            return None;
        }
        self.n_features = batch.n_features;
        let fresh = self
            .spare
            .pop()
            .unwrap_or_else(|| Batch::new(self.n_features));
        let full = std::mem::replace(batch, fresh);
        self.send(full);
        self.in_flight += 1;
        if self.in_flight >= 2 {
            Some(self.receive())
        } else {
            None
        }
    }

    /// Waits for every batch still in flight and returns their results in order.
    pub fn finish(mut self) -> Vec<Scored> {
        let mut out = Vec::new();
        while self.in_flight > 0 {
            out.push(self.receive());
        }
        out
    }

    fn send(&mut self, batch: Batch) {
        let sent = self
            .to_worker
            .as_ref()
            .map(|tx| tx.send(batch).is_ok())
            .unwrap_or(false);
        if !sent {
            self.propagate_panic();
        }
    }

    fn receive(&mut self) -> Scored {
        match self.from_worker.recv() {
            Ok((mut batch, scored)) => {
                self.in_flight -= 1;
                batch.clear();
                self.spare.push(batch);
                scored
            }
            Err(_) => self.propagate_panic(),
        }
    }

    /// The worker only stops early by panicking (a bug): re-raise its panic here.
    fn propagate_panic(&mut self) -> ! {
        self.to_worker = None;
        if let Some(h) = self.worker.take() {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        panic!("the scoring thread stopped unexpectedly");
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop; joining keeps no thread behind.
        self.to_worker = None;
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}
