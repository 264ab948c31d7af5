//! Training on synthetic data made here, the artifact round trip, and training errors.

use retainwise_model::search::TreeCandidate;
use retainwise_model::{
    score_csv, train_csv, Model, ModelError, ScoreOptions, TrainError, TrainParams,
};

/// A churn-like table: churn is likelier on monthly plans, short tenure and paper billing.
/// `account` is an identifier, `region` a constant, `tenure` has blanks.
fn synthetic_csv(rows: usize) -> String {
    let mut s = String::from("account,plan,tenure,paperless,region,churned\n");
    let mut state: u64 = 99;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..rows {
        let plan = ["Monthly", "Annual", "Two year"][(next() * 3.0) as usize];
        let tenure = (next() * 60.0).floor();
        let paperless = next() < 0.5;
        let z = -1.0 + if plan == "Monthly" { 1.5 } else { -0.5 } - tenure / 20.0
            + if paperless { 0.0 } else { 0.7 };
        let churn = next() < 1.0 / (1.0 + (-z).exp());
        let tenure_cell = if i % 37 == 0 {
            " ".to_string()
        } else {
            tenure.to_string()
        };
        s.push_str(&format!(
            "{:05},{plan},{tenure_cell},{},EU,{}\n",
            i,
            if paperless { "Yes" } else { "No" },
            if churn { "churned" } else { "active" }
        ));
    }
    s
}

fn params() -> TrainParams {
    let mut p = TrainParams::new("churned");
    p.name = "synthetic".into();
    p.trained_at = "2024-01-02".into();
    // One small tree candidate keeps these tests quick; the linear part and the calibration
    // choice run as by default.
    p.search.trees = vec![TreeCandidate {
        max_depth: 3,
        learning_rate: 0.1,
        max_rounds: 60,
    }];
    p
}

#[test]
fn trains_reports_and_detects_the_id_column() {
    let csv = synthetic_csv(600);
    let (model, report) = train_csv(csv.as_bytes(), &params()).unwrap();
    assert_eq!(model.id_column(), Some("account"));
    assert!(model.id().starts_with("synthetic-gbdt-v2-"));
    assert_eq!(report.rows, 600);
    let kinds: Vec<(&str, &str)> = report
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("plan", "categorical"),
            ("tenure", "numeric"),
            ("paperless", "boolean")
        ]
    );
    let dropped: Vec<&str> = report
        .dropped_columns
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(dropped, vec!["account", "region"]);
    let cv = &report.cross_validation;
    assert_eq!(cv.roc_auc.folds.len(), 5);
    assert!(cv.roc_auc.mean > 0.7, "CV ROC AUC {}", cv.roc_auc.mean);
    assert!(cv.log_loss.mean < 0.69);
    assert_eq!(cv.reliability.len(), 10);
    assert_eq!(
        cv.reliability.iter().map(|b| b.rows).sum::<u64>(),
        600,
        "every out-of-fold forecast is in one bin"
    );
    let card = model.card();
    let search = card
        .settings
        .search
        .as_ref()
        .expect("the search is recorded");
    assert_eq!(card.settings.gbdt.max_depth, 3);
    assert!((1..=60).contains(&card.settings.gbdt.rounds));
    assert_eq!(search.outer_folds.len(), 5);
    assert_eq!(search.penalties.len(), 3);
    assert!(["platt", "isotonic"].contains(&search.calibration.chosen.as_str()));
    // The synthetic churn is logistic in the inputs: the regression carries weight.
    assert!(search.blend.linear_weight > 0.0, "{:?}", search.blend);
    assert_eq!(card.training_data.rows, 600);
    assert_eq!(card.training_data.sha256.len(), 64);
    assert_eq!(card.trained_at, "2024-01-02");
    let shown = report.to_string();
    assert!(
        shown.contains("ROC AUC") && shown.contains("account: "),
        "{shown}"
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let csv = synthetic_csv(400);
    let (a, _) = train_csv(csv.as_bytes(), &params()).unwrap();
    let (b, _) = train_csv(csv.as_bytes(), &params()).unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(a.to_json_vec(), b.to_json_vec());
}

#[test]
fn artifact_round_trip_scores_identically() {
    let csv = synthetic_csv(400);
    let (model, _) = train_csv(csv.as_bytes(), &params()).unwrap();
    let bytes = model.to_json_vec();
    let back = Model::from_json_slice(&bytes).unwrap();
    assert_eq!(back.id(), model.id());
    assert_eq!(back.to_json_vec(), bytes);
    let score = |m: &Model| {
        let mut out = Vec::new();
        score_csv(
            m,
            csv.as_bytes(),
            &mut out,
            &ScoreOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        out
    };
    let (x, y) = (score(&model), score(&back));
    assert_eq!(x, y);
    // The id column text is copied as given, leading zeros included.
    assert!(String::from_utf8(x).unwrap().contains("\n00001,"));

    // Same for the embedded default.
    let d = Model::embedded_default();
    let again = Model::from_json_slice(&d.to_json_vec()).unwrap();
    assert_eq!(again.forest(), d.forest());
}

#[test]
fn an_edited_artifact_is_refused() {
    let (model, _) = train_csv(synthetic_csv(300).as_bytes(), &params()).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&model.to_json_vec()).unwrap();
    v["forest"]["base_score"] = serde_json::json!(3.0);
    let e = Model::from_json_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(matches!(e, ModelError::IdMismatch { .. }), "{e}");

    let mut v: serde_json::Value = serde_json::from_slice(&model.to_json_vec()).unwrap();
    v["forest"]["trees"][0]["feature"][0] = serde_json::json!(99);
    let e = Model::from_json_slice(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(matches!(e, ModelError::InvalidForest(_)), "{e}");
    assert!(e.to_string().contains("feature 99"));
}

#[test]
fn training_errors_name_what_to_fix() {
    let p = params();
    let e = train_csv(synthetic_csv(100).as_bytes(), &TrainParams::new("Churn")).unwrap_err();
    match &e {
        TrainError::LabelMissing { label, found } => {
            assert_eq!(label, "Churn");
            assert!(found.contains(&"churned".to_string()));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("account, plan"));

    let one_class: String = synthetic_csv(100)
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l}\n"),
            _ => format!("{},active\n", l.rsplit_once(',').unwrap().0),
        })
        .collect();
    assert!(matches!(
        train_csv(one_class.as_bytes(), &p),
        Err(TrainError::SingleClass {
            class: "active",
            ..
        })
    ));

    let few = synthetic_csv(30);
    assert!(matches!(
        train_csv(few.as_bytes(), &p),
        Err(TrainError::TooFewRows { rows: 30, .. })
    ));

    let mut lines: Vec<String> = synthetic_csv(100).lines().map(str::to_string).collect();
    lines[5] = lines[5]
        .replace(",active", ",maybe")
        .replace(",churned", ",maybe");
    let e = train_csv(lines.join("\n").as_bytes(), &p).unwrap_err();
    assert!(
        matches!(&e, TrainError::BadLabel { row: 5, value } if value == "maybe"),
        "{e:?}"
    );
    assert!(e.to_string().contains("Yes/No"));

    let mut id = p.clone();
    id.id_column = Some("nope".into());
    assert!(matches!(
        train_csv(synthetic_csv(100).as_bytes(), &id),
        Err(TrainError::IdColumnMissing { .. })
    ));

    assert!(matches!(train_csv(&b""[..], &p), Err(TrainError::Empty)));
    let ragged = format!("{}1,2\n", synthetic_csv(60));
    assert!(matches!(
        train_csv(ragged.as_bytes(), &p),
        Err(TrainError::RaggedRow {
            row: 61,
            fields: 2,
            expected: 6
        })
    ));
}

#[test]
fn progress_counts_every_fit_and_a_false_answer_stops_the_training() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let csv = synthetic_csv(300);
    let p = params();
    // Watched to the end: the largest `done` reported is the total, and the model is the
    // same as without a watcher.
    let (most, total) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (watched, _) = retainwise_model::train_csv_with_progress(csv.as_bytes(), &p, &|s| {
        if let retainwise_model::TrainStage::Fitting { done, total: t } = s {
            most.fetch_max(done, Ordering::Relaxed);
            total.store(t, Ordering::Relaxed);
        }
        true
    })
    .unwrap();
    assert!(total.load(Ordering::Relaxed) > 1);
    assert_eq!(most.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
    let (plain, _) = train_csv(csv.as_bytes(), &p).unwrap();
    assert_eq!(watched.id(), plain.id());
    // Stopped after three fits: no model, `Stopped`, and no fit far past the third.
    let calls = AtomicUsize::new(0);
    let stopped = retainwise_model::train_csv_with_progress(csv.as_bytes(), &p, &|s| {
        matches!(s, retainwise_model::TrainStage::Reading)
            || calls.fetch_add(1, Ordering::Relaxed) < 3
    });
    assert!(matches!(stopped, Err(TrainError::Stopped)));
    assert!(calls.load(Ordering::Relaxed) < total.load(Ordering::Relaxed));
}
