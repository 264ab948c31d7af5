//! What `POST /api/csv` and the read endpoints answer to bad requests.

use serde_json::Value;

use crate::helpers::*;

async fn detail(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], false);
    body["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn refuses_empty_and_non_csv_files() {
    let t = TestApp::spawn().await;
    let r = t.upload("empty.csv", Vec::new()).await;
    assert_eq!(r.status(), 400);
    assert!(detail(r).await.contains("empty"));
    let r = t.upload("book.xlsx", b"PK\x03\x04whatever".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(detail(r).await.contains("export it as CSV"));
    let r = t
        .upload("data.csv", b"PK\x03\x04zip in disguise".to_vec())
        .await;
    assert_eq!(r.status(), 400);
    let r = t.upload("data.csv", b"a,b\n\x00\x01\x02".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(detail(r).await.contains("binary"));
    let form = reqwest::multipart::Form::new().text("other", "x");
    let r = t
        .client
        .post(format!("{}/api/csv", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(detail(r).await.contains("\"file\""));
    // Nothing was queued by any of these.
    assert_eq!(t.app.queue.stats().await.unwrap().depth, 0);
}

#[tokio::test]
async fn refuses_files_over_the_limit_with_the_limit_named() {
    let t = TestApp::spawn_with(|c| c.max_upload_bytes = 1024 * 1024).await;
    let big = synthetic_telco(20_000).into_bytes();
    assert!(big.len() > 1024 * 1024);
    let r = t.upload("big.csv", big).await;
    assert_eq!(r.status(), 413);
    assert!(detail(r).await.contains("1 MB"));
    // Just under the limit is fine.
    let small = synthetic_telco(5_000).into_bytes();
    assert!(small.len() < 1024 * 1024);
    t.upload_ok("small.csv", small).await;
    assert_eq!(t.app.queue.stats().await.unwrap().depth, 1);
}

#[tokio::test]
async fn read_endpoints_check_ids() {
    let t = TestApp::spawn().await;
    let r = t.get("/api/predictions/not-a-uuid").await;
    assert_eq!(r.status(), 400);
    assert!(detail(r).await.contains("not a UUID"));
    let r = t
        .get("/api/predictions/6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5")
        .await;
    assert_eq!(r.status(), 404);
    let r = t
        .get("/api/predictions/6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5/results")
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(t.get("/nope").await.status(), 404);
    let health: Value = t.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    // Every error is JSON, including the ones axum's extractors raise.
    let r = t.get("/api/predictions?limit=abc").await;
    assert_eq!(r.status(), 400);
    assert!(detail(r).await.contains("limit"));
    let r = t.get("/api/csv").await;
    assert_eq!(r.status(), 405);
    detail(r).await;
    let r = t
        .client
        .post(format!("{}/api/csv", t.base))
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(detail(r).await.contains("multipart/form-data"));
    let long = "x".repeat(5000);
    let r = t.get(&format!("/api/predictions/{long}")).await;
    assert_eq!(r.status(), 400);
    assert!(
        detail(r).await.len() < 300,
        "a huge id is not echoed back whole"
    );
    let ready = t.get("/ready").await;
    assert_eq!(ready.status(), 200);
}

/// Jumping the queue is the operator's decision: a user not listed in
/// `RETAINWISE_HIGH_PRIORITY_USERS` gets 403 naming the setting and nothing is queued; a listed
/// one jumps ahead of earlier normal jobs.
#[tokio::test]
async fn high_priority_is_the_operators_decision_and_jumps_the_queue() {
    let urgent_form = || {
        let part = reqwest::multipart::Part::bytes(synthetic_telco(3).into_bytes())
            .file_name("urgent.csv");
        reqwest::multipart::Form::new().part("file", part)
    };
    let t = TestApp::spawn().await;
    let r = t
        .client
        .post(format!("{}/api/csv?priority=high", t.base))
        .multipart(urgent_form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body.to_string().contains("RETAINWISE_HIGH_PRIORITY_USERS"),
        "{body}"
    );
    assert_eq!(
        t.app
            .db
            .active_jobs(&retainwise::domain::OrgId::local())
            .await
            .unwrap(),
        0
    );

    let t = TestApp::spawn_with(|c| {
        c.high_priority_users = vec![retainwise::domain::OrgId::local().to_string()]
    })
    .await;
    let normal = t
        .upload_ok("normal.csv", synthetic_telco(3).into_bytes())
        .await;
    let r = t
        .client
        .post(format!("{}/api/csv?priority=high", t.base))
        .multipart(urgent_form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let urgent: Value = r.json().await.unwrap();
    let urgent = urgent["prediction_id"].as_str().unwrap().to_owned();
    t.work_once().await;
    assert_eq!(t.prediction(&urgent).await["status"], "COMPLETED");
    assert_eq!(t.prediction(&normal).await["status"], "QUEUED");
}

/// A seeded property test of the upload path: arbitrary bytes under arbitrary names get either
/// 400 or 202, never a 5xx; every accepted file ends COMPLETED or FAILED, never stuck.
#[tokio::test]
async fn arbitrary_uploads_never_break_the_service() {
    use rand::{Rng, SeedableRng};
    let t = TestApp::spawn().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
    let names = [
        "x.csv",
        "../../etc/passwd",
        "a\u{0}b.csv",
        "=cmd|' /C calc'!A0.csv",
        "ü n i.CSV",
        "",
        "data.xlsx",
    ];
    const ALPHABET: &[u8] = b",;\"\n\r\tab01.-=";
    let telco = synthetic_telco(20);
    for case in 0..120 {
        let bytes: Vec<u8> = match case % 4 {
            0 => (0..rng.gen_range(0..3000)).map(|_| rng.gen()).collect(),
            1 => (0..rng.gen_range(0..3000))
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
                .collect(),
            2 => {
                let mut b = telco.clone().into_bytes();
                for _ in 0..rng.gen_range(1..20) {
                    let i = rng.gen_range(0..b.len());
                    b[i] = rng.gen();
                }
                b
            }
            _ => telco.as_bytes()[..rng.gen_range(0..telco.len())].to_vec(),
        };
        let name = names[rng.gen_range(0..names.len())];
        let response = t.upload(name, bytes.clone()).await;
        let status = response.status().as_u16();
        assert!(
            status == 202 || status == 400,
            "case {case}: {status} for {name:?}: {}",
            response.text().await.unwrap()
        );
        if status == 202 {
            let body: Value = response.json().await.unwrap();
            let id = body["prediction_id"].as_str().unwrap().to_owned();
            let outcome = t.work_once().await;
            let p = t.prediction(&id).await;
            assert!(
                p["status"] == "COMPLETED" || p["status"] == "FAILED",
                "case {case}: {outcome:?} {p}"
            );
            if p["status"] == "FAILED" {
                assert!(
                    !p["error_message"].as_str().unwrap_or("").is_empty(),
                    "case {case}: a failure must say why"
                );
            }
        }
    }
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight, stats.dead), (0, 0, 0));
}

/// Form fields are read wherever they are: `label` after the file trains on that label; a
/// second `file` part is refused (which one was meant cannot be guessed), for uploads and
/// trainings alike; a setting given twice with different values is refused.
#[tokio::test]
async fn form_fields_after_the_file_count_and_a_second_file_is_refused() {
    let t = TestApp::spawn().await;
    let csv =
        || reqwest::multipart::Part::bytes(synthetic_telco(60).into_bytes()).file_name("h.csv");
    let post = |path: &'static str, form: reqwest::multipart::Form| {
        t.client
            .post(format!("{}{path}", t.base))
            .multipart(form)
            .send()
    };
    for path in ["/api/csv", "/api/models"] {
        let r = post(
            path,
            reqwest::multipart::Form::new()
                .text("label", "Partner")
                .part("file", csv())
                .part("file", csv()),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.contains("second \\\"file\\\" part"), "{path}: {text}");
    }
    let r = post(
        "/api/csv",
        reqwest::multipart::Form::new()
            .text("reference_date", "2024-01-01")
            .part("file", csv())
            .text("reference_date", "2024-02-01"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("given twice"));
    let list: serde_json::Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 0, "nothing refused was queued");
    // The label after the file is the one trained on.
    let r = post(
        "/api/models",
        reqwest::multipart::Form::new()
            .part("file", csv())
            .text("label", "Partner"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["label"], "Partner", "{body}");
}
