//! Models as data: train through the queue, list, activate, score with the activated model;
//! each user sees only the operator's models and their own; the CLI registers and activates.

use std::time::Duration;

use retainwise::auth::AuthConfig;
use serde_json::Value;

use crate::helpers::*;

/// `n` labelled customers of a subscription business (not the Telco schema), deterministic:
/// short tenure, monthly plans, many tickets and low usage make churn likelier.
pub(crate) fn subscription_history(n: usize) -> String {
    let mut out = String::from(
        "account_id,months_active,monthly_fee,plan,support_tickets,usage_score,churned\n",
    );
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |k: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % k
    };
    for i in 0..n {
        let months = 1 + next(60);
        let fee = 10 + next(190);
        let monthly = next(2) == 0;
        let tickets = next(8);
        let usage = next(101);
        let mut risk = 0.0f64;
        risk += if months < 6 { 1.2 } else { -0.4 };
        risk += if monthly { 0.8 } else { -0.8 };
        risk += tickets as f64 * 0.25 - 0.8;
        risk += (50.0 - usage as f64) / 30.0;
        let churned = (next(1000) as f64 / 1000.0) < 1.0 / (1.0 + (-risk).exp());
        out.push_str(&format!(
            "A{i:05},{months},{fee},{},{tickets},{usage},{}\n",
            if monthly { "monthly" } else { "annual" },
            if churned { "Yes" } else { "No" },
        ));
    }
    out
}

async fn post_training(
    t: &TestApp,
    key: Option<&str>,
    query: &str,
    csv: String,
) -> reqwest::Response {
    post_training_named(t, key, query, csv, "acme-history.csv").await
}

async fn post_training_named(
    t: &TestApp,
    key: Option<&str>,
    query: &str,
    csv: String,
    file_name: &str,
) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(csv.into_bytes()).file_name(file_name.to_owned());
    let form = reqwest::multipart::Form::new()
        .text("id_column", "account_id")
        .part("file", part);
    let mut request = t
        .client
        .post(format!("{}/api/models{query}", t.base))
        .multipart(form);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("training request")
}

async fn get_as(t: &TestApp, key: Option<&str>, path: &str) -> (u16, Value) {
    send_as(t, reqwest::Method::GET, key, path).await
}

async fn post_as(t: &TestApp, key: Option<&str>, path: &str) -> (u16, Value) {
    send_as(t, reqwest::Method::POST, key, path).await
}

/// A bodiless request as the holder of API key `key` (none: no credentials); status and JSON.
async fn send_as(
    t: &TestApp,
    method: reqwest::Method,
    key: Option<&str>,
    path: &str,
) -> (u16, Value) {
    let mut request = t.client.request(method, format!("{}{path}", t.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_model_trained_through_the_queue_scores_the_next_uploads_once_activated() {
    train_activate_score(&TestApp::spawn().await).await;
}

/// A model named after its file keeps the file's whole stem: `q_unclosed_mid.csv` once gave `q`,
/// which named nothing a user could recognise.
#[tokio::test]
async fn a_default_model_name_is_the_whole_sanitised_file_stem() {
    for (file, name) in [
        ("q_unclosed_mid.csv", "q-unclosed-mid"),
        ("Clients Été 2026.CSV", "clients-ete-2026"),
        ("%%%.csv", "churn"),
    ] {
        // One app each: a user trains one model at a time.
        let t = TestApp::spawn().await;
        let response =
            post_training_named(&t, None, "?label=churned", subscription_history(60), file).await;
        assert_eq!(response.status(), 202, "{file}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["name"], name, "{file}");
    }
}

#[tokio::test]
async fn models_as_data_on_postgres_and_s3() {
    if let Some(t) = TestApp::spawn_postgres_s3().await {
        train_activate_score(&t).await;
    }
}

/// The story: train through the queue, list, activate, score, switch back.
async fn train_activate_score(t: &TestApp) {
    let builtin = t.app.model.id().to_owned();

    let response = post_training(t, None, "?label=churned", subscription_history(600)).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    let training_id = body["training_id"].as_str().unwrap().to_owned();
    assert_eq!(
        body["name"], "acme-history",
        "the whole stem of acme-history.csv"
    );
    assert_eq!(body["id_column"], "account_id");

    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (status, body) = get_as(t, None, &format!("/api/models/trainings/{training_id}")).await;
    assert_eq!(status, 200);
    let training = &body["training"];
    assert_eq!(training["status"], "COMPLETED", "{training}");
    let model_id = training["model_id"].as_str().unwrap().to_owned();
    assert!(model_id.starts_with("acme-history-gbdt-"), "{model_id}");

    // Listed beside the built-in model, which stays active until another is activated.
    let (_, list) = get_as(t, None, "/api/models").await;
    assert_eq!(list["active_model_id"], builtin.as_str());
    let models = list["models"].as_array().unwrap();
    let ours = models
        .iter()
        .find(|m| m["id"] == model_id.as_str())
        .unwrap();
    assert_eq!(ours["owner"], "you");
    assert_eq!(ours["active"], false);
    assert_eq!(ours["label"], "churned");
    assert!(ours["roc_auc"].as_f64().unwrap() > 0.6, "{ours}");
    assert!(models
        .iter()
        .any(|m| m["id"] == builtin.as_str() && m["active"] == true));

    // The card is there in full.
    let (status, one) = get_as(t, None, &format!("/api/models/{model_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["model"]["card"]["id_column"], "account_id");

    let (status, body) = post_as(t, None, &format!("/api/models/{model_id}/activate")).await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = get_as(t, None, "/api/models").await;
    assert_eq!(list["active_model_id"], model_id.as_str());

    // New uploads are scored by it, and the prediction records it.
    let scored = t
        .upload_ok("accounts.csv", subscription_history(50).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let p = t.prediction(&scored).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(p["model_id"], model_id.as_str());
    let (header, rows) = parse_csv(&t.results(&scored).await);
    let version = column(&header, "model_version");
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r[version] == model_id));
    assert_eq!(rows[0][column(&header, "customer_id")], "A00000");

    // Switching back to the built-in model is an activation like any other.
    let (status, _) = post_as(t, None, &format!("/api/models/{builtin}/activate")).await;
    assert_eq!(status, 200);
    let telco = t
        .upload_ok("telco.csv", synthetic_telco(20).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    assert_eq!(t.prediction(&telco).await["model_id"], builtin.as_str());
}

#[tokio::test]
async fn a_training_on_a_bad_file_fails_with_what_to_fix() {
    let t = TestApp::spawn().await;
    // The label column is not in the file: FAILED, naming the columns it has.
    let response = post_training(&t, None, "?label=Exited", subscription_history(100)).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Failed);
    let (_, body) = get_as(&t, None, &format!("/api/models/trainings/{id}")).await;
    let training = &body["training"];
    assert_eq!(training["status"], "FAILED");
    let error = training["error_message"].as_str().unwrap();
    assert!(
        error.contains("\"Exited\"") && error.contains("churned"),
        "{error}"
    );

    // Too few rows: refused with the counts.
    let response = post_training(&t, None, "?label=churned", subscription_history(20)).await;
    let id = response.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Failed);
    let (_, body) = get_as(&t, None, &format!("/api/models/trainings/{id}")).await;
    let error = body["training"]["error_message"].as_str().unwrap();
    assert!(error.contains("too few rows"), "{error}");

    // Unknown or malformed ids: 404 / 400, never a 500.
    assert_eq!(
        get_as(&t, None, "/api/models/nope-gbdt-v1-00000000")
            .await
            .0,
        404
    );
    assert_eq!(get_as(&t, None, "/api/models/..%2Fetc").await.0, 404);
    assert_eq!(
        post_as(&t, None, "/api/models/nope-gbdt-v1-00000000/activate")
            .await
            .0,
        404
    );
    assert_eq!(get_as(&t, None, "/api/models/trainings/123").await.0, 400);
    // A huge setting is refused, not silently dropped.
    let form = reqwest::multipart::Form::new()
        .text("label", "churned")
        .text("name", "x".repeat(100_000))
        .part(
            "file",
            reqwest::multipart::Part::bytes(subscription_history(60).into_bytes())
                .file_name("h.csv"),
        );
    let response = t
        .client
        .post(format!("{}/api/models", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("name") && text.contains("is longer than 1024 bytes"),
        "{text}"
    );
    // The same setting twice with different values is refused before anything is stored.
    let response = post_training(&t, None, "?id_column=other", subscription_history(60)).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn users_see_and_activate_only_their_own_models() {
    let t = TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: "a-test-secret-that-is-at-least-32-bytes-long"
                .to_owned()
                .into(),
            issuer: None,
            audience: None,
        }
    })
    .await;
    let alice = t
        .app
        .db
        .create_api_key(&"user_alice".parse().unwrap(), "test")
        .await
        .unwrap()
        .secret;
    let bob = t
        .app
        .db
        .create_api_key(&"user_bob".parse().unwrap(), "test")
        .await
        .unwrap()
        .secret;
    let response = post_training(
        &t,
        Some(&alice),
        "?label=churned",
        subscription_history(300),
    )
    .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (_, body) = get_as(&t, Some(&alice), &format!("/api/models/trainings/{id}")).await;
    let model_id = body["training"]["model_id"].as_str().unwrap().to_owned();

    // Bob sees neither the training nor the model, and cannot activate it.
    assert_eq!(
        get_as(&t, Some(&bob), &format!("/api/models/trainings/{id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        get_as(&t, Some(&bob), &format!("/api/models/{model_id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        post_as(&t, Some(&bob), &format!("/api/models/{model_id}/activate"))
            .await
            .0,
        404
    );
    let (_, list) = get_as(&t, Some(&bob), "/api/models").await;
    assert!(list["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["id"] != model_id.as_str()));
    assert!(list["trainings"].as_array().unwrap().is_empty());

    // Alice's activation is hers alone.
    assert_eq!(
        post_as(
            &t,
            Some(&alice),
            &format!("/api/models/{model_id}/activate")
        )
        .await
        .0,
        200
    );
    let (_, list) = get_as(&t, Some(&bob), "/api/models").await;
    assert_eq!(list["active_model_id"], t.app.model.id());
    // Without credentials: 401.
    assert_eq!(get_as(&t, None, "/api/models").await.0, 401);
}

/// Two tenants who train the same file on the same day get two models: ids hash the model's
/// content, which carries an opaque tag of its owner, so neither sees the other's model (nor
/// its creation time) as a "shared" one of theirs.
#[tokio::test]
async fn two_tenants_training_the_same_file_get_their_own_models() {
    let t = TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: "a-test-secret-that-is-at-least-32-bytes-long"
                .to_owned()
                .into(),
            issuer: None,
            audience: None,
        }
    })
    .await;
    let mut keys = Vec::new();
    for user in ["user_alice", "user_bob"] {
        keys.push(
            t.app
                .db
                .create_api_key(&user.parse().unwrap(), "test")
                .await
                .unwrap()
                .secret,
        );
    }
    let mut models = Vec::new();
    for key in &keys {
        let response =
            post_training(&t, Some(key), "?label=churned", subscription_history(300)).await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["training_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
        let (_, body) = get_as(&t, Some(key), &format!("/api/models/trainings/{id}")).await;
        models.push(body["training"]["model_id"].as_str().unwrap().to_owned());
    }
    assert_ne!(models[0], models[1], "the same file, two owners: two ids");
    for (key, own) in keys.iter().zip(&models) {
        let (_, list) = get_as(&t, Some(key), "/api/models").await;
        let listed = list["models"].as_array().unwrap();
        assert!(
            listed.iter().all(|m| m["owner"] != "shared"),
            "no model of another tenant shows as shared: {list}"
        );
        let mine: Vec<&Value> = listed.iter().filter(|m| m["id"] == own.as_str()).collect();
        assert_eq!(mine.len(), 1, "{list}");
        assert_eq!(mine[0]["owner"], "you");
    }
}

#[tokio::test]
async fn the_cli_registers_lists_and_activates_models() {
    let bin = env!("CARGO_BIN_EXE_retainwise");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .env("RETAINWISE_DATA_DIR", &data)
            .env_remove("RETAINWISE_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("RETAINWISE_STORAGE_URL")
            .env_remove("RETAINWISE_QUEUE_URL")
            .env_remove("RETAINWISE_MODEL")
            .current_dir(dir.path())
            .output()
            .expect("run retainwise");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let history = dir.path().join("acme-history.csv");
    std::fs::write(&history, subscription_history(400)).unwrap();
    let artifact = dir.path().join("acme.json");
    let (ok, _, err) = run(&[
        "train",
        history.to_str().unwrap(),
        "--label",
        "churned",
        "--id",
        "account_id",
        "-o",
        artifact.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    // Training shows its progress: stderr is a pipe here, so a line at every quarter of the
    // search's fits, ending at all of them.
    let search: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("training: cross-validated search"))
        .collect();
    assert!(search.len() >= 5, "start + four quarters expected:\n{err}");
    let total = search[0]
        .rsplit(' ')
        .nth(1)
        .expect("the number of fits")
        .to_owned();
    assert!(
        search
            .last()
            .unwrap()
            .contains(&format!("{total} of {total} fits done (100%)")),
        "{err}"
    );

    // Operations commands refuse to create a database in the wrong folder.
    let (ok, _, err) = run(&["model", "list"]);
    assert!(!ok && err.contains("no database"), "{err}");
    // A first start creates it (the API opens the database, then the test stops it).
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("retainwise.db").display());
    let db = retainwise::db::Db::connect(&url).await.unwrap();
    drop(db);

    let (ok, out, err) = run(&["model", "add", artifact.to_str().unwrap()]);
    assert!(ok, "{err}");
    let id = out
        .split_whitespace()
        .nth(1)
        .expect("registered ID")
        .trim_end_matches(';')
        .to_owned();
    assert!(id.starts_with("acme-history-gbdt-"), "{out}");
    let (ok, out, err) = run(&["model", "activate", &id]);
    assert!(ok, "{err}");
    assert!(out.contains(&id));
    let (ok, out, _) = run(&["model", "list"]);
    assert!(ok);
    let starred: Vec<&str> = out.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(starred.len(), 1, "{out}");
    assert!(starred[0].contains(&id), "{out}");
    let (ok, out, _) = run(&["model", "show", &id]);
    assert!(ok);
    assert!(out.contains("\"label\": \"churned\""), "{out}");
    let (ok, _, err) = run(&["model", "activate", "nope-gbdt-v1-00000000"]);
    assert!(!ok && err.contains("not registered"), "{err}");

    // A server started on that folder scores with the activated model.
    let t = TestApp::spawn_with(|c| {
        c.database_url = url.clone();
        c.storage = retainwise::config::StorageLocation::Local(data.join("objects"));
    })
    .await;
    let p = t
        .upload_ok("accounts.csv", subscription_history(10).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let done = t.wait_finished(&p, Duration::from_secs(5)).await;
    assert_eq!(done["model_id"], id.as_str());
}

#[tokio::test]
async fn a_subscription_file_is_scored_by_the_rule_based_baseline_until_a_model_fits_it() {
    let t = TestApp::spawn().await;
    let response = t.get("/api/csv/sample-csv/saas").await;
    assert_eq!(response.status(), 200);
    let sample = response.text().await.unwrap();
    assert!(sample.starts_with(
        "user_id,months_subscribed,mrr,total_revenue,plan_type,seats_purchased,seats_used"
    ));
    let (status, columns) = get_as(&t, None, "/api/csv/supported-columns/saas").await;
    assert_eq!(status, 200);
    let baseline = columns["model_id"].as_str().unwrap().to_owned();
    assert!(baseline.starts_with("saas-baseline-rules-v"), "{baseline}");
    assert!(columns["baseline_rules"][0]
        .as_str()
        .unwrap()
        .contains("not trained"));

    // The preview says which model will read it, and that it is ready.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(sample.clone().into_bytes()).file_name("saas.csv"),
    );
    let preview: Value = t
        .client
        .post(format!("{}/api/csv/preview-mapping", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["model_id"], baseline.as_str(), "{preview}");
    assert_eq!(preview["preview"]["ready"], true, "{preview}");

    // Queued with the active (Telco) model, scored by the baseline, and the prediction says so.
    let id = t.upload_ok("saas.csv", sample.into_bytes()).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let p = t.prediction(&id).await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    assert_eq!(p["model_id"], baseline.as_str());
    let (header, rows) = parse_csv(&t.results(&id).await);
    assert_eq!(rows.len(), 10);
    let at = |r: &Vec<String>, c: &str| r[column(&header, c)].clone();
    assert!(rows.iter().all(|r| at(r, "model_version") == baseline));
    // U-00017: 2 months, monthly, usage 12, 6 tickets, inactive 41 days → high risk, and the
    // drivers are the rules that fired.
    let first = &rows[0];
    assert_eq!(at(first, "customer_id"), "U-00017");
    assert_eq!(at(first, "risk_level"), "high");
    let drivers: Value = serde_json::from_str(&at(first, "risk_factors")).unwrap();
    assert_eq!(drivers[0]["feature"], "last_activity_days_ago", "{drivers}");
    // U-00075: five years, annual, heavy use, integrated → low risk.
    let loyal = rows
        .iter()
        .find(|r| at(r, "customer_id") == "U-00075")
        .unwrap();
    assert_eq!(at(loyal, "risk_level"), "low");

    // One column short of the template: still the baseline's file, scored with that input
    // read as missing and flagged (not refused naming the Telco model's columns).
    let short: String = sample_without_last_column();
    let id = t.upload_ok("short.csv", short.into_bytes()).await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    assert_eq!(t.prediction(&id).await["model_id"], baseline.as_str());
    let (header, rows) = parse_csv(&t.results(&id).await);
    let q = column(&header, "data_quality");
    assert!(rows
        .iter()
        .all(|r| r[q] == "has_integration: not in the file"));

    // A model trained on the user's own subscription history reads such files itself once
    // activated: the baseline steps aside.
    let response = post_training(&t, None, "?label=churned", subscription_history(400)).await;
    let training = response.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (_, body) = get_as(&t, None, &format!("/api/models/trainings/{training}")).await;
    let own = body["training"]["model_id"].as_str().unwrap().to_owned();
    assert_eq!(
        post_as(&t, None, &format!("/api/models/{own}/activate"))
            .await
            .0,
        200
    );
    let id = t
        .upload_ok("accounts.csv", subscription_history(30).into_bytes())
        .await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    assert_eq!(t.prediction(&id).await["model_id"], own.as_str());
}

/// The SaaS sample without its last column (`has_integration`).
fn sample_without_last_column() -> String {
    include_str!("../../assets/sample-saas.csv")
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_owned() + "\n")
        .collect()
}

/// A history file (several rows per customer) trained through the API with `group` and
/// `observation_date`: the training records both, the model card's folds keep each customer
/// together and its dates count from each row's own date, and a group column the file lacks
/// fails the training naming it.
#[tokio::test]
async fn a_history_file_trains_with_customer_grouped_folds_through_the_api() {
    use retainwise_model::histories::{generate, HistoryParams};
    let t = TestApp::spawn().await;
    let csv = generate(&HistoryParams {
        customers: 300,
        months: 6,
        seed: 4,
    });
    let post = |group: &'static str| {
        let csv = csv.clone();
        let t = &t;
        async move {
            let form = reqwest::multipart::Form::new()
                .text("label", "churned_next_month")
                .text("id_column", "customer_id")
                .text("group", group)
                .text("observation_date", "observation_date")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("history.csv"),
                );
            let r = t
                .client
                .post(format!("{}/api/models", t.base))
                .multipart(form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["group"], group);
            assert_eq!(body["observation_date"], "observation_date");
            body["training_id"].as_str().unwrap().to_owned()
        }
    };

    let id = post("customer_id").await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (_, body) = get_as(&t, None, &format!("/api/models/trainings/{id}")).await;
    let training = &body["training"];
    assert_eq!(training["status"], "COMPLETED", "{body}");
    assert_eq!(training["group"], "customer_id");
    assert_eq!(training["observation_date"], "observation_date");
    let model_id = training["model_id"].as_str().unwrap();
    let (_, model) = get_as(&t, None, &format!("/api/models/{model_id}")).await;
    let grouping = model
        .pointer("/model/card/cross_validation/grouping")
        .or_else(|| model.pointer("/card/cross_validation/grouping"))
        .unwrap_or_else(|| panic!("no grouping on the card: {model}"));
    assert_eq!(grouping["column"], "customer_id");
    // Each row's dates counted from its own observation date, which is not a feature.
    let card = model
        .pointer("/model/card")
        .or_else(|| model.pointer("/card"))
        .unwrap();
    assert_eq!(card["observation_date"], "observation_date", "{card}");
    assert!(card["features"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["name"] != "observation_date"));
    let folds = grouping["folds"].as_array().unwrap();
    let groups: u64 = folds.iter().map(|f| f["groups"].as_u64().unwrap()).sum();
    assert_eq!(groups, grouping["groups"].as_u64().unwrap());

    let id = post("account").await;
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Failed);
    let (_, body) = get_as(&t, None, &format!("/api/models/trainings/{id}")).await;
    let error = body["training"]["error_message"].as_str().unwrap();
    assert!(error.contains("group column \"account\""), "{error}");
}
