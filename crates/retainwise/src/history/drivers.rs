//! The drivers remembered per customer per run: the results' `risk_factors` and
//! `protective_factors` (up to three each, exact TreeSHAP effects in percentage points of churn
//! probability) stored as one compact JSON array, and the driver whose effect changed most
//! between two runs.

use serde::{Deserialize, Serialize};

/// One driver of one run: the column, the customer's value of it and its effect on the churn
/// probability in percentage points (positive raises it). Stored with one-letter keys
/// (`{"f","v","i","q"}`) to keep a row small; shown with full names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    /// The column.
    #[serde(rename(serialize = "feature", deserialize = "f"), alias = "feature")]
    pub feature: String,
    /// The customer's value of it, as the results wrote it.
    #[serde(rename(serialize = "value", deserialize = "v"), alias = "value")]
    pub value: serde_json::Value,
    /// Effect on the churn probability, percentage points (rounded to 0.1 by the scorer).
    #[serde(rename(serialize = "impact", deserialize = "i"), alias = "impact")]
    pub impact: f64,
    /// Set when the value was not usable as given (`"missing"`, `"unknown category"`, …).
    #[serde(
        rename(serialize = "quality", deserialize = "q"),
        alias = "quality",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub quality: Option<String>,
}

/// The compact stored form of `drivers`.
pub(super) fn compact(drivers: &[Driver]) -> String {
    #[derive(Serialize)]
    struct C<'a> {
        f: &'a str,
        v: &'a serde_json::Value,
        i: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        q: Option<&'a str>,
    }
    let rows: Vec<C<'_>> = drivers
        .iter()
        .map(|d| C {
            f: &d.feature,
            v: &d.value,
            i: d.impact,
            q: d.quality.as_deref(),
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned())
}

/// The drivers of a stored row; a row that does not parse reads as none (the column is only
/// ever written by [`compact`]).
pub(super) fn parse(stored: &str) -> Vec<Driver> {
    serde_json::from_str(stored).unwrap_or_default()
}

/// How one driver's effect changed between two runs of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverChange {
    /// The column.
    pub feature: String,
    /// Its value in the earlier run, `null` when it was not among that run's drivers.
    pub old_value: Option<serde_json::Value>,
    /// Its value in the later run, `null` when it is not among this run's drivers.
    pub new_value: Option<serde_json::Value>,
    /// Its effect in the earlier run (percentage points), `null` when not among its drivers.
    pub old_impact: Option<f64>,
    /// Its effect in the later run (percentage points), `null` when not among its drivers.
    pub new_impact: Option<f64>,
    /// `new_impact − old_impact` in percentage points, an absent effect counted as 0.
    pub change: f64,
}

/// The driver whose effect changed most (largest absolute change, then the column name)
/// between `old` and `new`, over every column listed in either run. A column listed in one run
/// only counts as 0 in the other: the run listed its three largest risk and protective effects,
/// so an unlisted one was smaller than those. `None` when neither run lists a driver.
pub fn most_changed(old: &[Driver], new: &[Driver]) -> Option<DriverChange> {
    let mut features: Vec<&str> = old.iter().chain(new).map(|d| d.feature.as_str()).collect();
    features.sort_unstable();
    features.dedup();
    features
        .into_iter()
        .map(|f| {
            let o = old.iter().find(|d| d.feature == f);
            let n = new.iter().find(|d| d.feature == f);
            let change = n.map_or(0.0, |d| d.impact) - o.map_or(0.0, |d| d.impact);
            DriverChange {
                feature: f.to_owned(),
                old_value: o.map(|d| d.value.clone()),
                new_value: n.map(|d| d.value.clone()),
                old_impact: o.map(|d| d.impact),
                new_impact: n.map(|d| d.impact),
                // The scorer rounds effects to 0.1: keep the difference on that grid.
                change: (change * 10.0).round() / 10.0,
            }
        })
        // Largest change first; among equal changes the first column by name.
        .min_by(|a, b| {
            b.change
                .abs()
                .total_cmp(&a.change.abs())
                .then_with(|| a.feature.cmp(&b.feature))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(f: &str, v: &str, i: f64) -> Driver {
        Driver {
            feature: f.to_owned(),
            value: serde_json::Value::String(v.to_owned()),
            impact: i,
            quality: None,
        }
    }

    #[test]
    fn compact_round_trips_and_shows_full_names() {
        let list = vec![
            d("Contract", "Month-to-month", 12.5),
            d("tenure", "2", -3.0),
        ];
        let stored = compact(&list);
        assert!(stored.starts_with("[{\"f\":\"Contract\""), "{stored}");
        assert_eq!(parse(&stored), list);
        let shown = serde_json::to_value(&list[0]).unwrap();
        assert_eq!(shown["feature"], "Contract");
        assert_eq!(shown["impact"], 12.5);
        assert!(parse("not json").is_empty());
    }

    #[test]
    fn the_driver_that_changed_most_counts_an_unlisted_one_as_zero() {
        let old = vec![d("Contract", "One year", -8.0), d("tenure", "40", -5.0)];
        let new = vec![
            d("Contract", "Month-to-month", 11.0),
            d("tenure", "41", -5.2),
        ];
        let m = most_changed(&old, &new).unwrap();
        assert_eq!((m.feature.as_str(), m.change), ("Contract", 19.0));
        assert_eq!(m.old_value, Some(serde_json::json!("One year")));
        // Listed only in the new run: its whole effect is the change.
        let m = most_changed(
            &[d("tenure", "1", 2.0)],
            &[d("InternetService", "Fiber", -7.0)],
        )
        .unwrap();
        assert_eq!((m.feature.as_str(), m.change), ("InternetService", -7.0));
        assert_eq!((m.old_impact, m.new_impact), (None, Some(-7.0)));
        assert!(most_changed(&[], &[]).is_none());
    }
}
