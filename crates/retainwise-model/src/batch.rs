//! The per-row work of the scorer, done a batch at a time on every core: probability, risk
//! level, exact explanations and the formatted output line of each encoded row.
//!
//! The scorer ([`crate::score`]) reads and encodes rows in order into a [`Batch`]; a full batch
//! is scored in parallel (rayon, in chunks of [`CHUNK_ROWS`]) and its lines come back in input
//! order, ready to be written. Memory is bounded by [`BATCH_ROWS`] rows whatever the file size.

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::artifact::Model;
use crate::drift::DriftAcc;
use crate::portfolio::{PortfolioAcc, RevenueInput};
use crate::quality::{data_quality, Flag};
use crate::row_text::{push_cell, push_factors_cell, push_fixed6, push_scaled, push_u64};
use crate::score::{Explain, RiskLevel, RiskThresholds};

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
    /// Each row's own reference date (its observation date), when it has one.
    observed: Vec<Option<NaiveDate>>,
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
    /// The batch's drift bin counts ([`crate::drift`]), in input order.
    pub drift: DriftAcc,
}

impl Batch {
    /// An empty batch for rows of `n_features` encoded features.
    pub fn new(n_features: usize) -> Batch {
        Batch {
            n_features,
            rows: Vec::with_capacity(BATCH_ROWS),
            ids: Vec::with_capacity(BATCH_ROWS),
            flags: Vec::with_capacity(BATCH_ROWS),
            observed: Vec::with_capacity(BATCH_ROWS),
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
        self.push_observed(row, customer_id, flags, None);
    }

    /// [`Batch::push`] for a row whose date columns were counted from its own `observed` date
    /// (an observation date) rather than the batch's reference date; `None` is [`Batch::push`].
    pub fn push_observed(
        &mut self,
        row: u64,
        customer_id: Option<String>,
        flags: Vec<Flag>,
        observed: Option<NaiveDate>,
    ) {
        self.rows.push(row);
        self.ids.push(customer_id);
        self.flags.push(flags);
        self.observed.push(observed);
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Row `i` named for a person: its customer id, else `row N` (its data row number).
    fn who(&self, i: usize) -> String {
        match &self.ids[i] {
            Some(id) => format!("{id:?}"),
            None => format!("row {}", self.rows[i]),
        }
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
        self.observed.clear();
    }

    /// Scores and formats every row, in parallel, returning lines in input order. The bytes
    /// do not depend on the number of threads. `reference` is the date the rows' date columns
    /// were counted from (shown in date factors' values; `None` when the model has none);
    /// `explain` chooses the columns ([`crate::score::output_header`]).
    pub fn score(
        &self,
        model: &Model,
        thresholds: &RiskThresholds,
        reference: Option<NaiveDate>,
        explain: Explain,
    ) -> Scored {
        let starts: Vec<usize> = (0..self.len()).step_by(CHUNK_ROWS).collect();
        let parts: Vec<Scored> = starts
            .par_iter()
            .map(|&start| {
                self.score_chunk(
                    model,
                    thresholds,
                    reference,
                    explain,
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
            drift: DriftAcc::new(model.schema(), &model.card().features),
        };
        for p in parts {
            out.bytes.extend_from_slice(&p.bytes);
            out.probabilities.extend(p.probabilities);
            out.levels.extend(p.levels);
            out.portfolio.merge(&p.portfolio);
            out.drift.merge(&p.drift);
        }
        out
    }

    /// Rows `start..end`, each written straight into the chunk's byte buffer
    /// ([`crate::row_text`]): the same bytes the `csv` writer wrote from per-row strings
    /// (tested), without building them.
    fn score_chunk(
        &self,
        model: &Model,
        thresholds: &RiskThresholds,
        reference: Option<NaiveDate>,
        explain: Explain,
        start: usize,
        end: usize,
    ) -> Scored {
        let explainer = model.explainer();
        let predictor = model.predictor();
        let schema = model.schema();
        let mut model_cell = Vec::new();
        push_cell(&mut model_cell, model.id().as_bytes());
        let per_row = match explain {
            Explain::None => 96,
            Explain::Top => 640,
            Explain::All => 640 + 12 * explainer.n_columns(),
        };
        let mut out = Vec::with_capacity((end - start) * per_row);
        let mut phi = vec![0.0; explainer.n_columns()];
        let mut probabilities = Vec::with_capacity(end - start);
        let mut levels = Vec::with_capacity(end - start);
        let mut text = String::new();
        let mut scratch = String::new();
        let revenue = RevenueInput::of(schema);
        let mut portfolio = PortfolioAcc::new(explainer.n_columns());
        let mut drift = DriftAcc::new(schema, &model.card().features);
        for i in start..end {
            let features = &self.features[i * self.n_features..(i + 1) * self.n_features];
            let flags = &self.flags[i];
            // Raw: the escape for spreadsheets is applied where a file is written for a person
            // ([`crate::safe_csv::SafeCsvWriter`]), not to what is stored.
            match &self.ids[i] {
                Some(id) => push_cell(&mut out, id.as_bytes()),
                None => push_u64(&mut out, self.rows[i]),
            }
            // Without explanations a plain tree walk gives the same bits as the explainer's
            // pass (`Predictor::probability`, tested); with them the trees are walked once.
            let e = match explain {
                Explain::None => None,
                Explain::Top | Explain::All => {
                    Some(explainer.explain_at(features, &mut phi, self.observed[i].or(reference)))
                }
            };
            let p = match &e {
                Some(e) => e.probability,
                None => predictor.probability(features),
            };
            let p6 = (p * 1e6).round() / 1e6;
            let level = thresholds.level(p6);
            // In millionths, so that churn + retention is exactly 1 as written.
            let millionths = (p6 * 1e6).round() as i64;
            out.push(b',');
            push_scaled(&mut out, millionths, 6);
            out.push(b',');
            push_scaled(&mut out, 1_000_000 - millionths, 6);
            out.push(b',');
            out.extend_from_slice(level.as_str().as_bytes());
            out.push(b',');
            out.extend_from_slice(&model_cell);
            out.push(b',');
            if let Some(e) = &e {
                push_factors_cell(&mut out, &e.risk_factors, flags);
                out.push(b',');
                push_factors_cell(&mut out, &e.protective_factors, flags);
                out.push(b',');
                text.clear();
                explainer.summary_into(e, flags, &mut text);
                push_cell(&mut out, text.as_bytes());
                out.push(b',');
                text.clear();
                explainer.recommendation_into(e, level, flags, &mut text, &mut scratch);
                push_cell(&mut out, text.as_bytes());
                out.push(b',');
            }
            data_quality(flags, schema, &mut text);
            push_cell(&mut out, text.as_bytes());
            if explain == Explain::All {
                for v in &phi {
                    out.push(b',');
                    push_fixed6(&mut out, *v);
                }
                out.push(b',');
                push_fixed6(&mut out, explainer.base_value());
            }
            out.push(b'\n');
            let revenue =
                revenue.and_then(|r| r.read(features, flags, &mut portfolio, || self.who(i)));
            match &e {
                Some(e) => portfolio.add(p6, revenue, e),
                None => portfolio.add_score(p6, revenue),
            }
            drift.add(features, flags);
            probabilities.push(p);
            levels.push(level);
        }
        Scored {
            bytes: out,
            probabilities,
            levels,
            portfolio,
            drift,
        }
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
    /// explainer tables are shared, not copied); `reference` and `explain` as in
    /// [`Batch::score`].
    pub fn new(
        model: &Model,
        thresholds: &RiskThresholds,
        reference: Option<NaiveDate>,
        explain: Explain,
    ) -> Pipeline {
        let (to_worker, batches) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (results, from_worker) = std::sync::mpsc::channel();
        let model = model.clone();
        let thresholds = thresholds.clone();
        let worker = std::thread::Builder::new()
            .name("retainwise-score".into())
            .spawn(move || {
                for batch in batches {
                    let scored = batch.score(&model, &thresholds, reference, explain);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::Intake;
    use crate::InputLimits;

    /// How the rows were written before they were written in place: per-row strings through
    /// the `csv` writer. The reference the written bytes must equal.
    impl Batch {
        fn score_chunk_reference(
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
            let revenue = RevenueInput::of(model.schema());
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
                let summary = explainer.summary_reference(&e, flags);
                let recommendation = explainer.recommendation_reference(&e, level.as_str(), flags);
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
                let revenue =
                    revenue.and_then(|r| r.read(features, flags, &mut portfolio, || self.who(i)));
                portfolio.add(p6, revenue, &e);
                probabilities.push(p);
                levels.push(level);
            }
            Scored {
                bytes: writer.into_inner().expect("flushing to memory cannot fail"),
                probabilities,
                levels,
                portfolio,
                drift: DriftAcc::new(model.schema(), &model.card().features),
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
            crate::explain::factors_json_flagged(&e.risk_factors, flags, &mut self.risk);
            self.protective.clear();
            crate::explain::factors_json_flagged(
                &e.protective_factors,
                flags,
                &mut self.protective,
            );
        }
    }

    /// Every scored batch of `input` (read as the scorer reads it).
    fn batches(model: &Model, input: &[u8]) -> Vec<Batch> {
        let mut intake = Intake::open(model, input, &InputLimits::default()).unwrap();
        let n = model.encoder().n_features();
        let mut out = vec![Batch::new(n)];
        loop {
            let batch = out.last_mut().unwrap();
            let Some(read) = intake.next_row(batch.next_features()).unwrap() else {
                break;
            };
            if read.rejected.is_none() {
                batch.push(read.row, read.customer_id, read.flags);
                if batch.is_full() {
                    out.push(Batch::new(n));
                }
            }
        }
        out
    }

    /// The Telco rows with awkward values mixed in: ids holding quotes, commas and line
    /// breaks, blank and missing-value cells (substituted), unknown categories (one with a
    /// quote and accents), absurd numbers (out of range), and rows that are rejected.
    fn awkward(telco: &[u8]) -> Vec<u8> {
        let mut r = csv::Reader::from_reader(telco);
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (id, tenure, total, monthly, contract, payment, internet) = (
            at("customerID"),
            at("tenure"),
            at("TotalCharges"),
            at("MonthlyCharges"),
            at("Contract"),
            at("PaymentMethod"),
            at("InternetService"),
        );
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header).unwrap();
        for (i, rec) in r.records().enumerate() {
            let mut f: Vec<String> = rec.unwrap().iter().map(String::from).collect();
            match i % 12 {
                1 => f[total] = String::new(),
                2 => f[contract] = "Biennial".into(),
                3 => f[id] = format!("say \"hi\", {i}"),
                4 => f[tenure] = "abc".into(),
                5 => f[monthly] = "99999".into(),
                6 => f[id] = format!("line\nbreak {i}"),
                7 => f[payment] = "Électronique \"chèque\", {i}".replace("{i}", &i.to_string()),
                8 => {
                    f[tenure] = "NA".into();
                    f[internet] = "#N/A".into();
                }
                9 => f[id] = format!("=cmd|' /C calc'!A{i}"),
                10 => f[monthly] = "-40".into(),
                _ => {}
            }
            w.write_record(&f).unwrap();
        }
        w.into_inner().unwrap()
    }

    fn telco() -> Option<Vec<u8>> {
        let path = std::env::var_os("RETAINWISE_TELCO_CSV")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/data/telco-customer-churn.csv")
            });
        match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(_) => {
                eprintln!(
                    "\n*** SKIPPED: Telco data not found at {} (set RETAINWISE_TELCO_CSV) ***\n",
                    path.display()
                );
                None
            }
        }
    }

    /// The written bytes equal the `csv` writer's from per-row strings, on the Telco file,
    /// on it with awkward values mixed in, and on every corpus file that scores.
    #[test]
    fn rows_written_in_place_are_byte_identical_to_the_csv_writers() {
        let model = Model::embedded_default();
        let t = RiskThresholds::default();
        let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(telco) = telco() {
            inputs.push(("awkward Telco".into(), awkward(&telco)));
            inputs.push(("Telco".into(), telco));
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let mut corpus: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        corpus.sort();
        for path in corpus {
            inputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
        let mut rows = 0;
        let mut flagged = 0;
        for (name, input) in &inputs {
            let Ok(intake) = Intake::open(model, &input[..], &InputLimits::default()) else {
                continue;
            };
            if intake.check_mapping().is_err() {
                continue;
            }
            drop(intake);
            for b in batches(model, input) {
                let n = b.len();
                // Chunk by chunk as `score` does, so the portfolio's sums add up in one order.
                let mut want = b.score_chunk_reference(model, &t, None, 0, n.min(CHUNK_ROWS));
                for start in (CHUNK_ROWS..n).step_by(CHUNK_ROWS) {
                    let part = b.score_chunk_reference(
                        model,
                        &t,
                        None,
                        start,
                        (start + CHUNK_ROWS).min(n),
                    );
                    want.bytes.extend(part.bytes);
                    want.probabilities.extend(part.probabilities);
                    want.levels.extend(part.levels);
                    want.portfolio.merge(&part.portfolio);
                }
                let got = b.score(model, &t, None, Explain::Top);
                assert_eq!(
                    String::from_utf8_lossy(&got.bytes),
                    String::from_utf8_lossy(&want.bytes),
                    "{name}"
                );
                assert_eq!(got.probabilities, want.probabilities, "{name}");
                assert_eq!(got.levels, want.levels, "{name}");
                assert_eq!(
                    format!("{:?}", got.portfolio),
                    format!("{:?}", want.portfolio),
                    "{name}"
                );
                rows += n;
                flagged += b.flags.iter().filter(|f| !f.is_empty()).count();
            }
        }
        assert!(rows > 0 && flagged > 0, "{rows} rows, {flagged} flagged");
    }

    /// `Explain::None` writes the same rows without the four explanation columns (its plain
    /// tree walk gives the same probabilities to the bit), and `Explain::All` adds each
    /// column's SHAP value and the base value, which add up to the log-odds.
    #[test]
    fn explain_none_drops_the_explanation_and_all_adds_shap_values() {
        let model = Model::embedded_default();
        let t = RiskThresholds::default();
        let input = match telco() {
            Some(telco) => awkward(&telco),
            None => std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/basic.csv"),
            )
            .unwrap(),
        };
        let read = |bytes: &[u8]| -> Vec<Vec<String>> {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(bytes)
                .records()
                .map(|r| r.unwrap().iter().map(String::from).collect())
                .collect()
        };
        let top_header = crate::score::output_header(model, Explain::Top);
        let none_header = crate::score::output_header(model, Explain::None);
        let all_header = crate::score::output_header(model, Explain::All);
        let n_columns = model.schema().columns.len();
        assert_eq!(all_header.len(), top_header.len() + n_columns + 1);
        for b in batches(model, &input) {
            let top = b.score(model, &t, None, Explain::Top);
            let none = b.score(model, &t, None, Explain::None);
            let all = b.score(model, &t, None, Explain::All);
            assert_eq!(none.probabilities, top.probabilities);
            assert_eq!(all.probabilities, top.probabilities);
            let (top_rows, none_rows, all_rows) =
                (read(&top.bytes), read(&none.bytes), read(&all.bytes));
            for (k, ((t_row, n_row), a_row)) in
                top_rows.iter().zip(&none_rows).zip(&all_rows).enumerate()
            {
                let kept: Vec<&String> = t_row
                    .iter()
                    .zip(&top_header)
                    .filter(|(_, h)| none_header.contains(h))
                    .map(|(v, _)| v)
                    .collect();
                assert_eq!(n_row.iter().collect::<Vec<_>>(), kept);
                assert_eq!(&a_row[..t_row.len()], &t_row[..]);
                let shap: Vec<f64> = a_row[t_row.len()..]
                    .iter()
                    .map(|v| v.parse().unwrap())
                    .collect();
                let sum: f64 = shap.iter().sum();
                let features = &b.features[k * b.n_features..(k + 1) * b.n_features];
                let log_odds = model.predictor().log_odds(features);
                // Each value is rounded to 1e-6.
                let slack = 1e-6 * (n_columns + 1) as f64 + 1e-12 * log_odds.abs();
                assert!((sum - log_odds).abs() < slack, "{sum} vs {log_odds}");
            }
            assert_eq!(top_rows.len(), none_rows.len());
        }
    }
}
