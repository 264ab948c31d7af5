//! Customers across runs: the Telco file split and perturbed into three monthly files scored
//! one after the other; each customer's runs through `GET /api/customers/{id}`, the changes
//! between two predictions through `GET /api/predictions/{id}/changes` checked against a
//! computation made here from the two results files, the `customers.risk_increased` event
//! received by a real receiver on loopback, and a retried run that replaces its rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use retainwise::auth::AuthConfig;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::*;

/// Signed in by API keys, webhooks to loopback allowed, results URLs under a public origin.
fn settings(c: &mut retainwise::config::Config) {
    c.http.public_origin = Some("http://retainwise.test".to_owned());
    c.auth = AuthConfig::Secret {
        secret: "history-tests-secret-of-at-least-32-bytes"
            .to_owned()
            .into(),
        issuer: None,
        audience: None,
    };
    c.webhook_allow_private = true;
}

async fn key(t: &TestApp, user: &str) -> String {
    t.app
        .db
        .create_api_key(&user.parse().unwrap(), "test")
        .await
        .unwrap()
        .secret
}

async fn get_as(t: &TestApp, who: &str, path: &str) -> reqwest::Response {
    t.client
        .get(format!("{}{path}", t.base))
        .bearer_auth(who)
        .send()
        .await
        .unwrap()
}

async fn json_ok(t: &TestApp, who: &str, path: &str) -> Value {
    let r = get_as(t, who, path).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The Telco file as (header, rows of cells), without its `Churn` column's effect on scoring
/// (it is an ignored column, kept as in a real export).
fn telco() -> Option<(String, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(telco_csv()?).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_owned();
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    Some((header, rows))
}

/// Rows `range` of the Telco file, each passed through `change(index, cells)` first.
fn month(
    header: &str,
    rows: &[Vec<String>],
    range: std::ops::Range<usize>,
    change: impl Fn(usize, &mut Vec<String>),
) -> Vec<u8> {
    let mut out = format!("{header}\n");
    for i in range {
        let mut cells = rows[i].clone();
        change(i, &mut cells);
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

/// One scored customer read back from a results file.
#[derive(Debug, Clone)]
struct Scored {
    ppm: i64,
    level: String,
    /// (feature, value, impact) of its risk then protective factors.
    drivers: Vec<(String, Value, f64)>,
}

/// A results CSV by customer id.
fn scored(text: &str) -> BTreeMap<String, Scored> {
    let (header, rows) = parse_csv(text);
    let (id, p, level) = (
        column(&header, "customer_id"),
        column(&header, "churn_probability"),
        column(&header, "risk_level"),
    );
    let (risk, protective) = (
        column(&header, "risk_factors"),
        column(&header, "protective_factors"),
    );
    rows.into_iter()
        .map(|r| {
            let mut drivers = Vec::new();
            for at in [risk, protective] {
                let list: Vec<Value> = serde_json::from_str(&r[at]).unwrap();
                for f in list {
                    drivers.push((
                        f["feature"].as_str().unwrap().to_owned(),
                        f["value"].clone(),
                        f["impact"].as_f64().unwrap(),
                    ));
                }
            }
            let ppm = (r[p].parse::<f64>().unwrap() * 1e6).round() as i64;
            (
                r[id].clone(),
                Scored {
                    ppm,
                    level: r[level].clone(),
                    drivers,
                },
            )
        })
        .collect()
}

fn rank(level: &str) -> i32 {
    match level {
        "high" => 2,
        "medium" => 1,
        "low" => 0,
        other => panic!("level {other}"),
    }
}

/// The driver whose effect changed most, computed here: over the columns either run lists,
/// an unlisted one counting 0, the largest absolute change (on the 0.1 grid), then the name.
fn most_changed(old: &Scored, new: &Scored) -> Option<(String, f64)> {
    let features: BTreeSet<&str> = old
        .drivers
        .iter()
        .chain(&new.drivers)
        .map(|d| d.0.as_str())
        .collect();
    let impact = |s: &Scored, f: &str| s.drivers.iter().find(|d| d.0 == f).map_or(0.0, |d| d.2);
    let mut best: Option<(String, f64)> = None;
    for f in features {
        let change = ((impact(new, f) - impact(old, f)) * 10.0).round() / 10.0;
        if best.as_ref().is_none_or(|b| change.abs() > b.1.abs()) {
            best = Some((f.to_owned(), change));
        }
    }
    best
}

/// What `/changes` must answer for `new` since `old`, computed from the results files.
struct Expected {
    in_both: usize,
    moved_up: Vec<String>,
    moved_down: usize,
    new: Vec<String>,
    disappeared: Vec<String>,
    largest: Vec<String>,
}

fn expected(old: &BTreeMap<String, Scored>, new: &BTreeMap<String, Scored>) -> Expected {
    let both: Vec<&String> = new.keys().filter(|k| old.contains_key(*k)).collect();
    let delta = |k: &String| new[k].ppm - old[k].ppm;
    let mut up: Vec<&String> = both
        .iter()
        .copied()
        .filter(|k| rank(&new[*k].level) > rank(&old[*k].level))
        .collect();
    up.sort_by(|a, b| delta(b).cmp(&delta(a)).then(a.cmp(b)));
    let moved_down = both
        .iter()
        .filter(|k| rank(&new[**k].level) < rank(&old[**k].level))
        .count();
    let mut largest = both.clone();
    largest.sort_by(|a, b| delta(b).abs().cmp(&delta(a).abs()).then(a.cmp(b)));
    let only = |a: &BTreeMap<String, Scored>, b: &BTreeMap<String, Scored>| {
        let mut v: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
        v.sort_by(|x, y| a[*y].ppm.cmp(&a[*x].ppm).then(x.cmp(y)));
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    Expected {
        in_both: both.len(),
        moved_up: up.into_iter().cloned().collect(),
        moved_down,
        new: only(new, old),
        disappeared: only(old, new),
        largest: largest.into_iter().cloned().collect(),
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks one `/changes` answer against [`expected`], lists of `limit`.
fn check_changes(
    got: &Value,
    old: &BTreeMap<String, Scored>,
    new: &BTreeMap<String, Scored>,
    limit: usize,
) {
    let e = expected(old, new);
    let c = &got["counts"];
    assert_eq!(c["customers"], new.len(), "{c}");
    assert_eq!(c["since_customers"], old.len(), "{c}");
    assert_eq!(c["in_both"], e.in_both, "{c}");
    assert_eq!(c["moved_up"], e.moved_up.len(), "{c}");
    assert_eq!(c["moved_down"], e.moved_down, "{c}");
    assert_eq!(c["new"], e.new.len(), "{c}");
    assert_eq!(c["disappeared"], e.disappeared.len(), "{c}");
    let first = |v: &[String]| v.iter().take(limit).cloned().collect::<Vec<_>>();
    assert_eq!(ids(&got["moved_up"]), first(&e.moved_up));
    assert_eq!(ids(&got["new"]), first(&e.new));
    assert_eq!(ids(&got["disappeared"]), first(&e.disappeared));
    assert_eq!(ids(&got["largest_changes"]), first(&e.largest));
    for m in got["largest_changes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(got["moved_up"].as_array().unwrap())
    {
        let id = m["customer_id"].as_str().unwrap();
        let (o, n) = (&old[id], &new[id]);
        assert_eq!(m["old_churn_probability"], o.ppm as f64 / 1e6, "{m}");
        assert_eq!(m["new_churn_probability"], n.ppm as f64 / 1e6, "{m}");
        assert_eq!(m["old_risk_level"], o.level.as_str());
        assert_eq!(m["new_risk_level"], n.level.as_str());
        let (feature, change) = most_changed(o, n).expect("Telco rows list drivers");
        assert_eq!(m["driver"]["feature"], feature.as_str(), "{m}");
        assert_eq!(m["driver"]["change"], change, "{m}");
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.hits.lock().unwrap().push(Hit {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body,
    });
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let router = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, receiver)
}

/// The Standard Webhooks signature, computed from the specification.
fn signed(secret: &str, hit: &Hit) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", hit.id, hit.timestamp, hit.body).as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    hit.signature.split(' ').any(|s| s == expected)
}

/// Uploads `bytes` as `who` and runs the worker until the queue is empty (the prediction and
/// its webhook deliveries); returns the prediction id.
async fn score(t: &TestApp, who: &str, name: &str, bytes: Vec<u8>) -> String {
    let r = t.upload_as(who, name, bytes).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let outcomes = TestApp::drain(&t.worker, 10).await;
    assert_eq!(
        outcomes[0],
        retainwise::worker::Outcome::Completed,
        "{outcomes:?}"
    );
    id
}

#[tokio::test]
async fn three_telco_months_give_each_customers_history_the_changes_and_risk_increased_events() {
    let Some((header, rows)) = telco() else {
        return;
    };
    let t = TestApp::spawn_with(settings).await;
    three_months(&t, &header, &rows).await;
}

#[tokio::test]
async fn on_postgres_three_telco_months_give_the_same_history_and_changes() {
    let Some((header, rows)) = telco() else {
        return;
    };
    if let Some(t) = TestApp::spawn_postgres_with(settings).await {
        three_months(&t, &header, &rows).await;
    }
}

/// The three months: January rows 0–2999 as exported; February rows 500–3499 with every
/// second customer of rows 1000–1999 moved to a month-to-month contract paid by electronic
/// check at one month's tenure (their risk rises); March rows 1000–3999 with every third customer of rows 1000–1999
/// on a two-year contract (their risk falls) and every second of rows 2000–2999 on a
/// month-to-month contract at two months' tenure (theirs rises).
async fn three_months(t: &TestApp, header: &str, rows: &[Vec<String>]) {
    let h: Vec<&str> = header.split(',').collect();
    let at = |name: &str| h.iter().position(|c| *c == name).unwrap();
    let (contract, payment, tenure) = (at("Contract"), at("PaymentMethod"), at("tenure"));
    let alice = key(t, "user_alice").await;
    let bob = key(t, "user_bob").await;
    let (base, receiver) = start_receiver().await;
    let r = t
        .client
        .post(format!("{}/api/webhooks", t.base))
        .bearer_auth(&alice)
        .json(&json!({"url": format!("{base}/crm"), "events": ["customers.risk_increased"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let jan = month(header, rows, 0..3000, |_, _| {});
    let feb = month(header, rows, 500..3500, |i, c| {
        if (1000..2000).contains(&i) && i % 2 == 0 {
            c[contract] = "Month-to-month".to_owned();
            c[payment] = "Electronic check".to_owned();
            c[tenure] = "1".to_owned();
        }
    });
    let mar = month(header, rows, 1000..4000, |i, c| {
        if (1000..2000).contains(&i) && i % 3 == 0 {
            c[contract] = "Two year".to_owned();
        }
        if (2000..3000).contains(&i) && i % 2 == 1 {
            c[contract] = "Month-to-month".to_owned();
            c[tenure] = "2".to_owned();
        }
    });
    let p1 = score(t, &alice, "january.csv", jan).await;
    let p2 = score(t, &alice, "february.csv", feb).await;
    let p3 = score(t, &alice, "march.csv", mar).await;
    let results = |id: String| {
        let alice = alice.clone();
        async move {
            let r = get_as(t, &alice, &format!("/api/predictions/{id}/results")).await;
            assert_eq!(r.status(), 200);
            scored(&r.text().await.unwrap())
        }
    };
    let (s1, s2, s3) = (
        results(p1.clone()).await,
        results(p2.clone()).await,
        results(p3.clone()).await,
    );
    assert_eq!((s1.len(), s2.len(), s3.len()), (3000, 3000, 3000));

    // A customer of rows 1000–1999 moved to month-to-month in February and, as row 1002 is a
    // multiple of 3 and of 2, to two years in March: three runs, each as its results say.
    let who = &rows[1002][0];
    let history = json_ok(t, &alice, &format!("/api/customers/{who}")).await;
    assert_eq!(history["customer_id"], who.as_str());
    assert_eq!(history["total"], 3);
    let runs = history["runs"].as_array().unwrap();
    let order: Vec<&str> = runs
        .iter()
        .map(|r| r["prediction_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [p1.as_str(), p2.as_str(), p3.as_str()],
        "oldest first"
    );
    for (run, s, file) in [
        (&runs[0], &s1, "january.csv"),
        (&runs[1], &s2, "february.csv"),
        (&runs[2], &s3, "march.csv"),
    ] {
        let c = &s[who];
        assert_eq!(run["churn_probability"], c.ppm as f64 / 1e6, "{run}");
        assert_eq!(run["risk_level"], c.level.as_str());
        assert_eq!(run["filename"], file);
        let drivers = run["drivers"].as_array().unwrap();
        assert_eq!(drivers.len(), c.drivers.len(), "{run}");
        for (d, (f, v, i)) in drivers.iter().zip(&c.drivers) {
            assert_eq!(
                (&d["feature"], &d["value"], &d["impact"]),
                (&json!(f), v, &json!(i))
            );
        }
        assert!(run["scored_at"].as_str().unwrap().ends_with('Z'), "{run}");
    }
    assert!(
        runs[1]["churn_probability"].as_f64() > runs[0]["churn_probability"].as_f64(),
        "a month-to-month contract raised the risk: {history}"
    );
    // The latest run only, on request; a January-only customer has one run.
    let last = json_ok(t, &alice, &format!("/api/customers/{who}?limit=1")).await;
    assert_eq!(last["total"], 3);
    assert_eq!(last["runs"][0]["prediction_id"], p3.as_str());
    let early = &rows[10][0];
    assert_eq!(
        json_ok(t, &alice, &format!("/api/customers/{early}")).await["total"],
        1
    );
    // Another user has no such customer; an unknown id and bad limits are refused plainly.
    assert_eq!(
        get_as(t, &bob, &format!("/api/customers/{who}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        get_as(t, &alice, "/api/customers/nobody").await.status(),
        404
    );
    for bad in ["?limit=0", "?limit=1001", "?limit=x"] {
        let r = get_as(t, &alice, &format!("/api/customers/{who}{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
    }

    // Changes: by default since the previous prediction, or since any other; every count and
    // list as computed here from the two results files.
    let c32 = json_ok(t, &alice, &format!("/api/predictions/{p3}/changes")).await;
    assert_eq!(c32["since_prediction_id"], p2.as_str());
    check_changes(&c32, &s2, &s3, 50);
    // Asked again, the comparison kept from the first answer is the same.
    assert_eq!(
        json_ok(t, &alice, &format!("/api/predictions/{p3}/changes")).await,
        c32
    );
    let c21 = json_ok(
        t,
        &alice,
        &format!("/api/predictions/{p2}/changes?limit=500"),
    )
    .await;
    assert_eq!(c21["since_prediction_id"], p1.as_str());
    check_changes(&c21, &s1, &s2, 500);
    let c31 = json_ok(
        t,
        &alice,
        &format!("/api/predictions/{p3}/changes?since={p1}&limit=7"),
    )
    .await;
    check_changes(&c31, &s1, &s3, 7);
    let e21 = expected(&s1, &s2);
    assert!(
        e21.moved_up.len() > 100,
        "the perturbation moves many up: {}",
        e21.moved_up.len()
    );
    assert_eq!((e21.new.len(), e21.disappeared.len()), (500, 500));
    // The first prediction has nothing earlier; another user's prediction is not found.
    let r = get_as(t, &alice, &format!("/api/predictions/{p1}/changes")).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("first"));
    assert_eq!(
        get_as(t, &bob, &format!("/api/predictions/{p3}/changes"))
            .await
            .status(),
        404
    );
    let r = get_as(
        t,
        &alice,
        &format!("/api/predictions/{p3}/changes?limit=501"),
    )
    .await;
    assert_eq!(r.status(), 400);

    // The event: one per prediction with customers moved up (February's and March's, none
    // for January), signed, its count exact and its list the first 100 in the same order.
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 2, "{hits:?}");
    let mut by_prediction = HashMap::new();
    for hit in &hits {
        assert!(signed(&secret, hit), "{hit:?}");
        let body: Value = serde_json::from_str(&hit.body).unwrap();
        assert_eq!(body["type"], "customers.risk_increased");
        by_prediction.insert(
            body["data"]["prediction_id"].as_str().unwrap().to_owned(),
            body["data"].clone(),
        );
    }
    for (id, since, old, new) in [(&p2, &p1, &s1, &s2), (&p3, &p2, &s2, &s3)] {
        let data = &by_prediction[id.as_str()];
        let e = expected(old, new);
        assert_eq!(data["since_prediction_id"], since.as_str());
        assert_eq!(data["count"], e.moved_up.len());
        let listed = ids(&data["customers"]);
        assert_eq!(
            listed,
            e.moved_up.iter().take(100).cloned().collect::<Vec<_>>()
        );
        assert_eq!(data["truncated"], e.moved_up.len() > 100);
        for c in data["customers"].as_array().unwrap() {
            let id = c["customer_id"].as_str().unwrap();
            assert_eq!(c["old_risk_level"], old[id].level.as_str());
            assert_eq!(c["new_risk_level"], new[id].level.as_str());
        }
    }
}

#[tokio::test]
async fn a_retried_run_replaces_its_history_and_files_without_ids_or_with_overlong_ids_are_not_remembered(
) {
    retried_and_unremembered(
        TestApp::spawn_with(|c| c.visibility_timeout = Duration::from_secs(1)).await,
    )
    .await;
}

#[tokio::test]
async fn on_postgres_a_retried_run_replaces_its_history_and_an_overlong_id_is_not_remembered() {
    if let Some(t) =
        TestApp::spawn_postgres_with(|c| c.visibility_timeout = Duration::from_secs(1)).await
    {
        retried_and_unremembered(t).await;
    }
}

async fn retried_and_unremembered(t: TestApp) {
    use retainwise::worker::{FailurePoint, FailurePoints, Worker, WorkerOptions};
    let points = FailurePoints::armable();
    let worker = Worker::new(
        t.app.clone(),
        WorkerOptions {
            failure_points: points.clone(),
            ..fast_worker_options()
        },
    );
    // The first attempt writes the history, then dies before recording COMPLETED.
    points.arm(FailurePoint::AfterRun, 1);
    let id = t.upload_ok("c.csv", synthetic_telco(40).into_bytes()).await;
    for _ in 0..4 {
        let w = worker.clone();
        let _ = tokio::spawn(async move { w.run_once(Duration::from_secs(3)).await }).await;
        if t.prediction(&id).await["status"] == "COMPLETED" {
            break;
        }
    }
    let p = t.prediction(&id).await;
    assert_eq!(
        (p["status"].as_str(), p["attempt"].as_i64()),
        (Some("COMPLETED"), Some(2))
    );
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM customer_history WHERE prediction_id = $1")
            .bind(&id)
            .fetch_one(t.app.db.pool())
            .await
            .unwrap();
    assert_eq!(rows, 40, "replaced, not added");
    let results = scored(&t.results(&id).await);
    let first = results.keys().next().unwrap();
    let h: Value = t
        .get(&format!("/api/customers/{first}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["total"], 1, "{h}");

    // The same customers again, one of them under an id too long to remember: scored, left
    // out of the history and counted, never a failed job.
    // 8,000 bytes that do not compress: past what a Postgres index can hold as well.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let long: String = (0..8000)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            alphabet[(state >> 33) as usize % alphabet.len()] as char
        })
        .collect();
    assert!(long.len() > retainwise::history::MAX_ID_BYTES);
    let again: String = synthetic_telco(40)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                format!("{long},{}\n", l.split_once(',').unwrap().1)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let second = t.upload_ok("again.csv", again.into_bytes()).await;
    TestApp::drain(&t.worker, 3).await;
    let p = t.prediction(&second).await;
    assert_eq!(
        (p["status"].as_str(), p["rows_processed"].as_i64()),
        (Some("COMPLETED"), Some(40))
    );
    let c: Value = t
        .get(&format!("/api/predictions/{second}/changes"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["since_prediction_id"], id.as_str(), "{c}");
    let counts = &c["counts"];
    assert_eq!(
        (
            &counts["customers"],
            &counts["in_both"],
            &counts["disappeared"],
            &counts["not_remembered"]
        ),
        (&json!(39), &json!(39), &json!(1), &json!(1)),
        "{c}"
    );

    // Without a customer-id column the rows are numbered: nothing to follow across files.
    let no_ids: String = synthetic_telco(5)
        .lines()
        .map(|l| l.split_once(',').unwrap().1.to_owned() + "\n")
        .collect();
    let other = t.upload_ok("no-ids.csv", no_ids.into_bytes()).await;
    TestApp::drain(&t.worker, 3).await;
    assert_eq!(t.prediction(&other).await["status"], "COMPLETED");
    let r = t.get(&format!("/api/predictions/{other}/changes")).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("no customer-id column"));
    assert_eq!(t.get("/api/customers/1").await.status(), 404);
}

/// Three small Telco months for the pages (rows 0–299; 100–399 with every second of rows
/// 200–299 on a month-to-month contract at one month's tenure; 200–499), scored for the holder
/// of `key`. Returns the prediction ids and the results by customer id.
async fn small_months(
    t: &TestApp,
    key: &str,
) -> Option<(Vec<String>, Vec<BTreeMap<String, Scored>>)> {
    let (header, rows) = telco()?;
    let h: Vec<&str> = header.split(',').collect();
    let at = |name: &str| h.iter().position(|c| *c == name).unwrap();
    let (contract, tenure) = (at("Contract"), at("tenure"));
    let files = [
        month(&header, &rows, 0..300, |_, _| {}),
        month(&header, &rows, 100..400, |i, c| {
            if (200..300).contains(&i) && i % 2 == 0 {
                c[contract] = "Month-to-month".to_owned();
                c[tenure] = "1".to_owned();
            }
        }),
        month(&header, &rows, 200..500, |_, _| {}),
    ];
    let mut ids = Vec::new();
    let mut results = Vec::new();
    for (i, bytes) in files.into_iter().enumerate() {
        let id = score(t, key, &format!("month-{}.csv", i + 1), bytes).await;
        let r = get_as(t, key, &format!("/api/predictions/{id}/results")).await;
        results.push(scored(&r.text().await.unwrap()));
        ids.push(id);
    }
    Some((ids, results))
}

/// The percentage a page shows for a probability in millionths (one decimal, rounded down).
fn shown(ppm: i64) -> String {
    format!("{:.1}%", (ppm / 1000) as f64 / 10.0)
}

#[tokio::test]
async fn the_customer_page_and_the_dashboard_panel_over_http() {
    let t = crate::web::signed_in_app().await;
    let alice = key(&t, "user_alice").await;
    let bob = key(&t, "user_bob").await;
    let Some((ids, results)) = small_months(&t, &alice).await else {
        return;
    };
    let cookie = crate::web::sign_in(&t, &alice).await;
    // Row 350 is in the second and third months only.
    let (header, rows) = telco().unwrap();
    drop(header);
    let who = &rows[350][0];
    let r = crate::web::get_with(&t, &cookie, &format!("/customers/{who}")).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("<polyline"), "a line for two runs");
    assert_eq!(page.matches("<circle class=\"point\"").count(), 2, "{page}");
    assert!(
        page.contains(&shown(results[2][who].ppm)),
        "the latest figure"
    );
    assert!(page.contains("month-2.csv") && page.contains("month-3.csv"));
    assert!(!page.contains("month-1.csv"));
    // Linked from the customers table of a prediction.
    let table = crate::web::get_with(
        &t,
        &cookie,
        &format!("/predictions/{}/customers?q={who}", ids[2]),
    )
    .await;
    let table = table.text().await.unwrap();
    assert!(
        table.contains(&format!("href=\"/customers/{who}\"")),
        "{table}"
    );
    // Another user sees no such customer.
    let bob_cookie = crate::web::sign_in(&t, &bob).await;
    let r = crate::web::get_with(&t, &bob_cookie, &format!("/customers/{who}")).await;
    assert_eq!(r.status(), 404);

    // The dashboard's panel: the counts the API gives, and none for the first prediction.
    let api = json_ok(&t, &alice, &format!("/api/predictions/{}/changes", ids[1])).await;
    let dash = crate::web::get_with(&t, &cookie, &format!("/predictions/{}", ids[1])).await;
    let dash = dash.text().await.unwrap();
    let figure = |id: &str| {
        let start = dash
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("#{id} in {dash}"));
        let rest = &dash[start..];
        let open = rest.find('>').unwrap() + 1;
        rest[open..open + rest[open..].find('<').unwrap()].to_owned()
    };
    assert_eq!(figure("moved-up"), api["counts"]["moved_up"].to_string());
    assert_eq!(figure("new-customers"), "100");
    assert_eq!(figure("disappeared"), "100");
    assert!(api["counts"]["moved_up"].as_i64().unwrap() > 0, "{api}");
    let first = crate::web::get_with(&t, &cookie, &format!("/predictions/{}", ids[0])).await;
    assert!(first.text().await.unwrap().contains("id=\"changes-none\""));
}

#[tokio::test]
async fn browser_customer_history_from_the_customers_table() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = crate::web::browser(downloads.path()).await else {
        return;
    };
    let t = crate::web::signed_in_app().await;
    let alice = key(&t, "user_alice").await;
    let Some((ids, results)) = small_months(&t, &alice).await else {
        return;
    };
    let (_, rows) = telco().unwrap();
    // Row 250 is in all three months, on a month-to-month contract in the second.
    let who = rows[250][0].clone();

    // Sign in through the form on the way to the customers table.
    c.goto(&format!(
        "{}/predictions/{}/customers?q={who}",
        t.base, ids[2]
    ))
    .await
    .unwrap();
    crate::web::wait_for(&c, "form[action='/signin'] #key")
        .await
        .send_keys(&alice)
        .await
        .unwrap();
    crate::web::wait_for(&c, "form[action='/signin'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    crate::web::wait_for(&c, "form.signout button").await;
    let landed = c.current_url().await.unwrap();
    assert_eq!(
        landed.path(),
        format!("/predictions/{}/customers", ids[2]),
        "{landed}"
    );
    crate::web::wait_for(&c, "table.customers a.history")
        .await
        .click()
        .await
        .unwrap();
    crate::web::wait_for(&c, "#runs").await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/customers/{who}")
    );
    let points = c
        .find_all(fantoccini::Locator::Css("svg.chart circle.point"))
        .await
        .unwrap();
    assert_eq!(points.len(), 3);
    let runs = c
        .find_all(fantoccini::Locator::Css("#runs tbody tr"))
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
    for (row, r) in runs.iter().zip(&results) {
        let text = row.text().await.unwrap();
        assert!(text.contains(&shown(r[&who].ppm)), "{text}");
        assert!(text.contains("pts"), "each run's drivers: {text}");
    }
    assert_eq!(
        crate::web::text_of(&c, "#latest-probability").await,
        shown(results[2][&who].ppm)
    );
    crate::web::screenshots(&c, "7-customer-history").await;

    // The second month's dashboard: the changes panel, and its customers link to their pages.
    c.goto(&format!("{}/predictions/{}", t.base, ids[1]))
        .await
        .unwrap();
    let moved = crate::web::text_of(&c, "#moved-up").await;
    let api = json_ok(&t, &alice, &format!("/api/predictions/{}/changes", ids[1])).await;
    assert_eq!(moved, api["counts"]["moved_up"].to_string());
    crate::web::screenshots(&c, "8-dashboard-changes").await;
    crate::web::wait_for(&c, "#largest-changes tbody th a")
        .await
        .click()
        .await
        .unwrap();
    crate::web::wait_for(&c, "#runs").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/customers/"));
    c.close().await.unwrap();
}
