//! Date columns end to end: a labelled file with a signup date and a last-login date-time,
//! where churn depends on how long ago the customer last logged in. Trained, scored with the
//! file's own reference date and with an explicit one, and fed a bad date.

use chrono::NaiveDate;
use retainwise_model::dates;
use retainwise_model::intake::Intake;
use retainwise_model::search::TreeCandidate;
use retainwise_model::{
    score_csv, score_seekable, train_csv, InputLimits, Model, ScoreOptions, TrainParams,
};
use std::io::Cursor;

/// The reference date of the training file: the latest last login (row 0 logged in that day).
const REFERENCE: &str = "2025-04-17";

fn reference() -> NaiveDate {
    dates::parse_reference(REFERENCE).unwrap()
}

/// `rows` customers: `plan` (Basic/Pro, a small effect), `seats` (noise), `signup_date`
/// (`YYYY-MM-DD`, 30 to 1,500 days before the reference) and `last_login` (a UTC date-time, 0
/// to 365 days before it, most of them recent). Churn is likely after 60 days without a login
/// and a little less likely for older accounts. With `with_dates` false the two date columns
/// are left out (same customers, same labels). Seeded: the same file every run.
fn churn_csv(rows: usize, with_dates: bool) -> String {
    let mut state: u64 = 0x5EED_DA7E;
    let mut next = || {
        // PCG-style LCG step (Knuth's MMIX constants), top 53 bits as a uniform in [0, 1).
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let r = reference();
    let mut s = String::from(if with_dates {
        "customer_id,plan,seats,signup_date,last_login,churned\n"
    } else {
        "customer_id,plan,seats,churned\n"
    });
    for i in 0..rows {
        let basic = next() < 0.5;
        let seats = 1 + (next() * 20.0) as i64;
        let age = 30 + (next() * 1470.0) as i64;
        let u = next();
        let inactive = if i == 0 {
            0
        } else {
            ((u * u * 365.0) as i64).min(age)
        };
        let hour = (next() * 24.0) as i64;
        let z = -2.2 + 4.5 * (inactive as f64 / 60.0).min(1.5) - age as f64 / 1000.0
            + if basic { 0.3 } else { 0.0 };
        let churned = next() < 1.0 / (1.0 + (-z).exp());
        let plan = if basic { "Basic" } else { "Pro" };
        let label = if churned { "Yes" } else { "No" };
        if with_dates {
            let signup = dates::iso(dates::date_days_before(r, age).unwrap());
            let login = dates::iso(dates::date_days_before(r, inactive).unwrap());
            s.push_str(&format!(
                "C{i:05},{plan},{seats},{signup},{login}T{hour:02}:30:00Z,{label}\n"
            ));
        } else {
            s.push_str(&format!("C{i:05},{plan},{seats},{label}\n"));
        }
    }
    s
}

fn params() -> TrainParams {
    let mut p = TrainParams::new("churned");
    p.id_column = Some("customer_id".into());
    p.name = "dated".into();
    p.trained_at = "2025-04-18".into();
    p.search.trees = vec![TreeCandidate {
        max_depth: 3,
        learning_rate: 0.1,
        max_rounds: 80,
    }];
    p
}

fn trained() -> (Model, retainwise_model::TrainReport) {
    train_csv(churn_csv(1000, true).as_bytes(), &params()).unwrap()
}

/// Scores `csv` (reading it twice when needed, as the CLI and the worker do); the report and
/// the output rows as (customer id, risk factors JSON, summary).
fn score(
    model: &Model,
    csv: &str,
    reference_date: Option<NaiveDate>,
) -> (
    retainwise_model::ScoreReport,
    Vec<(String, serde_json::Value, String)>,
) {
    let opts = ScoreOptions {
        reference_date,
        ..ScoreOptions::default()
    };
    let mut out = Vec::new();
    let report = score_seekable(
        model,
        Cursor::new(csv.as_bytes()),
        &mut out,
        &opts,
        &mut |_| {},
    )
    .unwrap();
    let mut reader = csv::Reader::from_reader(&out[..]);
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_string(),
                serde_json::from_str(&r[5]).unwrap(),
                r[7].to_string(),
            )
        })
        .collect();
    (report, rows)
}

#[test]
fn the_card_lists_both_date_columns_and_the_reference_date() {
    let (model, report) = trained();
    let card = model.card();
    for name in ["signup_date", "last_login"] {
        let f = card.features.iter().find(|f| f.name == name).unwrap();
        assert_eq!(f.kind, "date", "{f:?}");
        assert_eq!(f.describe(), "date: days before the reference date");
    }
    assert_eq!(card.reference_date.as_deref(), Some(REFERENCE));
    assert_eq!(report.reference_date.as_deref(), Some(REFERENCE));
    let shown = report.to_string();
    assert!(
        shown.contains("last_login (date: days before the reference date)")
            && shown.contains("reference  2025-04-17"),
        "{shown}"
    );
    // The artifact keeps the date columns and the reference date through a save and a load.
    let loaded = Model::from_json_slice(&model.to_json_vec()).unwrap();
    assert_eq!(loaded.id(), model.id());
    assert_eq!(loaded.schema(), model.schema());
    assert_eq!(loaded.card().reference_date.as_deref(), Some(REFERENCE));
}

#[test]
fn the_dates_carry_the_signal_the_other_columns_lack() {
    let (with_dates, _) = trained();
    let (without, _) = train_csv(churn_csv(1000, false).as_bytes(), &params()).unwrap();
    let auc = |m: &Model| m.card().cross_validation.roc_auc.mean;
    eprintln!(
        "cross-validated ROC AUC: with the date columns {:.3}, without them {:.3}",
        auc(&with_dates),
        auc(&without)
    );
    assert!(
        auc(&with_dates) > auc(&without) + 0.15,
        "ROC AUC with dates {} vs without {}",
        auc(&with_dates),
        auc(&without)
    );
}

#[test]
fn a_long_inactive_customer_is_driven_by_the_last_login() {
    let (model, _) = trained();
    let file = "customer_id,plan,seats,signup_date,last_login\n\
                QUIET,Pro,5,2022-01-10,2024-06-21T09:00:00Z\n\
                BUSY,Pro,5,2022-01-10,2025-04-16T09:00:00+00:00\n";
    let (report, rows) = score(&model, file, Some(reference()));
    assert_eq!(report.reference_date.as_deref(), Some(REFERENCE));
    let (id, risk, summary) = &rows[0];
    assert_eq!(id, "QUIET");
    assert_eq!(risk[0]["feature"], "last_login", "{risk}");
    assert_eq!(risk[0]["value"], "2024-06-21 (300 days before 2025-04-17)");
    assert!(
        summary.starts_with("Last login 300 days before the reference date"),
        "{summary}"
    );
    assert!(report.risk_counts.high >= 1, "{:?}", report.risk_counts);
}

#[test]
fn the_reference_date_is_the_files_latest_date_unless_given() {
    let (model, _) = trained();
    let file = "customer_id,plan,seats,signup_date,last_login\n\
                A,Pro,5,2023-03-01,2025-05-01T23:30:00-02:00\n\
                B,Basic,2,2024-01-15,\n";
    // The latest date is A's last login, 2025-05-02 in UTC.
    let (own, _) = score(&model, file, None);
    assert_eq!(own.reference_date.as_deref(), Some("2025-05-02"));
    assert_eq!(own.rows_scored, 2);
    // An explicit reference date ten days later shifts every day count by ten.
    let later = dates::parse_reference("2025-05-12").unwrap();
    let (given, _) = score(&model, file, Some(later));
    assert_eq!(given.reference_date.as_deref(), Some("2025-05-12"));
    let encoded = |reference| {
        let mut intake = Intake::open(&model, file.as_bytes(), &InputLimits::default()).unwrap();
        intake.check_mapping().unwrap();
        intake.set_reference_date(Some(reference));
        let mut f = vec![0.0; model.encoder().n_features()];
        let r = intake.next_row(&mut f).unwrap().unwrap();
        assert!(r.rejected.is_none(), "{r:?}");
        f
    };
    let names = model.schema().feature_names();
    let slot = |name: &str| names.iter().position(|n| n == name).unwrap();
    let (a, b) = (
        encoded(dates::parse_reference("2025-05-02").unwrap()),
        encoded(later),
    );
    assert_eq!(a[slot("last_login")], 0.0);
    assert_eq!(b[slot("last_login")], 10.0);
    assert_eq!(b[slot("signup_date")] - a[slot("signup_date")], 10.0);
    assert_eq!(a[slot("signup_date")], 793.0);
}

#[test]
fn a_bad_date_at_scoring_is_a_row_error_naming_the_cell() {
    let (model, _) = trained();
    let file = "customer_id,plan,seats,signup_date,last_login\n\
                GOOD,Pro,5,2023-03-01,2025-04-01T10:00:00Z\n\
                BAD,Pro,5,01/03/2023,2025-04-01T10:00:00Z\n";
    let (report, rows) = score(&model, file, None);
    assert_eq!((report.rows_scored, report.rows_rejected), (1, 1));
    assert_eq!(rows[0].0, "GOOD");
    let issue = &report.issues[0];
    assert_eq!(issue.row, 2);
    assert_eq!(issue.customer_id.as_deref(), Some("BAD"));
    assert_eq!(issue.column.as_deref(), Some("signup_date"));
    assert_eq!(issue.value.as_deref(), Some("01/03/2023"));
    assert!(
        issue.reason.starts_with("expected a date like 2024-05-31"),
        "{issue}"
    );
    assert_eq!(report.validation.columns[2].invalid, 1);
}

#[test]
fn one_pass_without_a_reference_date_says_what_is_missing() {
    let (model, _) = trained();
    let file = "customer_id,plan,seats,signup_date,last_login\n\
                A,Pro,5,2023-03-01,2025-04-01T10:00:00Z\n\
                B,Pro,5,,\n";
    let mut out = Vec::new();
    let report = score_csv(
        &model,
        file.as_bytes(),
        &mut out,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    // B has no dates and is scored (its dates are missing); A's dates need a reference date.
    assert_eq!((report.rows_scored, report.rows_rejected), (1, 1));
    assert!(
        report.issues[0].reason.contains("needs a reference date"),
        "{:?}",
        report.issues
    );
}

#[test]
fn the_preview_and_the_supported_columns_show_date_columns() {
    let (model, _) = trained();
    let columns = retainwise_model::supported_columns(&model);
    let login = columns.iter().find(|c| c.feature == "last_login").unwrap();
    assert_eq!(login.kind, "date");
    assert!(login
        .meaning
        .unwrap()
        .contains("days before the file's reference date"));
    let file = "customer_id,plan,seats,signup_date,last_login\n\
                A,Pro,5,2023-03-01,2025-05-01T23:30:00-02:00\n\
                B,Basic,2,01/03/2023,\n";
    let p = retainwise_model::preview(&model, file.as_bytes(), 5).unwrap();
    assert!(p.ready);
    let kind = |f: &str| {
        p.mapping
            .features
            .iter()
            .find(|m| m.feature == f)
            .unwrap()
            .kind
    };
    assert_eq!(kind("signup_date"), "date");
    let cell = |row: usize, f: &str| {
        p.rows[row]
            .cells
            .iter()
            .find(|c| c.feature == f)
            .unwrap()
            .clone()
    };
    assert_eq!(cell(0, "last_login").parsed.unwrap(), "2025-05-02");
    let bad = cell(1, "signup_date");
    assert_eq!(bad.status, retainwise_model::preview::CellStatus::Invalid);
    assert!(bad
        .problem
        .unwrap()
        .starts_with("expected a date like 2024-05-31"));
    assert_eq!(
        cell(1, "last_login").status,
        retainwise_model::preview::CellStatus::Missing
    );
}

/// One typo far in the future (a fresh-user trial's 2099-01-01) must not become the file's
/// reference date: it would shift every customer's day counts by decades and score the whole
/// file wrong without one bad-looking row. Training and scoring both keep the latest date that
/// is not after today; the typo is still read, as a date after the reference.
#[test]
fn a_date_after_today_does_not_become_the_reference_date() {
    let clean = churn_csv(1000, true);
    // C00001's last login becomes 2099-01-01.
    let mut lines: Vec<String> = clean.lines().map(str::to_owned).collect();
    let row = lines.iter().position(|l| l.starts_with("C00001,")).unwrap();
    let mut cells: Vec<String> = lines[row].split(',').map(str::to_owned).collect();
    cells[4] = "2099-01-01T00:00:00Z".to_owned();
    lines[row] = cells.join(",");
    let typo = lines.join("\n") + "\n";
    let (model, report) = train_csv(typo.as_bytes(), &params()).unwrap();
    assert_eq!(report.reference_date.as_deref(), Some(REFERENCE));
    assert_eq!(model.card().reference_date.as_deref(), Some(REFERENCE));

    let file = "customer_id,plan,seats,signup_date,last_login\n\
                A,Pro,5,2023-03-01,2025-05-01T10:00:00Z\n\
                B,Basic,2,2024-01-15,2099-01-01T00:00:00Z\n";
    let (own, _) = score(&model, file, None);
    assert_eq!(own.reference_date.as_deref(), Some("2025-05-01"));
    assert_eq!(own.rows_scored, 2);
}
