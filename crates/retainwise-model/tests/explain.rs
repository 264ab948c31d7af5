//! Exact explanations on the real Telco data with the embedded model: for every row, the base
//! value plus the per-column SHAP values (trees and logistic regression, blended) equals the
//! model's log-odds; the
//! probability-point impacts add up to `p − p₀`; the scored file's explanation columns agree
//! with the explainer. Skips, loudly, when the Telco file is absent.

use std::path::PathBuf;

use retainwise_model::{score_csv, Model, ScoreOptions};

mod common;
use common::telco_path;

/// Every Telco row encoded with the model's own encoder (the header spells the schema's
/// columns exactly), with its customer id.
fn encoded_rows(model: &Model, path: &PathBuf) -> Vec<(String, Vec<f64>)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let at: Vec<usize> = model
        .schema()
        .columns
        .iter()
        .map(|c| header.iter().position(|h| *h == c.name).unwrap())
        .collect();
    let id_at = header.iter().position(|h| h == "customerID").unwrap();
    let encoder = model.encoder();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let mut x = vec![0.0; encoder.n_features()];
            for (c, &i) in at.iter().enumerate() {
                encoder.encode_cell(c, &r[i], &mut x).unwrap();
            }
            (r[id_at].to_string(), x)
        })
        .collect()
}

#[test]
fn contributions_add_up_to_the_log_odds_on_every_telco_row() {
    let Some(path) = telco_path() else { return };
    let model = Model::embedded_default();
    let explainer = model.explainer();
    let mut phi = vec![0.0; explainer.n_columns()];
    let mut worst: f64 = 0.0;
    let mut worst_points: f64 = 0.0;
    let rows = encoded_rows(model, &path);
    assert_eq!(rows.len(), 7043);
    // The default model is the blend, so this covers the trees and the linear part together.
    assert!(model.predictor().linear.is_some());
    for (_, x) in &rows {
        let f = model.log_odds(x);
        let e = explainer.explain(x, &mut phi);
        assert_eq!(e.log_odds.to_bits(), f.to_bits());
        assert_eq!(e.probability, model.predict_probability(x));
        assert_eq!(e.base_value, explainer.base_value());
        let total = explainer.base_value() + phi.iter().sum::<f64>();
        worst = worst.max((total - f).abs());
        // All columns' impacts (not only the listed top 3) add up to p − p₀ in points.
        let p = model.predict_probability(x);
        let slope = (p - e.base_probability) / (f - explainer.base_value());
        let points: f64 = phi.iter().map(|v| 100.0 * v * slope).sum();
        worst_points = worst_points.max((points - 100.0 * (p - e.base_probability)).abs());
        assert!(e
            .risk_factors
            .windows(2)
            .all(|w| w[0].impact >= w[1].impact));
        assert!(e.risk_factors.iter().all(|f| f.impact > 0.0));
        assert!(e.protective_factors.iter().all(|f| f.impact < 0.0));
    }
    println!("largest |base + Σφ − log-odds| over 7043 rows: {worst:e}");
    assert!(worst < 1e-6, "{worst}");
    assert!(worst_points < 1e-9, "{worst_points}");
}

#[test]
fn scored_file_carries_the_explanations() {
    let Some(path) = telco_path() else { return };
    let model = Model::embedded_default();
    let mut out = Vec::new();
    score_csv(
        model,
        std::fs::File::open(&path).unwrap(),
        &mut out,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let rows = encoded_rows(model, &path);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (risk, protective, summary, rec) = (
        col("risk_factors"),
        col("protective_factors"),
        col("summary"),
        col("recommendation"),
    );
    let mut phi = vec![0.0; model.explainer().n_columns()];
    let mut n = 0;
    for (record, (id, x)) in reader.records().zip(&rows) {
        let record = record.unwrap();
        assert_eq!(&record[0], id);
        let e = model.explainer().explain(x, &mut phi);
        let listed: Vec<serde_json::Value> = serde_json::from_str(&record[risk]).unwrap();
        assert_eq!(listed.len(), e.risk_factors.len());
        for (l, f) in listed.iter().zip(&e.risk_factors) {
            assert_eq!(l["feature"], f.feature);
            assert_eq!(l["value"], &*f.value);
            assert!((l["impact"].as_f64().unwrap() - f.impact).abs() <= 0.05 + 1e-9);
        }
        let listed: Vec<serde_json::Value> = serde_json::from_str(&record[protective]).unwrap();
        assert_eq!(listed.len(), e.protective_factors.len());
        assert!(record[summary].ends_with('.') && record[summary].contains("risk"));
        assert!(!record[rec].is_empty());
        n += 1;
    }
    assert_eq!(n, 7043);
}

/// Several batches (the scorer works in batches of 4096 on a background thread), with rejected
/// rows in between: every good row comes out once, in input order, and the report counts add up.
#[test]
fn batches_keep_input_order_across_rejections() {
    let Some(path) = telco_path() else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut input = format!("{header}\n");
    let mut expected = Vec::new();
    for i in 0..3 * rows.len() {
        let cells: Vec<&str> = rows[i % rows.len()].split(',').collect();
        let id = format!("R{i:06}");
        let mut out: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
        out[0] = id.clone();
        if i % 997 == 0 {
            // TotalCharges (column 19) is not a number: the row is rejected.
            out[19] = "abc".into();
        } else {
            expected.push(id);
        }
        input.push_str(&out.join(","));
        input.push('\n');
    }
    let mut out = Vec::new();
    let report = score_csv(
        Model::embedded_default(),
        input.as_bytes(),
        &mut out,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.rows_total as usize, 3 * rows.len());
    assert_eq!(report.rows_scored as usize, expected.len());
    assert_eq!(
        report.rows_rejected as usize,
        3 * rows.len() - expected.len()
    );
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let ids: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(ids, expected);
}
