//! Training and scoring on the real IBM Telco Customer Churn file (not committed; see
//! `../shared/data/README.md`). Skips, loudly, when the file is absent.

use retainwise_model::metrics::roc_auc;
use retainwise_model::values::parse_label;
use retainwise_model::{score_csv, train_csv, Model, ScoreOptions, TrainParams};

mod common;
use common::telco_path;

/// The accuracy targets, with default settings: nested 5-fold CV ROC AUC ≥ 0.850,
/// log loss ≤ 0.410, expected calibration error ≤ 0.02.
#[test]
fn training_on_telco_cross_validates_well() {
    let Some(path) = telco_path() else { return };
    let mut params = TrainParams::new("Churn");
    params.id_column = Some("customerID".into());
    params.name = "telco".into();
    let (model, report) = train_csv(std::fs::File::open(&path).unwrap(), &params).unwrap();
    println!("{report}");
    assert_eq!(report.rows, 7043);
    assert_eq!(report.positives, 1869);
    // `RETAINWISE_WRITE_MODEL=PATH` writes the trained artifact there (the same bytes as
    // `retainwise train`), to refresh models/telco-default.json after a deliberate change.
    if let Some(out) = std::env::var_os("RETAINWISE_WRITE_MODEL") {
        std::fs::write(out, model.to_json_vec()).unwrap();
    }
    let cv = &report.cross_validation;
    assert!(cv.roc_auc.mean >= 0.850, "CV ROC AUC {}", cv.roc_auc.mean);
    assert!(
        cv.log_loss.mean <= 0.410,
        "CV log loss {}",
        cv.log_loss.mean
    );
    assert!(cv.calibration_error <= 0.02, "ECE {}", cv.calibration_error);
    // Same data, same default settings: the committed default is this very model.
    assert_eq!(
        model.id(),
        Model::embedded_default().id(),
        "the committed models/telco-default.json is stale: re-create it with `retainwise train \
         ../shared/data/telco-customer-churn.csv --label Churn --id customerID -o \
         crates/retainwise-model/models/telco-default.json`"
    );
    assert_eq!(
        model.card().settings,
        Model::embedded_default().card().settings
    );
}

#[test]
fn scoring_telco_with_the_embedded_model() {
    let Some(path) = telco_path() else { return };
    let bytes = std::fs::read(&path).unwrap();
    let mut out = Vec::new();
    let report = score_csv(
        Model::embedded_default(),
        &bytes[..],
        &mut out,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(report.rows_total, 7043);
    assert_eq!(report.rows_scored, 7043);
    assert_eq!(report.rows_rejected, 0);
    // The 11 customers without TotalCharges (new ones) are the only substituted values, and
    // nothing in the training file lies outside the training ranges.
    assert_eq!(report.validation.warnings_total, 11);
    assert!(report
        .warnings
        .iter()
        .all(|w| w.column.as_deref() == Some("TotalCharges") && w.used_instead.is_some()));
    assert_eq!(report.ignored_columns, vec!["Churn"]);

    let mut input = csv::Reader::from_reader(&bytes[..]);
    let labels: Vec<bool> = input
        .records()
        .map(|r| parse_label(&r.unwrap()[20]).unwrap())
        .collect();
    let mut scored = csv::Reader::from_reader(&out[..]);
    let mut probs = Vec::new();
    let mut ids = Vec::new();
    for r in scored.records() {
        let r = r.unwrap();
        let p: f64 = r[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
        probs.push(p);
        ids.push(r[0].to_string());
    }
    assert_eq!(ids[0], "7590-VHVEG");
    let auc = roc_auc(&labels, &probs).unwrap();
    assert!(auc >= 0.80, "in-sample ROC AUC {auc}");
}
