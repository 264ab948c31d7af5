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
    // Without --id too: the history's id is far from distinct, so it is not taken for the id
    // column, yet its repeats are named all the same.
    let mut no_id = p.clone();
    no_id.id_column = None;
    let (_, report) = train_csv(csv.as_bytes(), &no_id).unwrap();
    let warning = report
        .notes
        .iter()
        .find(|n| n.starts_with("WARNING"))
        .expect("a loud note without --id");
    assert!(
        warning.contains("--id customer_id --group customer_id"),
        "{warning}"
    );

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
    p.folds = 1;
    assert!(matches!(
        train_csv(csv.as_bytes(), &p),
        Err(TrainError::InvalidParams(_))
    ));
    p.folds = 5;
    p.group_column = Some("region".into());
    let err = train_csv(csv.as_bytes(), &p).unwrap_err();
    assert!(
        matches!(err, TrainError::TooFewGroups { .. })
            && err.to_string().contains("4 groups")
            && err.to_string().contains("--folds 4 or fewer"),
        "{err}"
    );
}

/// A small history where the last login is a few days before each row's own observation date
/// for customers who stay and weeks before it for those who leave; observation dates spread
/// over a year, so counted from the file's latest date the same gaps would read months long.
fn observed_history() -> String {
    let mut csv = String::from("customer_id,observation_date,last_login,seats,churned\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
    for c in 0..120u32 {
        for m in 0..6u32 {
            let obs = start + chrono::Days::new(u64::from((c % 6) * 60 + m * 7));
            let churned = (c * 7 + m * 3) % 10 == 0;
            let gap = if churned {
                30 + (c + m) % 20
            } else {
                (c + m) % 10
            };
            let login = obs - chrono::Days::new(u64::from(gap));
            csv.push_str(&format!(
                "U{c:04},{obs},{login},{},{}\n",
                1 + (c + m) % 5,
                if churned { "Yes" } else { "No" }
            ));
        }
    }
    csv
}

fn observed_params() -> TrainParams {
    let mut p = TrainParams::new("churned");
    p.id_column = Some("customer_id".into());
    p.group_column = Some("customer_id".into());
    p.observation_date = Some("observation_date".into());
    p.trained_at = "2025-01-01".into();
    p.search.trees = vec![TreeCandidate {
        max_depth: 2,
        learning_rate: 0.1,
        max_rounds: 30,
    }];
    p
}

fn probabilities(out: &[u8]) -> Vec<f64> {
    let mut scored = csv::Reader::from_reader(out);
    let at = scored
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "churn_probability")
        .unwrap();
    scored
        .records()
        .map(|r| r.unwrap()[at].parse().unwrap())
        .collect()
}

#[test]
fn dates_count_back_from_each_rows_observation_date_in_training_and_scoring() {
    let csv = observed_history();
    let (model, report) = train_csv(csv.as_bytes(), &observed_params()).unwrap();
    // Per row: the last login's days before the row's own date are the gaps, 0 to 49; from
    // the file's latest date (2024-12-31) they would reach about 350.
    let login = model
        .card()
        .features
        .iter()
        .find(|f| f.name == "last_login")
        .unwrap();
    let range = login.range.as_ref().unwrap();
    assert!(range.min == 0.0 && range.max <= 49.0, "{range:?}");
    assert_eq!(
        login.meaning.as_deref(),
        Some("days before the row's own observation date (observation_date)")
    );
    // The observation date is not a feature, and the card says where dates count from.
    assert!(model
        .schema()
        .columns
        .iter()
        .all(|c| c.name != "observation_date"));
    assert!(report
        .dropped_columns
        .iter()
        .any(|d| d.name == "observation_date" && d.reason.contains("observation date")));
    assert_eq!(
        model.card().observation_date.as_deref(),
        Some("observation_date")
    );
    assert_eq!(model.card().reference_date, None);
    assert!(report.to_string().contains("each row's observation_date"));
    // The gap separates the classes exactly once it is counted per row.
    assert!(report.cross_validation.roc_auc.mean > 0.99, "{report}");

    // Scoring reads the same column: a file with it scores each row as a file without it
    // whose dates were moved so that the one reference date is every row's own.
    let reference = chrono::NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
    let mut moved = String::from("customer_id,last_login,seats\n");
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let obs: chrono::NaiveDate = f[1].parse().unwrap();
        let login: chrono::NaiveDate = f[2].parse().unwrap();
        let shifted = reference - (obs - login);
        moved.push_str(&format!("{},{shifted},{}\n", f[0], f[3]));
    }
    let mut with_column = Vec::new();
    let scored = score_csv(
        &model,
        csv.as_bytes(),
        &mut with_column,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(scored.observation_date.as_deref(), Some("observation_date"));
    assert_eq!(scored.reference_date, None);
    assert!(!scored
        .ignored_columns
        .iter()
        .any(|c| c == "observation_date"));
    let mut without = Vec::new();
    let options = ScoreOptions {
        reference_date: Some(reference),
        ..ScoreOptions::default()
    };
    let plain = score_csv(
        &model,
        moved.as_bytes(),
        &mut without,
        &options,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(plain.observation_date, None);
    assert_eq!(plain.reference_date.as_deref(), Some("2025-06-30"));
    let (a, b) = (probabilities(&with_column), probabilities(&without));
    assert_eq!(a.len(), 720);
    assert_eq!(a, b);
    // Without the column, one reference date serves every row: the unmoved
    // dates then read as long gaps, and the scores change.
    let unmoved: String = csv
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{}\n", f[0], f[2], f[3])
        })
        .collect();
    let mut out = Vec::new();
    let late = score_csv(&model, unmoved.as_bytes(), &mut out, &options, &mut |_| {}).unwrap();
    assert_eq!(late.rows_scored, 720);
    assert_ne!(probabilities(&out), a);
}

#[test]
fn a_blank_or_unreadable_observation_date_is_refused_naming_the_row() {
    let csv = observed_history();
    let bad = csv.replacen("\nU0002,2024-05-30,", "\nU0002,30/05/2024,", 1);
    assert_ne!(bad, csv);
    let err = train_csv(bad.as_bytes(), &observed_params()).unwrap_err();
    let TrainError::BadObservationDate {
        row,
        customer_id,
        column,
        value,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(
        (
            *row,
            customer_id.as_deref(),
            column.as_str(),
            value.as_str()
        ),
        (13, Some("U0002"), "observation_date", "30/05/2024")
    );
    assert!(err.to_string().contains("2024-05-31"), "{err}");
    let blank = csv.replacen("\nU0002,2024-05-30,", "\nU0002,,", 1);
    assert!(matches!(
        train_csv(blank.as_bytes(), &observed_params()),
        Err(TrainError::BadObservationDate { row: 13, .. })
    ));
    let mut p = observed_params();
    p.observation_date = Some("as_of".into());
    assert!(matches!(
        train_csv(csv.as_bytes(), &p),
        Err(TrainError::ObservationDateMissing { .. })
    ));
    p.observation_date = Some("observation_date".into());
    p.reference_date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1);
    assert!(matches!(
        train_csv(csv.as_bytes(), &p),
        Err(TrainError::InvalidParams(_))
    ));

    // Scoring rejects such a row alone, naming the column and the value.
    let (model, _) = train_csv(csv.as_bytes(), &observed_params()).unwrap();
    let mut out = Vec::new();
    let report = score_csv(
        &model,
        bad.as_bytes(),
        &mut out,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!((report.rows_scored, report.rows_rejected), (719, 1));
    let issue = &report.issues[0];
    assert_eq!(issue.row, 13);
    assert_eq!(issue.customer_id.as_deref(), Some("U0002"));
    assert_eq!(issue.column.as_deref(), Some("observation_date"));
    assert_eq!(issue.value.as_deref(), Some("30/05/2024"));
}
