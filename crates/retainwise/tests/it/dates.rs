//! A model with date columns through the application: trained by the CLI (the card and
//! `model show` carry the reference date), scored by `retainwise predict` with and without
//! `--reference-date`, and by the worker with the upload's `reference_date` form field on
//! SQLite and Postgres (the migration's column).

use std::path::Path;

use serde_json::Value;

use crate::helpers::*;

/// `n` labelled subscription customers with a signup date and a last-login date-time, latest
/// login 2025-04-17 (row 0); churn follows the days since the last login. Deterministic.
fn dated_history(n: usize) -> String {
    let mut state: u64 = 0xDA7E_5EED;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let reference = retainwise_model::dates::parse_reference("2025-04-17").unwrap();
    let day = |before: i64| {
        retainwise_model::dates::iso(
            retainwise_model::dates::date_days_before(reference, before).unwrap(),
        )
    };
    let mut out = String::from("account_id,plan,signup_date,last_login,churned\n");
    for i in 0..n {
        let plan = if next() < 0.5 { "monthly" } else { "annual" };
        let age = 60 + (next() * 1000.0) as i64;
        let u = next();
        let inactive = if i == 0 { 0 } else { (u * u * 300.0) as i64 };
        let z = -2.0 + 4.0 * (inactive as f64 / 60.0).min(1.5);
        let churned = next() < 1.0 / (1.0 + (-z).exp());
        out.push_str(&format!(
            "A{i:05},{plan},{},{}T08:00:00Z,{}\n",
            day(age),
            day(inactive),
            if churned { "Yes" } else { "No" }
        ));
    }
    out
}

/// Customers to score: one gone quiet (last login 2024-06-21), one active (2025-04-26).
const TO_SCORE: &str = "account_id,plan,signup_date,last_login\n\
    QUIET,monthly,2022-01-10,2024-06-21T09:00:00Z\n\
    BUSY,annual,2022-01-10,2025-04-26T09:00:00Z\n";

/// Runs the real binary in `dir`; (success, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .args(args)
        .env("RETAINWISE_DATA_DIR", dir.join("data"))
        .env_remove("RETAINWISE_MODEL")
        .current_dir(dir)
        .output()
        .expect("run retainwise");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Trains the dated model with the CLI into `dir/dated.json`.
pub(crate) fn train(dir: &Path) -> std::path::PathBuf {
    let history = dir.join("dated-history.csv");
    std::fs::write(&history, dated_history(300)).unwrap();
    let artifact = dir.join("dated.json");
    let (ok, out, err) = run(
        dir,
        &[
            "train",
            history.to_str().unwrap(),
            "--label",
            "churned",
            "--id",
            "account_id",
            "-o",
            artifact.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("last_login (date: days before the reference date)")
            && out.contains("reference  2025-04-17"),
        "{out}"
    );
    artifact
}

/// The `value` of the QUIET customer's last-login factor, wherever it is listed.
fn last_login_value(results: &str) -> String {
    let (header, rows) = parse_csv(results);
    let quiet = rows
        .iter()
        .find(|r| r[column(&header, "customer_id")] == "QUIET")
        .expect("QUIET scored");
    let factors: Vec<Value> = ["risk_factors", "protective_factors"]
        .iter()
        .flat_map(|c| serde_json::from_str::<Vec<Value>>(&quiet[column(&header, c)]).unwrap())
        .collect();
    factors
        .iter()
        .find(|f| f["feature"] == "last_login")
        .unwrap_or_else(|| panic!("no last_login factor in {factors:?}"))["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_cli_trains_shows_and_scores_a_model_with_date_columns() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = train(dir.path());
    let model = artifact.to_str().unwrap();

    let (ok, shown, err) = run(dir.path(), &["model", "show", model]);
    assert!(ok, "{err}");
    let card: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(card["reference_date"], "2025-04-17");
    for name in ["signup_date", "last_login"] {
        let f = card["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap();
        assert_eq!(f["kind"], "date", "{f}");
        assert_eq!(f["meaning"], "days before the reference date", "{f}");
    }

    let input = dir.path().join("customers.csv");
    std::fs::write(&input, TO_SCORE).unwrap();
    let out = dir.path().join("scored.csv");
    let predict = |extra: &[&str]| {
        let mut args = vec![
            "predict",
            input.to_str().unwrap(),
            "--model",
            model,
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (ok, _, err) = run(dir.path(), &args);
        assert!(ok, "{err}");
        (err, std::fs::read_to_string(&out).unwrap())
    };
    // The file's own reference date: its latest date, BUSY's last login.
    let (err, scored) = predict(&[]);
    assert!(err.contains("reference date 2025-04-26"), "{err}");
    assert_eq!(
        last_login_value(&scored),
        "2024-06-21 (309 days before 2025-04-26)"
    );
    // From standard input the same: the model and the reference date are chosen as for a
    // file (and as the worker chooses them).
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .args(["predict", "-", "--model", model])
        .env("RETAINWISE_DATA_DIR", dir.path().join("data"))
        .env_remove("RETAINWISE_MODEL")
        .current_dir(dir.path())
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .expect("run retainwise");
    let piped_err = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{piped_err}");
    assert!(
        piped_err.contains("reference date 2025-04-26"),
        "{piped_err}"
    );
    assert_eq!(String::from_utf8_lossy(&piped.stdout), scored);
    // An explicit one: every day count moves with it.
    let (err, scored) = predict(&["--reference-date", "2025-05-06"]);
    assert!(err.contains("reference date 2025-05-06"), "{err}");
    assert_eq!(
        last_login_value(&scored),
        "2024-06-21 (319 days before 2025-05-06)"
    );
    let (ok, _, err) = run(
        dir.path(),
        &[
            "predict",
            input.to_str().unwrap(),
            "--model",
            model,
            "--reference-date",
            "06/05/2025",
        ],
    );
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");
}

/// Uploads [`TO_SCORE`] with a `reference_date` form field (after the file, which must work as
/// well as before it), scores it, and checks the day counts follow the given date.
async fn upload_with_reference_date(t: &TestApp) {
    let send = |reference: &'static str| async move {
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(TO_SCORE.as_bytes().to_vec())
                    .file_name("customers.csv"),
            )
            .text("reference_date", reference);
        t.client
            .post(format!("{}/api/csv", t.base))
            .multipart(form)
            .send()
            .await
            .unwrap()
    };
    let refused = send("06/05/2025").await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body.to_string().contains("reference_date") && body.to_string().contains("YYYY-MM-DD"),
        "{body}"
    );

    let response = send("2025-05-06").await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let id = response.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(
        last_login_value(&t.results(&id).await),
        "2024-06-21 (319 days before 2025-05-06)"
    );

    // Without the field: the file's latest date.
    let id = t
        .upload_ok("customers.csv", TO_SCORE.as_bytes().to_vec())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    assert_eq!(
        last_login_value(&t.results(&id).await),
        "2024-06-21 (309 days before 2025-04-26)"
    );
}

#[tokio::test]
async fn the_upload_api_passes_the_reference_date_to_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = train(dir.path());
    let t = TestApp::spawn_with(|c| c.model = Some(artifact.clone())).await;
    upload_with_reference_date(&t).await;
}

#[tokio::test]
async fn the_reference_date_column_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(t) = TestApp::spawn_postgres().await else {
        return;
    };
    // The registry on Postgres: register the dated model and activate it for everyone.
    let artifact = train(dir.path());
    let model =
        retainwise_model::Model::from_json_slice(&std::fs::read(&artifact).unwrap()).unwrap();
    let model_id = t
        .app
        .registry
        .register(&t.app.db, &t.app.storage, &model, None)
        .await
        .unwrap();
    t.app
        .db
        .activate_model(retainwise::db::EVERYONE, &model_id, None)
        .await
        .unwrap();
    upload_with_reference_date(&t).await;
}

/// `train --observation-date --folds`: a history's dates count from each row's own date, the
/// folds are as asked, and `predict` says where it counted from, with and without the column.
#[tokio::test]
async fn the_cli_trains_and_scores_a_history_with_per_row_observation_dates() {
    use retainwise_model::histories::{generate, HistoryParams};
    let dir = tempfile::tempdir().unwrap();
    let csv = generate(&HistoryParams {
        customers: 300,
        months: 6,
        seed: 4,
    });
    let history = dir.path().join("history.csv");
    std::fs::write(&history, &csv).unwrap();
    let artifact = dir.path().join("history.json");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            history.to_str().unwrap(),
            "--label",
            "churned_next_month",
            "--id",
            "customer_id",
            "--group",
            "customer_id",
            "-o",
            artifact.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(dir.path(), &args)
    };
    let (ok, out, err) = train(&["--observation-date", "observation_date", "--folds", "3"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("3-fold CV") && out.contains("each row's observation_date"),
        "{out}"
    );
    let (ok, _, err) = train(&["--observation-date", "as_of"]);
    assert!(!ok && err.contains("\"as_of\" is not in the file"), "{err}");
    for folds in ["1", "2", "11"] {
        let (ok, _, err) = train(&["--folds", folds]);
        assert!(!ok && err.contains("folds must be 3 to 10"), "{err}");
    }
    let (ok, _, err) = train(&[
        "--observation-date",
        "observation_date",
        "--reference-date",
        "2024-12-31",
    ]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");

    let scored = dir.path().join("scored.csv");
    let predict = |input: &Path| {
        run(
            dir.path(),
            &[
                "predict",
                input.to_str().unwrap(),
                "--model",
                artifact.to_str().unwrap(),
                "-o",
                scored.to_str().unwrap(),
            ],
        )
    };
    // A reference date for a file whose rows carry their own is refused, never ignored.
    let (ok, _, err) = run(
        dir.path(),
        &[
            "predict",
            history.to_str().unwrap(),
            "--model",
            artifact.to_str().unwrap(),
            "--reference-date",
            "2025-06-01",
            "-o",
            scored.to_str().unwrap(),
        ],
    );
    assert!(
        !ok && err.contains("\"observation_date\"") && err.contains("2025-06-01 would not be used"),
        "{err}"
    );
    let (ok, _, err) = predict(&history);
    assert!(ok, "{err}");
    assert!(
        err.contains("days before each row's observation_date")
            && !err
                .lines()
                .any(|l| l.contains("ignored columns") && l.contains("observation_date")),
        "{err}"
    );
    // Without the column: the file's reference date, said so.
    let without: String = csv
        .lines()
        .map(|l| {
            let (id, rest) = l.split_once(',').unwrap();
            format!("{id},{}\n", rest.split_once(',').unwrap().1)
        })
        .collect();
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, without).unwrap();
    let (ok, _, err) = predict(&plain);
    assert!(ok, "{err}");
    assert!(
        err.contains("the file has no such column")
            && err.contains("days before the reference date"),
        "{err}"
    );
}
