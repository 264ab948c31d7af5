//! Training and scoring on the real IBM Telco Customer Churn file (not committed; see
//! `../shared/data/README.md`). Skips, loudly, when the file is absent.

use retainwise_model::metrics::roc_auc;
use retainwise_model::values::parse_label;
use retainwise_model::{score_csv, train_csv, Model, ScoreOptions, TrainParams};

mod common;
use common::telco_path;

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
    let auc = report.cross_validation.roc_auc.mean;
    assert!(auc >= 0.83, "CV ROC AUC {auc}");
    // Same data, same default settings: the committed default is this very model.
    assert_eq!(
        model.id(),
        Model::embedded_default().id(),
        "the committed models/telco-default.json is stale: re-create it with examples/train.rs"
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
    assert!(report.warnings.is_empty());
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
