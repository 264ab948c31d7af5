//! The dashboard figures of a scored file ([`retainwise_model::portfolio`]) agree with the
//! scored CSV itself: the histogram counts every row, revenue at risk is Σ MonthlyCharges ×
//! churn probability, and the driver counts are those of the `risk_factors` cells.

mod common;

use std::collections::HashMap;

use retainwise_model::portfolio::HISTOGRAM_BINS;
use retainwise_model::{score_csv, Model, ScoreOptions};

#[test]
fn portfolio_matches_the_scored_rows() {
    let Some(path) = common::telco_path() else {
        return;
    };
    let input = std::fs::read(&path).unwrap();
    let mut out = Vec::new();
    let report = score_csv(
        Model::embedded_default(),
        input.as_slice(),
        &mut out,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let p = &report.portfolio;

    let mut monthly: HashMap<String, f64> = HashMap::new();
    let mut reader = csv::Reader::from_reader(input.as_slice());
    let header = reader.headers().unwrap().clone();
    let id = header.iter().position(|h| h == "customerID").unwrap();
    let mc = header.iter().position(|h| h == "MonthlyCharges").unwrap();
    for rec in reader.records() {
        let rec = rec.unwrap();
        monthly.insert(rec[id].to_owned(), rec[mc].parse().unwrap());
    }

    let mut at_risk = 0.0;
    let mut revenue = 0.0;
    let mut histogram = [0u64; HISTOGRAM_BINS];
    let mut drivers: HashMap<String, u64> = HashMap::new();
    let mut scored = csv::Reader::from_reader(out.as_slice());
    for rec in scored.records() {
        let rec = rec.unwrap();
        let prob: f64 = rec[1].parse().unwrap();
        let m = monthly[&rec[0]];
        at_risk += m * prob;
        revenue += m;
        histogram[((prob * 20.0) as usize).min(19)] += 1;
        let factors: Vec<serde_json::Value> = serde_json::from_str(&rec[5]).unwrap();
        for f in factors {
            *drivers
                .entry(f["feature"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(p.revenue_column.as_deref(), Some("MonthlyCharges"));
    assert_eq!(p.revenue_customers, report.rows_scored);
    let (p_at_risk, p_revenue) = (p.revenue_at_risk.unwrap(), p.monthly_revenue.unwrap());
    assert!(
        (p_at_risk - at_risk).abs() < 0.01,
        "{p_at_risk} vs {at_risk}"
    );
    assert!((p_revenue - revenue).abs() < 0.01);
    assert!(p_at_risk > 0.0 && p_at_risk < p_revenue);
    assert_eq!(p.probability_histogram, histogram.to_vec());
    assert_eq!(
        p.probability_histogram.iter().sum::<u64>(),
        report.rows_scored
    );
    assert!(!p.top_drivers.is_empty());
    for d in &p.top_drivers {
        assert_eq!(d.customers, drivers[&d.feature], "{}", d.feature);
        assert!(d.mean_impact > 0.0);
    }
    let most = drivers.values().max().unwrap();
    assert_eq!(p.top_drivers[0].customers, *most);
}
