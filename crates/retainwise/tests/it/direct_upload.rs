//! Direct upload (`POST /api/uploads`): a file above the form's 10 MB limit sent in
//! parts, a part dropped mid-way and sent again, completion checks (missing parts, SHA-256),
//! completing twice, the separate limit, another user's upload, and the same client against
//! Postgres + a real S3 server (SeaweedFS) where the parts go straight to the bucket.

use std::time::Duration;

use retainwise::worker::Outcome;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::web::signed_in_app;

const MIB: u64 = 1024 * 1024;

/// A Telco-schema file just above `bytes`.
fn file_over(bytes: u64) -> Vec<u8> {
    let rows = (bytes / 150) as usize + 1;
    let mut text = synthetic_telco(rows);
    while (text.len() as u64) <= bytes {
        text = synthetic_telco(text.lines().count() + 5_000);
    }
    text.into_bytes()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn create(t: &TestApp, bearer: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = t.client.post(format!("{}/api/uploads", t.base)).json(&body);
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    request.send().await.unwrap()
}

async fn call(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
) -> reqwest::Response {
    let mut request = t.client.request(method, format!("{}{path}", t.base));
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    request.send().await.unwrap()
}

/// PUTs `bytes` to a URL the API gave, with no credentials (as S3 presigned URLs want).
async fn put(url: &str, bytes: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

fn part_urls(created: &Value) -> Vec<String> {
    created["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .map(|p| p["url"].as_str().unwrap().to_owned())
        .collect()
}

/// The whole story on the embedded default: refused by the form, accepted here in parts, a part
/// broken off mid-way and sent again, completed (twice: one prediction), scored.
#[tokio::test]
async fn a_file_over_the_form_limit_goes_up_in_parts_resumes_and_is_scored() {
    let t = TestApp::spawn_with(|c| c.upload_part_bytes = 5 * MIB).await;
    let bytes = file_over(12 * MIB);
    let rows = bytes.iter().filter(|b| **b == b'\n').count() - 1;
    assert_eq!(
        t.upload("big.csv", bytes.clone()).await.status(),
        413,
        "the form path keeps its 10 MB limit"
    );

    let created = create(
        &t,
        None,
        json!({"filename": "big.csv", "size": bytes.len(), "sha256": sha256_hex(&bytes)}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["method"], "PUT");
    assert_eq!(created["part_size"], 5 * MIB);
    assert_eq!(created["max_bytes"], 5 * 1024 * MIB);
    assert!(created["expires_at"].is_string());
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let urls = part_urls(&created);
    assert_eq!(urls.len(), 3);
    assert!(
        urls[0].starts_with(&t.base),
        "local parts go to the API: {}",
        urls[0]
    );
    let part = |n: usize| {
        bytes[n * 5 * MIB as usize..((n + 1) * 5 * MIB as usize).min(bytes.len())].to_vec()
    };

    assert_eq!(put(&urls[0], part(0)).await.status(), 200);
    // Part 2 breaks off after 1 MB: the connection drops with the body unfinished.
    let half: Vec<u8> = part(1)[..MIB as usize].to_vec();
    let stream = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(half),
        Err(std::io::Error::other("connection dropped")),
    ]);
    let broken = reqwest::Client::new()
        .put(&urls[1])
        .header("content-length", (5 * MIB).to_string())
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    assert!(broken.is_err() || !broken.unwrap().status().is_success());

    let status: Value = call(
        &t,
        reqwest::Method::GET,
        &format!("/api/uploads/{id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(status["status"], "PENDING");
    assert_eq!(status["parts_present"], json!([1]), "{status}");
    assert_eq!(status["parts_missing"], json!([2, 3]));
    let early = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(early.status(), 409);
    let text = early.text().await.unwrap();
    assert!(text.contains("2, 3"), "names the missing parts: {text}");

    // A part of the wrong size is refused and leaves nothing.
    assert_eq!(put(&urls[1], part(1)[..100].to_vec()).await.status(), 400);
    // Resume: the missing parts only, from the URLs the status answered.
    let urls = part_urls(&status);
    assert_eq!(put(&urls[1], part(1)).await.status(), 200);
    assert_eq!(put(&urls[2], part(2)).await.status(), 200);

    let done = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(done.status(), 202);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["prediction_status"], "QUEUED");
    assert_eq!(done["size_bytes"], bytes.len());
    let prediction = done["prediction_id"].as_str().unwrap().to_owned();
    let again: Value = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        again["prediction_id"],
        prediction.as_str(),
        "completing twice: one prediction"
    );
    assert_eq!(
        put(&urls[0], part(0)).await.status(),
        409,
        "a completed upload takes no more bytes"
    );
    let incoming = t.dir.path().join("objects/incoming");
    assert!(
        walk_files(&incoming).is_empty(),
        "the parts are removed once the file is assembled"
    );

    assert!(matches!(t.work_once().await, Outcome::Completed));
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.dead),
        (0, 0, 0),
        "exactly one job was queued"
    );
    let p = t.prediction(&prediction).await;
    assert_eq!(p["status"], "COMPLETED");
    assert_eq!(p["rows_processed"].as_u64().unwrap() as usize, rows);
    let (_, scored) = parse_csv(&t.results(&prediction).await);
    assert_eq!(scored.len(), rows);
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                pending.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// A SHA-256 that does not match (422 naming both, and again on a second completion), a size
/// over the separate limit (413 naming it), another user's upload (404 everywhere, and its
/// bytes cannot be sent with one's own signature), a forged link (403).
#[tokio::test]
async fn checksums_limits_and_owners_are_enforced() {
    let t = signed_in_app().await;
    let key = |user: &'static str| {
        let db = t.app.db.clone();
        async move {
            db.create_api_key(&user.parse().unwrap(), "test")
                .await
                .unwrap()
                .secret
        }
    };
    let (alice, bob) = (key("user_alice").await, key("user_bob").await);
    let bytes = synthetic_telco(50).into_bytes();
    let wrong = sha256_hex(b"other bytes");
    let created: Value = create(
        &t,
        Some(&alice),
        json!({"filename": "small.csv", "size": bytes.len(), "sha256": wrong}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let url = created["url"]
        .as_str()
        .expect("one URL for a one-part file")
        .to_owned();

    // Bob sees nothing of it.
    for (method, path) in [
        (reqwest::Method::GET, format!("/api/uploads/{id}")),
        (reqwest::Method::POST, format!("/api/uploads/{id}/complete")),
    ] {
        let r = call(&t, method, &path, Some(&bob)).await;
        assert_eq!(r.status(), 404, "{path} for another user");
    }
    // Bob's own signature does not open Alice's upload.
    let bobs: Value = create(
        &t,
        Some(&bob),
        json!({"filename": "b.csv", "size": bytes.len()}),
    )
    .await
    .json()
    .await
    .unwrap();
    let bob_url = bobs["url"].as_str().unwrap();
    let (_, bob_query) = bob_url.split_once('?').unwrap();
    let swapped = format!("{}/api/uploads/{id}?{bob_query}", t.base);
    assert_eq!(put(&swapped, bytes.clone()).await.status(), 403);
    let forged = url.replace("user=user_alice", "user=user_bob");
    assert_eq!(put(&forged, bytes.clone()).await.status(), 403);
    let no_signature = url.split_once('?').unwrap().0.to_owned();
    assert_eq!(put(&no_signature, bytes.clone()).await.status(), 403);

    assert_eq!(put(&url, bytes.clone()).await.status(), 200);
    for attempt in ["first", "second"] {
        let r = call(
            &t,
            reqwest::Method::POST,
            &format!("/api/uploads/{id}/complete"),
            Some(&alice),
        )
        .await;
        assert_eq!(r.status(), 422, "{attempt} completion");
        let text = r.text().await.unwrap();
        assert!(
            text.contains(&wrong) && text.contains(&sha256_hex(&bytes)),
            "{attempt}: names expected and actual: {text}"
        );
    }
    assert_eq!(
        t.app
            .db
            .active_jobs(&"user_alice".parse().unwrap())
            .await
            .unwrap(),
        0
    );

    // Over the direct limit: 413 naming it. Not a CSV by its name: 400.
    let over = create(
        &t,
        Some(&alice),
        json!({"filename": "huge.csv", "size": 5 * 1024 * MIB + 1}),
    )
    .await;
    assert_eq!(over.status(), 413);
    let text = over.text().await.unwrap();
    assert!(
        text.contains("5 GB") && text.contains("RETAINWISE_MAX_DIRECT_UPLOAD_BYTES"),
        "{text}"
    );
    let xlsx = create(&t, Some(&alice), json!({"filename": "a.xlsx", "size": 10})).await;
    assert_eq!(xlsx.status(), 400);
    let bad_sha = create(
        &t,
        Some(&alice),
        json!({"filename": "a.csv", "size": 10, "sha256": "abc"}),
    )
    .await;
    assert_eq!(bad_sha.status(), 400);
    assert_eq!(
        create(&t, None, json!({"filename": "a.csv", "size": 10}))
            .await
            .status(),
        401
    );
}

/// An upload never completed is swept once expired: its parts removed, its status EXPIRED,
/// and its URLs refused.
#[tokio::test]
async fn an_unfinished_upload_expires_and_its_parts_are_removed() {
    let t = TestApp::spawn_with(|c| c.upload_part_bytes = 5 * MIB).await;
    let bytes = file_over(6 * MIB);
    let created: Value = create(&t, None, json!({"filename": "x.csv", "size": bytes.len()}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let urls = part_urls(&created);
    assert_eq!(
        put(&urls[0], bytes[..5 * MIB as usize].to_vec())
            .await
            .status(),
        200
    );
    assert!(!walk_files(&t.dir.path().join("objects/incoming")).is_empty());
    // Not yet expired: the sweep leaves it.
    assert_eq!(
        retainwise::app::sweep_expired_uploads(&t.app.db, &t.app.storage)
            .await
            .unwrap(),
        0
    );
    sqlx::query("UPDATE direct_uploads SET expires_at = 1 WHERE id = $1")
        .bind(&id)
        .execute(t.app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        retainwise::app::sweep_expired_uploads(&t.app.db, &t.app.storage)
            .await
            .unwrap(),
        1
    );
    assert!(walk_files(&t.dir.path().join("objects/incoming")).is_empty());
    let status: Value = call(
        &t,
        reqwest::Method::GET,
        &format!("/api/uploads/{id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(status["status"], "EXPIRED");
    let r = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("expired"));
}

/// The same client on Postgres + S3 (SeaweedFS): the URLs are presigned S3 PUTs (the API never
/// sees the bytes), the parts present are read back from S3 after a dropped part, the content
/// length is part of the signature, and completion assembles, checks and queues.
#[tokio::test]
async fn on_postgres_and_s3_the_parts_go_straight_to_the_bucket() {
    let Some(pg) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    let (url, storage) = (
        pg.app.config.database_url.clone(),
        pg.app.config.storage.clone(),
    );
    let t = TestApp::spawn_with(move |c| {
        c.database_url = url;
        c.storage = storage;
        c.upload_part_bytes = 5 * MIB;
    })
    .await;
    let bytes = file_over(11 * MIB);
    let rows = bytes.iter().filter(|b| **b == b'\n').count() - 1;
    let created = create(
        &t,
        None,
        json!({"filename": "big.csv", "size": bytes.len(), "sha256": sha256_hex(&bytes)}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let urls = part_urls(&created);
    assert_eq!(urls.len(), 3);
    assert!(
        !urls[0].starts_with(&t.base) && urls[0].contains("X-Amz-Signature"),
        "{}",
        urls[0]
    );
    let part = |n: usize| {
        bytes[n * 5 * MIB as usize..((n + 1) * 5 * MIB as usize).min(bytes.len())].to_vec()
    };

    // Another length than the signed one is refused by S3 itself.
    let short = put(&urls[0], part(0)[..1000].to_vec()).await;
    assert!(
        !short.status().is_success(),
        "S3 took a body of another size"
    );
    assert_eq!(put(&urls[0], part(0)).await.status(), 200);
    let dropped = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(part(1)[..MIB as usize].to_vec()),
        Err(std::io::Error::other("connection dropped")),
    ]);
    let _ = reqwest::Client::new()
        .put(&urls[1])
        .header("content-length", (5 * MIB).to_string())
        .body(reqwest::Body::wrap_stream(dropped))
        .send()
        .await;
    let status: Value = call(
        &t,
        reqwest::Method::GET,
        &format!("/api/uploads/{id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(status["parts_present"], json!([1]), "{status}");
    let r = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(r.status(), 409);
    let urls = part_urls(&status);
    assert_eq!(put(&urls[1], part(1)).await.status(), 200);
    assert_eq!(put(&urls[2], part(2)).await.status(), 200);
    let done = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(done.status(), 202);
    let done: Value = done.json().await.unwrap();
    let prediction = done["prediction_id"].as_str().unwrap().to_owned();
    let again: Value = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["prediction_id"], prediction.as_str());
    assert!(matches!(t.work_once().await, Outcome::Completed));
    let p = t.prediction(&prediction).await;
    assert_eq!(p["status"], "COMPLETED");
    assert_eq!(p["rows_processed"].as_u64().unwrap() as usize, rows);

    // One PUT for a small file; a wrong SHA-256 is found by reading the object back.
    let small = synthetic_telco(40).into_bytes();
    let wrong = sha256_hex(b"not it");
    let one: Value = create(
        &t,
        None,
        json!({"filename": "s.csv", "size": small.len(), "sha256": wrong}),
    )
    .await
    .json()
    .await
    .unwrap();
    let one_id = one["upload_id"].as_str().unwrap();
    let nothing = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{one_id}/complete"),
        None,
    )
    .await;
    assert_eq!(nothing.status(), 409, "nothing sent yet");
    assert_eq!(
        put(one["url"].as_str().unwrap(), small.clone())
            .await
            .status(),
        200
    );
    let r = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{one_id}/complete"),
        None,
    )
    .await;
    assert_eq!(r.status(), 422);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&wrong) && text.contains(&sha256_hex(&small)),
        "{text}"
    );
}

/// `retainwise upload FILE --server URL --wait`: the real binary through a connection that
/// drops mid-part; it says so, sends what is missing, completes, waits and prints the
/// prediction id and the results' URL.
#[tokio::test]
async fn the_upload_command_resumes_after_a_dropped_connection_and_waits() {
    let t = TestApp::spawn_with(|c| c.upload_part_bytes = 5 * MIB).await;
    let bytes = file_over(12 * MIB);
    let rows = bytes.iter().filter(|b| **b == b'\n').count() - 1;
    let file = t.dir.path().join("customers.csv");
    std::fs::write(&file, &bytes).unwrap();
    let upstream: std::net::SocketAddr = t.base.trim_start_matches("http://").parse().unwrap();
    // Byte 8 MiB of everything sent falls in part 2.
    let proxy = crate::cut_proxy::spawn(upstream, 8 * MIB, false).await;
    let server = format!("http://{}", proxy.addr);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .args([
            "upload",
            file.to_str().unwrap(),
            "--server",
            &server,
            "--wait",
        ])
        .env_remove("RETAINWISE_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let run = tokio::spawn(child.wait_with_output());
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload did not queue a job"
        );
        match t.worker.run_once(Duration::from_millis(500)).await.unwrap() {
            Some(Outcome::Completed) => break,
            Some(other) => panic!("the job ended {other:?}"),
            None => {}
        }
    }
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the command exits once the prediction completed")
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the connection was cut"
    );
    assert!(
        stderr.contains("broke off") && stderr.contains("retrying"),
        "{stderr}"
    );
    let mut lines = stdout.lines();
    let prediction = lines.next().unwrap().trim().to_owned();
    assert_eq!(
        lines.next().unwrap().trim(),
        format!("{server}/api/predictions/{prediction}/results")
    );
    let p = t.prediction(&prediction).await;
    assert_eq!(p["status"], "COMPLETED");
    assert_eq!(p["rows_processed"].as_u64().unwrap() as usize, rows);
}

/// The upload page in real headless Chromium, signed in through the form: a file over the
/// form's limit goes in parts with the progress bar; the connection drops mid-part and stays
/// away; the page says so, and once the network is back it sends the rest and opens the
/// prediction, which is scored.
#[tokio::test]
async fn browser_a_large_file_resumes_after_a_dropped_connection() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = crate::web::browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn_with(|c| {
        c.upload_part_bytes = 5 * MIB;
        c.auth = retainwise::auth::AuthConfig::Secret {
            secret: "a-test-secret-of-at-least-32-bytes!!".to_owned().into(),
            issuer: None,
            audience: None,
        };
    })
    .await;
    let key = t
        .app
        .db
        .create_api_key(&"user_browser".parse().unwrap(), "web")
        .await
        .unwrap();
    let bytes = file_over(12 * MIB);
    let rows = bytes.iter().filter(|b| **b == b'\n').count() - 1;
    let file = t.dir.path().join("big-customers.csv");
    std::fs::write(&file, &bytes).unwrap();
    let upstream: std::net::SocketAddr = t.base.trim_start_matches("http://").parse().unwrap();
    // Byte 8 MiB of everything the browser sends falls in part 2.
    let proxy = crate::cut_proxy::spawn(upstream, 8 * MIB, true).await;
    let base = format!("http://{}", proxy.addr);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = {
        let (w, s) = (t.worker.clone(), shutdown.clone());
        tokio::spawn(async move { w.run(s).await })
    };

    c.goto(&format!("{base}/")).await.unwrap();
    crate::web::wait_for(&c, "form[action='/signin'] #key")
        .await
        .send_keys(&key.secret)
        .await
        .unwrap();
    crate::web::wait_for(&c, "form[action='/signin'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    crate::web::wait_for(&c, "#file")
        .await
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    wait_status(&c, "ready to be scored", 60).await;
    crate::web::wait_for(&c, "#submit:not([disabled])")
        .await
        .click()
        .await
        .unwrap();
    // The drop is seen and said.
    let text = wait_status(&c, "connection dropped", 120).await;
    assert!(text.contains("Resuming"), "{text}");
    assert!(proxy.cut.load(std::sync::atomic::Ordering::SeqCst));
    let progress: f64 = c
        .execute("return document.getElementById('progress').value", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(progress > 0.0 && progress < 100.0, "progress {progress}");
    crate::web::screenshots(&c, "upload-resuming").await;
    // The network comes back: the page sends the rest and opens the prediction.
    proxy.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let id = loop {
        let url = c.current_url().await.unwrap();
        if let Some(id) = url.path().strip_prefix("/predictions/") {
            break id.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never left the upload page"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let user: retainwise::domain::OrgId = "user_browser".parse().unwrap();
    let prediction: retainwise::domain::PredictionId = id.parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let row = loop {
        let row = t
            .app
            .db
            .prediction(&user, prediction)
            .await
            .unwrap()
            .unwrap();
        if row.status().to_string() == "COMPLETED" || std::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        row.status().to_string(),
        "COMPLETED",
        "{:?}",
        row.error_message
    );
    assert_eq!(row.rows_processed as usize, rows);
    shutdown.cancel();
    let _ = worker.await;
    let _ = c.close().await;
}

/// The upload page's status line once it contains `want`, read by script (the page is not
/// reloaded meanwhile); on a timeout, fails with the page's URL and text.
async fn wait_status(c: &fantoccini::Client, want: &str, secs: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let text = c
            .execute(
                "const e = document.getElementById('file-status'); return e ? e.textContent : null",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if text.contains(want) {
            return text;
        }
        if std::time::Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = c
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
                .map(|v| v.to_string())
                .unwrap_or_default();
            panic!("status never said {want:?}: {text:?} at {url}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The upload page on Postgres + S3 in Chromium: the parts go from the browser straight to the
/// bucket (the page's Content-Security-Policy lets the script connect there), and the file is
/// scored.
#[tokio::test]
async fn browser_a_large_file_goes_straight_to_s3() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = crate::web::browser(downloads.path()).await else {
        return;
    };
    let Some(pg) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    let (url, storage) = (
        pg.app.config.database_url.clone(),
        pg.app.config.storage.clone(),
    );
    let t = TestApp::spawn_with(move |c| {
        c.database_url = url;
        c.storage = storage;
        c.upload_part_bytes = 5 * MIB;
        c.auth = retainwise::auth::AuthConfig::Secret {
            secret: "a-test-secret-of-at-least-32-bytes!!".to_owned().into(),
            issuer: None,
            audience: None,
        };
    })
    .await;
    let key = t
        .app
        .db
        .create_api_key(&"user_browser".parse().unwrap(), "web")
        .await
        .unwrap();
    let bytes = file_over(11 * MIB);
    let rows = bytes.iter().filter(|b| **b == b'\n').count() - 1;
    let file = t.dir.path().join("big-customers.csv");
    std::fs::write(&file, &bytes).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = {
        let (w, s) = (t.worker.clone(), shutdown.clone());
        tokio::spawn(async move { w.run(s).await })
    };
    c.goto(&format!("{}/", t.base)).await.unwrap();
    crate::web::wait_for(&c, "form[action='/signin'] #key")
        .await
        .send_keys(&key.secret)
        .await
        .unwrap();
    crate::web::wait_for(&c, "form[action='/signin'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    crate::web::wait_for(&c, "#file")
        .await
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    wait_status(&c, "ready to be scored", 60).await;
    crate::web::wait_for(&c, "#submit:not([disabled])")
        .await
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let id = loop {
        let url = c.current_url().await.unwrap();
        if let Some(id) = url.path().strip_prefix("/predictions/") {
            break id.to_owned();
        }
        if std::time::Instant::now() > deadline {
            let text = wait_status(&c, "", 1).await;
            panic!("never left the upload page: {text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let user: retainwise::domain::OrgId = "user_browser".parse().unwrap();
    let prediction: retainwise::domain::PredictionId = id.parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let row = loop {
        let row = t
            .app
            .db
            .prediction(&user, prediction)
            .await
            .unwrap()
            .unwrap();
        if row.status().to_string() == "COMPLETED" || std::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        row.status().to_string(),
        "COMPLETED",
        "{:?}",
        row.error_message
    );
    assert_eq!(row.rows_processed as usize, rows);
    shutdown.cancel();
    let _ = worker.await;
    let _ = c.close().await;
}

/// A column choice that cannot work on the file (tenure on the MonthlyCharges column, which the
/// automatic mapping gives to MonthlyCharges) is refused at completion with the 422
/// `POST /api/csv` gives, and the upload is FAILED: nothing is queued to fail later.
#[tokio::test]
async fn a_column_choice_that_cannot_work_is_refused_at_completion() {
    let t = TestApp::spawn().await;
    let bytes = synthetic_telco(20).into_bytes();
    let created: Value = create(
        &t,
        None,
        json!({"filename": "m.csv", "size": bytes.len(), "mapping": {"tenure": "MonthlyCharges"}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(
        put(created["url"].as_str().unwrap(), bytes).await.status(),
        200
    );
    let done = call(
        &t,
        reqwest::Method::POST,
        &format!("/api/uploads/{id}/complete"),
        None,
    )
    .await;
    assert_eq!(done.status(), 422);
    let detail = done.text().await.unwrap();
    assert!(detail.contains("MonthlyCharges"), "{detail}");
    let status: Value = call(
        &t,
        reqwest::Method::GET,
        &format!("/api/uploads/{id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(status["status"], "FAILED", "{status}");
    let listed = t.get("/api/predictions").await.text().await.unwrap();
    assert!(!listed.contains("m.csv"), "nothing queued: {listed}");
}
