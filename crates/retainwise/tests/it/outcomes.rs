//! Outcomes and measured accuracy through the real server, worker and binary: the Telco file
//! split into a "January" file scored now and outcomes that arrive later (its Churn column),
//! measured against scikit-learn's figures on the same rows (`tests/fixtures/outcomes/`);
//! superseding, deletion and the validation report; the outcome window; retraining from
//! outcomes; `retainwise outcomes`.

use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{column, parse_csv, telco_csv, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

fn today() -> String {
    retainwise_model::dates::iso(retainwise_model::dates::today())
}

/// A January file, its outcomes file, and customer id → churned.
type January = (Vec<u8>, Vec<u8>, std::collections::HashMap<String, bool>);

/// The Telco file as a January file (no Churn column) and its outcomes (`customerID,Churn,date`
/// dated today), for the first `n` customers (all with `None`); also id → churned.
fn january(n: Option<usize>) -> Option<January> {
    let text = std::fs::read_to_string(telco_csv()?).unwrap();
    let (header, rows) = parse_csv(&text);
    let rows = &rows[..n.unwrap_or(rows.len()).min(rows.len())];
    let churn = column(&header, "Churn");
    let id = column(&header, "customerID");
    let mut scored = csv::Writer::from_writer(Vec::new());
    let drop = |r: &[String]| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(i, _)| *i != churn)
            .map(|(_, c)| c.clone())
            .collect()
    };
    scored.write_record(drop(&header)).unwrap();
    let mut outcomes = csv::Writer::from_writer(Vec::new());
    outcomes
        .write_record(["customerID", "Churn", "date"])
        .unwrap();
    let mut labels = std::collections::HashMap::new();
    let day = today();
    for r in rows {
        scored.write_record(drop(r)).unwrap();
        outcomes
            .write_record([r[id].as_str(), r[churn].as_str(), day.as_str()])
            .unwrap();
        labels.insert(r[id].clone(), r[churn] == "Yes");
    }
    Some((
        scored.into_inner().unwrap(),
        outcomes.into_inner().unwrap(),
        labels,
    ))
}

async fn post_outcomes_csv(t: &TestApp, bytes: Vec<u8>, mapping: Option<&str>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("outcomes.csv"),
    );
    if let Some(m) = mapping {
        form = form.text("mapping", m.to_owned());
    }
    let r = t
        .client
        .post(format!("{}/api/outcomes", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post_json(t: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = t
        .client
        .post(format!("{}{path}", t.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get_json(t: &TestApp, path: &str) -> (u16, Value) {
    let r = t.get(path).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

fn close(a: &Value, b: &Value, tol: f64, what: &str) {
    let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!(
        (a - b).abs() <= tol,
        "{what}: measured {a:.15} vs scikit-learn {b:.15}"
    );
}

#[tokio::test]
async fn telco_january_measured_auc_equals_scikit_learn() {
    let Some((scored, outcomes, labels)) = january(None) else {
        return;
    };
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/outcomes/telco_january.json")).unwrap();
    let t = TestApp::spawn().await;
    let id = t.upload_ok("january.csv", scored).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);

    // The scores are the ones scikit-learn's figures were computed on.
    let (header, rows) = parse_csv(&t.results(&id).await);
    let (cid, prob) = (
        column(&header, "customer_id"),
        column(&header, "churn_probability"),
    );
    let mut digest = Sha256::new();
    for r in &rows {
        digest.update(format!(
            "{},{},{}\n",
            r[cid],
            r[prob],
            u8::from(labels[&r[cid]])
        ));
    }
    let digest: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest, fixture["digest"],
        "the default model's scores changed: run tests/fixtures/outcomes/make_telco_fixture.py again"
    );

    // Scored now, outcome window open, no outcomes yet: nothing to measure.
    let (status, body) = get_json(&t, &format!("/api/predictions/{id}/performance")).await;
    assert_eq!(status, 200, "{body}");
    let p = &body["performance"];
    assert_eq!(p["status"], "waiting", "{p}");
    assert_eq!(p["matching"]["pending"], 7043);
    assert_eq!(p["window_days"], 90);
    assert!(p["measured"].is_null());

    // The outcomes arrive.
    let (status, body) = post_outcomes_csv(&t, outcomes, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"]["new"], 7043);
    assert_eq!(
        body["report"]["balance"],
        "7043 rows read = 7043 recorded + 0 rejected"
    );
    assert_eq!(
        body["report"]["mapping"]["features"][0]["column"], "Churn",
        "{}",
        body["report"]["mapping"]
    );

    let (status, body) = get_json(&t, &format!("/api/predictions/{id}/performance")).await;
    assert_eq!(status, 200, "{body}");
    let p = &body["performance"];
    assert_eq!(p["status"], "measured");
    let m = &p["measured"];
    assert_eq!(m["n"], fixture["rows"]);
    assert_eq!(m["positives"], fixture["positives"]);
    assert_eq!(p["matching"]["with_outcome"], 7043);
    close(&m["roc_auc"]["value"], &fixture["roc_auc"], 1e-9, "ROC AUC");
    close(
        &m["pr_auc"]["value"],
        &fixture["average_precision"],
        1e-9,
        "average precision",
    );
    close(
        &m["log_loss"]["value"],
        &fixture["log_loss"],
        1e-9,
        "log loss",
    );
    close(&m["brier"]["value"], &fixture["brier"], 1e-9, "Brier score");
    let auc = &m["roc_auc"];
    eprintln!(
        "measured on the Telco January file: ROC AUC {auc}, PR AUC {}, log loss {}, Brier {}, ECE {}, top-decile lift {} and precision {}",
        m["pr_auc"], m["log_loss"], m["brier"], m["calibration_error"], m["top_decile_lift"], m["top_decile_precision"]
    );
    assert!(
        auc["lower"].as_f64() < auc["value"].as_f64()
            && auc["value"].as_f64() < auc["upper"].as_f64()
    );
    assert_eq!(m["reliability"].as_array().unwrap().len(), 10);
    assert!(
        m["top_decile_precision"]["value"].as_f64().unwrap() > 0.5,
        "{m}"
    );

    // The model's figures pool its predictions, beside its cross-validated ones.
    let model = t.prediction(&id).await["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = get_json(&t, &format!("/api/models/{model}/performance")).await;
    assert_eq!(status, 200, "{body}");
    let mp = &body["performance"];
    assert_eq!(mp["measured"]["n"], 7043);
    assert_eq!(mp["measured"]["roc_auc"], m["roc_auc"]);
    assert!(mp["cross_validated"]["roc_auc"]["mean"].as_f64().unwrap() > 0.8);
    assert_eq!(mp["predictions"].as_array().unwrap().len(), 1);

    // The model's page shows both.
    let page = t.get(&format!("/models/{model}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Cross-validated"), "{html}");
    assert!(
        html.contains(&format!("{:.3}", auc["value"].as_f64().unwrap())),
        "the live AUC is on the page"
    );
}

#[tokio::test]
async fn outcomes_are_validated_superseded_listed_and_deleted() {
    let t = TestApp::spawn().await;
    let day = today();

    // Bad rows are rejected naming row, column and raw value; good ones are recorded.
    let csv = "account_id;Exited;churn_date\nA;1;2026-01-05\nB;perhaps;2026-01-05\n;0;2026-01-05\nC;0;31/01/2026\n".to_owned();
    let (status, body) = post_outcomes_csv(&t, csv.into_bytes(), None).await;
    assert_eq!(status, 200, "{body}");
    let report = &body["report"];
    assert_eq!(report["balance"], "4 rows read = 1 recorded + 3 rejected");
    assert_eq!(report["delimiter"], ";");
    let rejected = report["rejected_rows"].as_array().unwrap();
    assert_eq!(rejected[0]["row"], 2);
    assert_eq!(rejected[0]["customer_id"], "B");
    assert_eq!(rejected[0]["column"], "Exited");
    assert_eq!(rejected[0]["value"], "perhaps");
    assert!(rejected[1]["reason"]
        .as_str()
        .unwrap()
        .contains("no customer id"));
    assert_eq!(rejected[2]["value"], "31/01/2026");

    // A file without a usable row: 422 with the report; without a date column: 400 naming it.
    let (status, body) = post_outcomes_csv(
        &t,
        b"customer_id,churned,date\nX,soon,2026-01-01\n".to_vec(),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["report"]["rejected_rows"][0]["value"], "soon");
    let (status, body) =
        post_outcomes_csv(&t, b"customer_id,churned\nX,yes\n".to_vec(), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("no date column"),
        "{body}"
    );
    // A column chosen by hand.
    let (status, body) = post_outcomes_csv(
        &t,
        b"customer_id,status,date\nD,yes,2026-01-01\n".to_vec(),
        Some(r#"{"churned": "status"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"]["new"], 1);

    // JSON rows: the same intake; a later date supersedes, an earlier one is kept out.
    let (status, body) = post_json(
        &t,
        "/api/outcomes",
        json!({"outcomes": [
            {"customer_id": "A", "churned": false, "date": "2026-02-01"},
            {"customer_id": "D", "churned": false, "date": "2025-12-01"},
            {"customer_id": "E", "churned": "yes", "date": day},
            {"customer_id": "F", "churned": true, "date": "2999-01-01"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["recorded"],
        json!({"new": 1, "superseded": 1, "older_than_stored": 1})
    );
    assert!(body["report"]["rejected_rows"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("after today"));
    let (status, body) = post_json(
        &t,
        "/api/outcomes",
        json!({"outcomes": [{"customer_id": "A", "churned": true, "when": "x"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("\"when\""));

    let (_, list) = get_json(&t, "/api/outcomes").await;
    assert_eq!(list["total"], 3);
    let a = list["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["customer_id"] == "A")
        .unwrap();
    assert_eq!(a["churned"], false);
    assert_eq!(a["date"], "2026-02-01");
    assert_eq!(a["source"], "json");

    let r = t
        .client
        .delete(format!("{}/api/outcomes/A", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = t
        .client
        .delete(format!("{}/api/outcomes/A", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, list) = get_json(&t, "/api/outcomes").await;
    assert_eq!(list["total"], 2);
    let (status, body) = get_json(&t, "/api/outcomes?limit=many").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_outcome_window_decides_who_counts() {
    window_story(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn outcomes_and_performance_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else {
        return;
    };
    window_story(&t).await;
}

/// Outcomes around a prediction scored 100 days ago, whose 90-day window has passed.
async fn window_story(t: &TestApp) {
    let id = t
        .upload_ok("few.csv", crate::helpers::synthetic_telco(20).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (header, rows) = parse_csv(&t.results(&id).await);
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r[column(&header, "customer_id")].clone())
        .collect();
    // Scored 100 days ago: the 90-day window ended 10 days ago.
    let now = retainwise::time::now_ms();
    sqlx::query("UPDATE predictions SET completed_at = $1 WHERE id = $2")
        .bind(now - 100 * 86_400_000)
        .bind(&id)
        .execute(t.app.db.pool())
        .await
        .unwrap();
    let days_ago = |d: i64| {
        retainwise_model::dates::iso(
            retainwise_model::dates::date_days_before(retainwise_model::dates::today(), d).unwrap(),
        )
    };
    let (status, body) = post_json(
        t,
        "/api/outcomes",
        json!({"outcomes": [
            {"customer_id": ids[0], "churned": true, "date": days_ago(95)},
            {"customer_id": ids[1], "churned": true, "date": days_ago(5)},
            {"customer_id": ids[2], "churned": false, "date": days_ago(50)},
            {"customer_id": ids[3], "churned": true, "date": days_ago(101)},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = get_json(t, &format!("/api/predictions/{id}/performance")).await;
    let p = &body["performance"];
    assert_eq!(p["window_passed"], true, "{p}");
    assert_eq!(
        p["matching"],
        json!({"customers": 20, "with_outcome": 3, "assumed_retained": 16, "pending": 0,
               "outcome_before_scoring": 1, "repeated_rows": 0})
    );
    // One churned within the window; the one who churned after it stayed through it.
    assert_eq!(p["measured"]["n"], 19);
    assert_eq!(p["measured"]["positives"], 1);

    // Another user's view and an unknown prediction: 404; a prediction still queued: 409.
    let (status, _) = get_json(
        t,
        "/api/predictions/00000000-0000-4000-8000-000000000000/performance",
    )
    .await;
    assert_eq!(status, 404);
    let queued = t
        .upload_ok("more.csv", crate::helpers::synthetic_telco(5).into_bytes())
        .await;
    let (status, body) = get_json(t, &format!("/api/predictions/{queued}/performance")).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn retraining_from_outcomes_trains_a_candidate_on_the_features_as_scored() {
    let Some((scored, outcomes, _)) = january(Some(600)) else {
        return;
    };
    let t = TestApp::spawn().await;
    // Nothing to learn from yet.
    let (status, body) = post_json(&t, "/api/models/retrain", json!({})).await;
    assert_eq!(status, 409, "{body}");

    let id = t.upload_ok("january.csv", scored).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (status, body) = post_outcomes_csv(&t, outcomes, None).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = post_json(
        &t,
        "/api/models/retrain",
        json!({"predictions": [id], "name": "january"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["rows"], 600);
    let training = body["training_id"].as_str().unwrap().to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (_, body) = get_json(&t, &format!("/api/models/trainings/{training}")).await;
    let tr = &body["training"];
    assert_eq!(tr["status"], "COMPLETED", "{tr}");
    assert_eq!(tr["label"], "outcome_churned");
    assert_eq!(tr["observation_date"], "scored_on");
    assert_eq!(tr["id_column"], "customerID");
    let model = tr["model_id"].as_str().unwrap();
    assert!(model.starts_with("january-"), "{model}");
    let (_, body) = get_json(&t, &format!("/api/models/{model}")).await;
    let card = &body["model"]["card"];
    assert_eq!(card["training_data"]["rows"], 600, "{card}");
    let features: Vec<&str> = card["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(features.contains(&"tenure"), "{features:?}");
    assert!(!features.contains(&"scored_on"), "{features:?}");
    assert!(
        card["cross_validation"]["roc_auc"]["mean"]
            .as_f64()
            .unwrap()
            > 0.7,
        "{card}"
    );

    // An unknown prediction is refused by name.
    let (status, body) = post_json(
        &t,
        "/api/models/retrain",
        json!({"predictions": ["not-a-prediction"]}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn the_cli_adds_lists_and_deletes_outcomes() {
    let t = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outcomes.csv");
    std::fs::write(
        &file,
        "customer_id,churned,date\nA,yes,2026-01-02\nB,maybe,2026-01-02\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("RETAINWISE_DATABASE_URL", &t.app.config.database_url)
            .env("RETAINWISE_DATA_DIR", t.dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["outcomes", "add", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 rows read = 1 recorded + 1 rejected; 1 new"),
        "{stdout}"
    );
    assert!(
        stderr.contains("row 2 (customer B), column churned, value \"maybe\""),
        "{stderr}"
    );
    let (_, list) = get_json(&t, "/api/outcomes").await;
    assert_eq!(list["total"], 1);

    let out = run(&["outcomes", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("A  churned  2026-01-02"));
    let out = run(&["outcomes", "delete", "A"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["outcomes", "delete", "A"]);
    assert!(!out.status.success());
    let (_, list) = get_json(&t, "/api/outcomes").await;
    assert_eq!(list["total"], 0);
}

/// The first 600 Telco rows with their Churn labels permuted: a model that learns noise.
fn noise_training_file() -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(telco_csv()?).unwrap();
    let (header, rows) = parse_csv(&text);
    let rows = &rows[..600];
    let churn = column(&header, "Churn");
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&header).unwrap();
    for (i, r) in rows.iter().enumerate() {
        let mut r = r.clone();
        // 7 and 600 are coprime: a permutation of the labels.
        r[churn] = rows[(i * 7 + 3) % 600][churn].clone();
        out.write_record(&r).unwrap();
    }
    Some(out.into_inner().unwrap())
}

#[tokio::test]
async fn a_worse_challenger_is_shown_worse_on_outcomes_and_can_be_promoted() {
    let (Some((scored, outcomes, _)), Some(noise)) = (january(None), noise_training_file()) else {
        return;
    };
    let t = TestApp::spawn().await;
    let champion = t.app.model.id().to_owned();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(noise).file_name("noise.csv"),
    );
    let r = t
        .client
        .post(format!(
            "{}/api/models?label=Churn&id_column=customerID&name=noise",
            t.base
        ))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let training = r.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (_, body) = get_json(&t, &format!("/api/models/trainings/{training}")).await;
    let noise_model = body["training"]["model_id"].as_str().unwrap().to_owned();

    // The champion cannot be its own challenger; the noise model can.
    let (status, _) = post_json(&t, &format!("/api/models/{champion}/challenger"), json!({})).await;
    assert_eq!(status, 409);
    let (status, body) = post_json(
        &t,
        &format!("/api/models/{noise_model}/challenger"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // A prediction is scored by both in one job; the customer sees the champion's scores.
    let id = t.upload_ok("january.csv", scored).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    assert_eq!(t.prediction(&id).await["model_id"], champion.as_str());
    let (status, body) = post_outcomes_csv(&t, outcomes, None).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = get_json(&t, &format!("/api/predictions/{id}/comparison")).await;
    assert_eq!(status, 200, "{body}");
    let c = &body["comparison"];
    assert_eq!(c["common"], 7043);
    assert_eq!(c["challenger"]["model_id"], noise_model.as_str());
    let champion_auc = c["champion"]["measured"]["roc_auc"]["value"]
        .as_f64()
        .unwrap();
    let challenger_auc = c["challenger"]["measured"]["roc_auc"]["value"]
        .as_f64()
        .unwrap();
    assert!(challenger_auc < champion_auc, "{c}");
    let d = &c["roc_auc_difference"]["difference"];
    assert!(
        d["upper"].as_f64().unwrap() < 0.0,
        "the interval excludes zero: {d}"
    );
    assert!(c["verdict"].as_str().unwrap().contains("worse"), "{c}");
    eprintln!(
        "champion and challenger on the Telco January file: {}",
        c["verdict"]
    );

    // What a 50/50 split by customer id would have measured: each model on its half, so a
    // wider interval for the same outcomes.
    let (status, body) = get_json(
        &t,
        &format!("/api/predictions/{id}/comparison?design=split"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let s = &body["comparison"];
    assert_eq!(s["design"], "split");
    assert_eq!(s["common"], 7043);
    let width = |d: &Value| d["upper"].as_f64().unwrap() - d["lower"].as_f64().unwrap();
    assert!(
        width(&s["roc_auc_difference"]["difference"]) > width(d),
        "{s}"
    );

    // Promotion makes the challenger active (a decision the person takes, here against the
    // figures, to show it works) and ends the challenge.
    let (status, body) =
        post_json(&t, &format!("/api/models/{noise_model}/promote"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = get_json(&t, "/api/models").await;
    assert_eq!(list["active_model_id"], noise_model.as_str());
    let (status, _) = post_json(&t, &format!("/api/models/{noise_model}/promote"), json!({})).await;
    assert_eq!(status, 409);
    let r = t
        .client
        .delete(format!("{}/api/models/challenger", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// The model's page in headless Chromium: cross-validated and live accuracy side by side, the
/// live reliability table and the prediction's row; screenshots at 1440 and 360 px.
#[tokio::test]
async fn browser_model_page_shows_trained_and_live_accuracy() {
    let Some((scored, outcomes, _)) = january(None) else {
        return;
    };
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = crate::web::browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn().await;
    let id = t.upload_ok("january.csv", scored).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let model = t.prediction(&id).await["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Before outcomes: the page says what it waits for.
    c.goto(&format!("{}/models/{model}", t.base)).await.unwrap();
    let waiting = crate::web::text_of(&c, "main").await;
    assert!(waiting.contains("No measured accuracy yet"), "{waiting}");

    let (status, body) = post_outcomes_csv(&t, outcomes, None).await;
    assert_eq!(status, 200, "{body}");
    let (_, perf) = get_json(&t, &format!("/api/predictions/{id}/performance")).await;
    let auc = perf["performance"]["measured"]["roc_auc"]["value"]
        .as_f64()
        .unwrap();
    c.goto(&format!("{}/models/{model}", t.base)).await.unwrap();
    let table = crate::web::text_of(&c, "#accuracy").await;
    assert!(table.contains("Cross-validated"), "{table}");
    assert!(table.contains(&format!("{auc:.3}")), "{table}");
    let reliability = crate::web::text_of(&c, "#reliability").await;
    assert!(reliability.contains("Observed churn"), "{reliability}");
    let rows = crate::web::text_of(&c, "#prediction-accuracy").await;
    assert!(rows.contains("7,043") || rows.contains("7043"), "{rows}");
    crate::web::screenshots(&c, "model-accuracy").await;
    c.close().await.unwrap();
}
