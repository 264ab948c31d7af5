//! Learning from customer histories (one row per customer per observation date): folds keep a
//! customer's rows together, the card says how, a repeated id without a group is warned about,
//! and the card's cross-validated estimate holds on customers the model never saw.

use retainwise_model::histories::{generate, HistoryParams};
use retainwise_model::search::TreeCandidate;
use retainwise_model::{metrics, score_csv, train_csv, ScoreOptions, TrainError, TrainParams};

/// The rows of customers numbered below `cut` (training) and the rest (held out), each with
/// the header.
fn split(csv: &str, cut: u32) -> (String, String) {
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    let (mut a, mut b) = (format!("{header}\n"), format!("{header}\n"));
    for line in lines {
        let n: u32 = line[1..7].parse().unwrap();
        let to = if n < cut { &mut a } else { &mut b };
        to.push_str(line);
        to.push('\n');
    }
    (a, b)
}

fn params(group: bool) -> TrainParams {
    let mut p = TrainParams::new("churned_next_month");
    p.id_column = Some("customer_id".into());
    p.group_column = group.then(|| "customer_id".into());
    p.trained_at = "2025-01-01".into();
    p
}

#[test]
fn grouped_folds_keep_customers_together_and_the_estimate_holds_on_new_customers() {
    let csv = generate(&HistoryParams {
        customers: 1_000,
        months: 12,
        seed: 5,
    });
    let (train, held_out) = split(&csv, 800);
    let (model, report) = train_csv(train.as_bytes(), &params(true)).unwrap();

    let cv = &report.cross_validation;
    let g = cv.grouping.as_ref().expect("the card records the grouping");
    assert_eq!(g.column, "customer_id");
    assert_eq!(g.folds.len(), cv.folds);
    assert_eq!(g.folds.iter().map(|f| f.rows).sum::<u64>(), report.rows);
    // Every customer sits in exactly one fold: the folds' group counts add up to the groups.
    assert_eq!(g.folds.iter().map(|f| f.groups).sum::<u64>(), g.groups);
    let churned: Vec<u64> = g.folds.iter().map(|f| f.positives).collect();
    assert!(
        churned.iter().max().unwrap() - churned.iter().min().unwrap() <= 2,
        "churners spread evenly: {churned:?}"
    );
    assert!(model
        .schema()
        .columns
        .iter()
        .all(|c| c.name != "customer_id"));
    assert!(report.notes.iter().all(|n| !n.starts_with("WARNING")));
    assert!(cv.top_decile_lift.as_ref().unwrap().mean > 1.5, "{cv:?}");

    // Honest: on held-out customers, ROC AUC within two fold standard deviations of the card.
    let mut out = Vec::new();
    let options = ScoreOptions {
        // The window's last observation date, as `retainwise predict` finds it in the file.
        reference_date: chrono::NaiveDate::from_ymd_opt(2024, 12, 31),
        ..ScoreOptions::default()
    };
    score_csv(&model, held_out.as_bytes(), &mut out, &options, &mut |_| {}).unwrap();
    let mut scored = csv::Reader::from_reader(out.as_slice());
    let at = scored
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "churn_probability")
        .unwrap();
    let probs: Vec<f64> = scored
        .records()
        .map(|r| r.unwrap()[at].parse().unwrap())
        .collect();
    let labels: Vec<bool> = held_out
        .lines()
        .skip(1)
        .map(|l| l.ends_with(",Yes"))
        .collect();
    assert_eq!(probs.len(), labels.len());
    let held = metrics::roc_auc(&labels, &probs).unwrap();
    let (mean, std) = (cv.roc_auc.mean, cv.roc_auc.std);
    assert!(
        (held - mean).abs() <= 2.0 * std,
        "held-out ROC AUC {held:.4} against the card's {mean:.4} ± {std:.4}"
    );
    assert!(held > 0.7, "held-out ROC AUC {held:.4}");
}

#[test]
fn a_repeated_id_without_a_group_is_warned_about_and_too_few_groups_refused() {
    let csv = generate(&HistoryParams {
        customers: 300,
        months: 6,
        seed: 9,
    });
    let mut p = params(false);
    p.search.trees = vec![TreeCandidate {
        max_depth: 2,
        learning_rate: 0.1,
        max_rounds: 20,
    }];
    let (_, report) = train_csv(csv.as_bytes(), &p).unwrap();
    let warning = report
        .notes
        .iter()
        .find(|n| n.starts_with("WARNING"))
        .expect("a loud note");
    assert!(
        warning.contains("--group customer_id") && warning.contains("optimistic"),
        "{warning}"
    );
    assert!(report.cross_validation.grouping.is_none());

    // A group column that is not there, and one with fewer groups than folds.
    p.group_column = Some("account".into());
    assert!(matches!(
        train_csv(csv.as_bytes(), &p),
        Err(TrainError::GroupColumnMissing { .. })
    ));
    // A row without its customer is refused, naming the count and the first row: in a group of
    // its own it could sit in another fold than its customer's other rows.
    p.group_column = Some("customer_id".into());
    let blanked = csv.replacen("\nC000001,", "\n,", 1);
    let err = train_csv(blanked.as_bytes(), &p).unwrap_err();
    assert!(
        matches!(err, TrainError::InvalidParams(_)) && err.to_string().contains("blank on 1 row"),
        "{err}"
    );
    p.group_column = Some("region".into());
    let err = train_csv(csv.as_bytes(), &p).unwrap_err();
    assert!(
        matches!(err, TrainError::TooFewGroups { .. }) && err.to_string().contains("4 groups"),
        "{err}"
    );
}
