//! Retraining from outcomes: the training file of a candidate model, made by joining the
//! features of earlier predictions as they were scored (their upload objects, which never
//! change: point in time) with the outcomes that came after, labelled as the measured accuracy
//! labels them ([`super::performance::label`]). The file then goes through the ordinary
//! training kind (`api/models.rs`), so the candidate is registered like any trained model and
//! nothing becomes active by itself.
//!
//! Columns of the joined file: the scored file's columns as written, except any that name an
//! outcome (`Churn`, `Exited`, …: [`retainwise_model::outcomes::names_outcome`], a label
//! left in a scored file would leak the answer), then [`SCORED_ON`] (the date the prediction's
//! date columns were counted from: the training reads every other date column as days before
//! it, as scoring did) and [`LABEL`] (`Yes`/`No`). A customer on several predictions gives one
//! row per prediction; the training keeps a customer's rows in one fold (its id is the group).

use std::collections::HashMap;
use std::io::{Read, Write};

use retainwise_model::dates::NaiveDate;
use retainwise_model::intake::Intake;
use retainwise_model::{InputLimits, ManualMapping, Model};

/// The label column of a joined file.
pub const LABEL: &str = "outcome_churned";
/// The column holding each row's point in time.
pub const SCORED_ON: &str = "scored_on";

/// Why a prediction cannot be joined.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The scored file cannot be joined (a sentence naming the prediction and what to do).
    #[error("{0}")]
    Refused(String),
    /// Reading or writing failed.
    #[error("joining failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes the joined rows of one scored file.
pub struct Joiner<W: Write> {
    out: csv::Writer<W>,
    /// The scored files' header as written (every joined file must have the same one).
    header: Option<Vec<String>>,
    /// The customer id column's header.
    id_column: Option<String>,
    /// Positions of the header kept.
    kept: Vec<usize>,
    /// Rows written.
    pub rows: u64,
    /// Of them, churned.
    pub churned: u64,
}

impl<W: Write> Joiner<W> {
    /// A joiner writing CSV to `out`.
    pub fn new(out: W) -> Self {
        Joiner {
            out: csv::Writer::from_writer(out),
            header: None,
            id_column: None,
            kept: Vec::new(),
            rows: 0,
            churned: 0,
        }
    }

    /// The customer id column's header of the scored files, once one was joined.
    pub fn id_column(&self) -> Option<&str> {
        self.id_column.as_deref()
    }

    /// Joins the scored file `input` (read by `model` with `manual` column choices, as it was
    /// scored) with `labels` (trimmed customer id → churned), every row dated `scored_on`.
    /// `prediction` names it in refusals. Each customer's first row is taken.
    ///
    /// Errors: [`JoinError::Refused`] when the file cannot be read as it was, has no customer
    /// id column, or has another header than the files joined before it.
    pub fn join(
        &mut self,
        prediction: &str,
        model: &Model,
        manual: &ManualMapping,
        input: impl Read,
        labels: &HashMap<String, bool>,
        scored_on: NaiveDate,
    ) -> Result<(), JoinError> {
        let refused = |why: String| JoinError::Refused(format!("prediction {prediction}: {why}"));
        let mut intake = Intake::open_with(model, input, &InputLimits::default(), manual)
            .map_err(|e| refused(format!("its file cannot be read again: {e}")))?;
        let header = intake.header().to_vec();
        let id_at = intake
            .mapping()
            .id
            .as_ref()
            .and_then(|m| m.column_index)
            .ok_or_else(|| {
                refused("its file has no customer id column, so its rows cannot be matched with outcomes".into())
            })?;
        if self.id_column.as_ref().is_some_and(|c| *c != header[id_at]) {
            return Err(refused(format!(
                "its customer ids are read from the column {:?}, those of the predictions before it from {:?}; retrain from predictions whose ids are in the same column",
                header[id_at],
                self.id_column.as_deref().unwrap_or_default()
            )));
        }
        match &self.header {
            Some(first) if *first != header => {
                return Err(refused(format!(
                    "its columns ({}) differ from those of the predictions before it ({}); retrain from predictions of files with the same columns",
                    header.join(", "),
                    first.join(", ")
                )))
            }
            Some(_) => {}
            None => {
                self.kept = (0..header.len())
                    .filter(|&i| {
                        let h = header[i].trim();
                        !retainwise_model::outcomes::names_outcome(h) && h != LABEL && h != SCORED_ON
                    })
                    .collect();
                let mut names: Vec<&str> = self.kept.iter().map(|&i| header[i].as_str()).collect();
                names.extend([SCORED_ON, LABEL]);
                self.out.write_record(&names).map_err(csv_io)?;
                self.header = Some(header.clone());
                self.id_column = Some(header[id_at].clone());
            }
        }
        let day = retainwise_model::dates::iso(scored_on);
        let mut done: std::collections::HashSet<String> = std::collections::HashSet::new();
        while let Some((_, fields)) = intake
            .next_raw()
            .map_err(|e| refused(format!("its file cannot be read again: {e}")))?
        {
            let Some(id) = fields.get(id_at).map(|s| s.trim()) else {
                continue;
            };
            let Some(&churned) = labels.get(id) else {
                continue;
            };
            if !done.insert(id.to_owned()) {
                continue;
            }
            let mut record: Vec<&str> = self
                .kept
                .iter()
                .map(|&i| fields.get(i).map_or("", String::as_str))
                .collect();
            record.push(&day);
            record.push(if churned { "Yes" } else { "No" });
            self.out.write_record(&record).map_err(csv_io)?;
            self.rows += 1;
            self.churned += u64::from(churned);
        }
        Ok(())
    }

    /// Flushes and returns the writer.
    ///
    /// Errors: the writer's.
    pub fn finish(self) -> Result<W, JoinError> {
        self.out
            .into_inner()
            .map_err(|e| JoinError::Io(std::io::Error::other(e.to_string())))
    }
}

fn csv_io(e: csv::Error) -> JoinError {
    JoinError::Io(std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_features_as_scored_with_labels_and_drops_a_label_column() {
        let model = Model::embedded_default();
        let file = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/outcomes/scored_three.csv"
        ))
        .unwrap();
        let labels: HashMap<String, bool> =
            [("A-1".to_owned(), true), ("C-3".to_owned(), false)].into();
        let mut j = Joiner::new(Vec::new());
        let day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        j.join(
            "p1",
            model,
            &ManualMapping::new(),
            file.as_bytes(),
            &labels,
            day,
        )
        .unwrap();
        assert_eq!((j.rows, j.churned), (2, 1));
        let out = String::from_utf8(j.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            !lines[0].contains("Churn,"),
            "the file's own label is dropped: {}",
            lines[0]
        );
        assert!(
            lines[0].ends_with("scored_on,outcome_churned"),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with("A-1,") && lines[1].ends_with(",2026-01-05,Yes"));
        assert!(lines[2].starts_with("C-3,") && lines[2].ends_with(",2026-01-05,No"));
        assert_eq!(lines.len(), 3);

        // Another header is refused, naming the prediction.
        let mut j = Joiner::new(Vec::new());
        j.join(
            "p1",
            model,
            &ManualMapping::new(),
            file.as_bytes(),
            &labels,
            day,
        )
        .unwrap();
        let other = file.replacen("PaperlessBilling", "Paperless", 1);
        let e = j
            .join(
                "p2",
                model,
                &ManualMapping::new(),
                other.as_bytes(),
                &labels,
                day,
            )
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("prediction p2: its columns"), "{e}");
    }
}
