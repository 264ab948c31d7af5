//! Which model scores a file, and against which reference date: the one choice that
//! `retainwise predict` and the service's worker both make through [`plan`], so that the same
//! file gives the same bytes either way.

use std::io::{Read, Seek, SeekFrom};

use chrono::NaiveDate;

use crate::artifact::Model;
use crate::intake::InputLimits;
use crate::mapping::ManualMapping;
use crate::score::find_reference_date_sourced;

/// How many first bytes of a file decide between the requested model and the baseline (the
/// header and the first rows; the API's upload check reads as many).
pub const HEAD_BYTES: usize = 256 * 1024;

/// What a file will be scored with.
#[derive(Debug, Clone)]
pub struct Plan<'m> {
    /// The model that scores it.
    pub model: &'m Model,
    /// The reference date its date columns are counted back from; `None` when the model has no
    /// date columns, or the file holds no date in them.
    pub reference_date: Option<NaiveDate>,
    /// Where a found `reference_date` came from, in words (data row and column, dates passed
    /// over); `None` for a given one or none.
    pub reference_source: Option<String>,
}

/// `requested`, or `baseline` when one is offered and the file whose first bytes are `head`
/// fits the baseline but not `requested`, or when `manual` (a person's column choices) names
/// the baseline's inputs ([`crate::baseline::prefers_baseline_with`]).
pub fn model_for<'m>(
    requested: &'m Model,
    baseline: Option<&'m Model>,
    head: &[u8],
    manual: &ManualMapping,
) -> &'m Model {
    match baseline {
        Some(baseline) if crate::baseline::prefers_baseline_with(requested, head, manual) => {
            baseline
        }
        _ => requested,
    }
}

/// [`plan`]'s choice of model alone: [`model_for`] over the first [`HEAD_BYTES`] of `input`,
/// which is left where it was. A coordinator cutting a file uses it and finds the reference
/// date in its cutting pass ([`crate::chunks::split_finding_date`]) rather than in a pass of
/// its own.
///
/// # Errors
/// Reading the first bytes or seeking failed.
pub fn choose_model<'m, R: Read + Seek>(
    requested: &'m Model,
    baseline: Option<&'m Model>,
    input: &mut R,
    manual: &ManualMapping,
) -> std::io::Result<&'m Model> {
    // The head decides only between two models: without a baseline offered it is not read.
    match baseline {
        Some(_) => {
            let start = input.stream_position()?;
            let mut head = Vec::with_capacity(HEAD_BYTES);
            (&mut *input)
                .take(HEAD_BYTES as u64)
                .read_to_end(&mut head)?;
            input.seek(SeekFrom::Start(start))?;
            Ok(model_for(requested, baseline, &head, manual))
        }
        None => Ok(requested),
    }
}

/// Chooses the model and the reference date for `input`, a seekable file, and leaves it where
/// it was:
/// - the model: [`model_for`] over the file's first [`HEAD_BYTES`];
/// - the reference date: `given`, else, for a chosen model with date columns or a file whose
///   mapping reads a date column for a duration input, the latest date in the file's date
///   columns that is not after today and does not stand apart from the rest
///   ([`crate::dates::latest_not_apart`]; [`find_reference_date_sourced`], a first
///   pass over the file under `limits`, its columns read through `manual`).
///
/// A file that cannot be read in the first pass gets no reference date: the scoring pass meets
/// the same problem and reports it, with its validation report.
///
/// # Errors
/// Reading the first bytes or seeking failed.
pub fn plan<'m, R: Read + Seek>(
    requested: &'m Model,
    baseline: Option<&'m Model>,
    given: Option<NaiveDate>,
    input: &mut R,
    limits: &InputLimits,
    manual: &ManualMapping,
) -> std::io::Result<Plan<'m>> {
    let start = input.stream_position()?;
    let model = choose_model(requested, baseline, input, manual)?;
    let (reference_date, reference_source) = match given {
        Some(date) => (Some(date), None),
        // A model with date columns, or a file whose mapping reads a date column for a
        // duration input (`signup_date` for tenure): the file's own latest date.
        None => {
            let found = find_reference_date_sourced(model, &mut *input, limits, manual)
                .unwrap_or((None, None));
            input.seek(SeekFrom::Start(start))?;
            found
        }
    };
    Ok(Plan {
        model,
        reference_date,
        reference_source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::saas_baseline;

    #[test]
    fn the_baseline_takes_only_files_the_requested_model_cannot_read_and_the_input_is_rewound() {
        let telco = Model::embedded_default();
        let base = saas_baseline();
        let saas = "user_id,months_subscribed,mrr,plan_type,feature_usage_score,support_tickets,\
                    last_activity_days_ago,has_integration\nu1,3,40,monthly,12,6,40,No\n";
        let limits = InputLimits::default();
        let none = ManualMapping::new();
        let mut input = std::io::Cursor::new(saas.as_bytes());
        let offered = plan(telco, Some(base), None, &mut input, &limits, &none).unwrap();
        assert_eq!(offered.model.id(), base.id());
        assert_eq!(input.position(), 0, "the input is left where it was");
        // Without a baseline offered (`predict --model`), the requested model keeps the file.
        let kept = plan(telco, None, None, &mut input, &limits, &none).unwrap();
        assert_eq!(kept.model.id(), telco.id());
        assert_eq!(kept.reference_date, None, "the Telco model reads no dates");
        // A given reference date is used as given.
        let day = NaiveDate::from_ymd_opt(2024, 5, 31).unwrap();
        let given = plan(telco, Some(base), Some(day), &mut input, &limits, &none).unwrap();
        assert_eq!(given.reference_date, Some(day));
        let telco_file = "customerID,tenure\n1,2\n";
        let mut input = std::io::Cursor::new(telco_file.as_bytes());
        assert_eq!(
            model_for(telco, Some(base), telco_file.as_bytes(), &none).id(),
            telco.id()
        );
        assert_eq!(
            plan(telco, Some(base), None, &mut input, &limits, &none)
                .unwrap()
                .model
                .id(),
            telco.id()
        );
    }
}
