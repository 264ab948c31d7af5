//! Failure drills on the scale-out engines: real `retainwise
//! api` and `retainwise worker` processes on Postgres and S3 (SeaweedFS), with workers killed
//! and stopped mid-run, the database stopped and started under them, and the object store made
//! unreachable. `scripts/failure-drill.sh` runs the same drills at full size (200 uploads, the
//! release binary, the real SeaweedFS process stopped and restarted); these keep the suite quick
//! (`RETAINWISE_DRILL_UPLOADS`, default 40, sets the size of the first).
//!
//! What is measured, and where:
//! - "completed exactly once": the database (every prediction COMPLETED) and the workers' JSON
//!   logs (one `prediction_status_updated status=COMPLETED` per prediction, over all workers);
//! - "each result file written once": at the store's door, by [`S3Proxy`], which counts the
//!   object writes (whole-object PUTs and CompleteMultipartUpload calls) the store answered 2xx;
//! - "matches the offline output": each stored result, byte for byte, against
//!   `retainwise predict` of the same file;
//! - "nothing in flight": the queue's depth, in-flight, delayed and dead counts, and no
//!   prediction left QUEUED or RUNNING.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use retainwise::config::StorageLocation;
use retainwise::domain::{ObjectKey, OrgId};

use crate::fleet::{events, Fleet, PrivatePostgres, BIN};
use crate::helpers::*;
use crate::s3_proxy::S3Proxy;

/// Distinct input files (sizes in rows); upload i sends file `i % SIZES.len()`.
const SIZES: [usize; 4] = [2_000, 4_000, 8_000, 12_000];

fn inputs() -> Vec<Vec<u8>> {
    SIZES
        .iter()
        .map(|&n| synthetic_telco(n).into_bytes())
        .collect()
}

/// `retainwise predict` of each input: what every stored result must equal.
fn offline_outputs(inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    inputs
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let input = dir.path().join(format!("in{i}.csv"));
            let output = dir.path().join(format!("out{i}.csv"));
            std::fs::write(&input, bytes).unwrap();
            let run = std::process::Command::new(BIN)
                .arg("predict")
                .arg(&input)
                .arg("-o")
                .arg(&output)
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            std::fs::read(&output).unwrap()
        })
        .collect()
}

/// The S3 endpoint `scripts/test-services.sh` exported.
fn s3_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .expect("an S3 endpoint alongside RETAINWISE_TEST_S3_BUCKET")
}

/// The environment of the drill's processes: the inspecting app's database and storage, S3
/// reached at `s3_endpoint`, a 3-second visibility timeout so a killed worker's job comes back
/// quickly, plus `extra`.
fn fleet_env(t: &TestApp, s3_endpoint: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let StorageLocation::S3 { bucket, prefix } = &t.app.config.storage else {
        panic!("the drills run on S3")
    };
    let mut env = vec![
        (
            "RETAINWISE_DATABASE_URL".to_owned(),
            t.app.config.database_url.clone(),
        ),
        (
            "RETAINWISE_STORAGE_URL".to_owned(),
            format!("s3://{bucket}/{}", prefix.as_deref().unwrap_or("")),
        ),
        ("AWS_ENDPOINT_URL_S3".to_owned(), s3_endpoint.to_owned()),
        (
            "RETAINWISE_VISIBILITY_TIMEOUT_SECS".to_owned(),
            "3".to_owned(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// id → (status, attempt, error_message), from the database.
async fn predictions(t: &TestApp) -> BTreeMap<String, (String, i64, Option<String>)> {
    let rows: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT id, status, attempt, error_message FROM predictions")
            .fetch_all(t.app.db.pool())
            .await
            .expect("read predictions");
    rows.into_iter()
        .map(|(id, status, attempt, error)| (id, (status, attempt, error)))
        .collect()
}

/// Waits until every prediction in `ids` is COMPLETED or FAILED; panics with the laggards after
/// `timeout`. Database errors while waiting (the drill may have stopped it) are waited out.
async fn wait_terminal(t: &TestApp, ids: &[String], timeout: Duration, fleet: &Fleet) {
    let start = Instant::now();
    loop {
        if let Ok(rows) = sqlx::query_as::<_, (String, String)>(
            "SELECT id, status FROM predictions WHERE status IN ('COMPLETED', 'FAILED')",
        )
        .fetch_all(t.app.db.pool())
        .await
        {
            let done: BTreeSet<String> = rows.into_iter().map(|(id, _)| id).collect();
            let open: Vec<&String> = ids.iter().filter(|id| !done.contains(*id)).collect();
            if open.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "{} predictions still open after {timeout:?}: {open:?}\n{}",
                open.len(),
                tail(&fleet.worker_logs(), 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `probe` gives `Some`, or panics with `what` after `timeout`.
async fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The stored result of prediction `id`, read straight from S3 (not through the proxy).
async fn stored_result(t: &TestApp, id: &str) -> Vec<u8> {
    use futures::TryStreamExt;
    let key = ObjectKey::result(&OrgId::local(), id.parse().unwrap());
    let chunks: Vec<bytes::Bytes> = t
        .app
        .storage
        .get_stream(&key)
        .await
        .expect("result stored")
        .try_collect()
        .await
        .expect("result readable");
    chunks.concat()
}

/// The queue holds nothing (depth, in flight, delayed, dead) and no prediction is open.
async fn assert_nothing_in_flight(t: &TestApp) {
    let stats = t.app.queue.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.delayed, stats.dead),
        (0, 0, 0, 0),
        "queue not empty: {stats:?}"
    );
    let open: Vec<_> = predictions(t)
        .await
        .into_iter()
        .filter(|(_, (s, _, _))| s == "QUEUED" || s == "RUNNING")
        .collect();
    assert!(open.is_empty(), "open predictions: {open:?}");
}

/// SIGTERM to the rest of the fleet: each process must exit 0 within 30 s.
async fn stop_fleet(fleet: &mut Fleet) {
    let mut procs: Vec<_> = fleet.workers.iter_mut().collect();
    procs.push(&mut fleet.api);
    for p in procs {
        if p.is_running() {
            p.signal("TERM");
            let status = p.wait_exit(Duration::from_secs(30)).await;
            assert!(
                status.is_some_and(|s| s.success()),
                "{} did not stop cleanly on SIGTERM ({status:?}):\n{}",
                p.name,
                tail(&p.log_text(), 20)
            );
        }
    }
}

/// 40 uploads (RETAINWISE_DRILL_UPLOADS) on Postgres + S3, three worker processes; one worker
/// is SIGKILLed holding a job and another gets SIGTERM holding one. Every prediction ends
/// COMPLETED exactly once, each result object is written once and equals `retainwise predict`
/// of its file, and nothing is left in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_workers_killed_and_stopped_mid_run_every_job_completes_once() {
    let Some(t) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    let uploads: usize = std::env::var("RETAINWISE_DRILL_UPLOADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let started = Instant::now();
    let proxy = S3Proxy::start(&s3_endpoint()).await;
    let env = fleet_env(&t, &proxy.url, &[]);
    let mut fleet = Fleet::start_api(&as_refs(&env)).await;
    let files = inputs();
    let mut ids = Vec::with_capacity(uploads);
    for i in 0..uploads {
        let which = i % files.len();
        let id = fleet
            .upload(&format!("customers-{i}.csv"), files[which].clone())
            .await;
        ids.push((id, which));
    }
    let all: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();

    // Every upload is queued before any worker starts, and worker0 starts first: were the
    // workers running during the uploads, they could drain the queue as fast as it fills and
    // worker0 might never be seen holding a job (a loaded CI machine did exactly that).
    fleet.add_worker(2);
    // SIGKILL worker 0 while it holds a job: no clean-up, no hand-back.
    let held = wait_for("worker0 to hold a job", Duration::from_secs(60), || {
        let h = fleet.workers[0].in_hand();
        (!h.is_empty()).then_some(h)
    })
    .await;
    fleet.workers[0].signal("KILL");
    fleet.workers[0].wait_exit(Duration::from_secs(10)).await;
    fleet.add_worker(2);
    fleet.add_worker(2);
    // What it really held when it died (it may have finished one meanwhile).
    let killed_holding = fleet.workers[0].in_hand();
    assert!(!killed_holding.is_empty() || !held.is_empty());

    // SIGTERM a surviving worker while it holds a job: it stops receiving, finishes, and
    // exits 0. Whichever survivor is first seen holding one: near the end of the run the jobs
    // left (those worker0 held, back after their lease) may all go to the same survivor.
    let (w, _) = wait_for(
        "worker1 or worker2 to hold a job",
        Duration::from_secs(60),
        || {
            [1, 2].into_iter().find_map(|w| {
                let h = fleet.workers[w].in_hand();
                (!h.is_empty()).then_some((w, h))
            })
        },
    )
    .await;
    fleet.workers[w].signal("TERM");
    let exit = fleet.workers[w].wait_exit(Duration::from_secs(60)).await;
    let log_w = fleet.workers[w].log_text();
    assert!(
        exit.is_some_and(|s| s.success()),
        "worker{w} after SIGTERM: {exit:?}\n{}",
        tail(&log_w, 20)
    );
    assert!(
        fleet.workers[w].in_hand().is_empty(),
        "worker{w} left jobs unfinished: {:?}",
        fleet.workers[w].in_hand()
    );
    assert_eq!(
        events(&log_w, "worker_shutdown").len(),
        1,
        "{}",
        tail(&log_w, 5)
    );

    let offline = offline_outputs(&files);
    wait_terminal(&t, &all, Duration::from_secs(300), &fleet).await;
    let wall = started.elapsed();

    // Every prediction COMPLETED, once.
    let rows = predictions(&t).await;
    assert_eq!(rows.len(), uploads);
    for (id, (status, attempt, error)) in &rows {
        assert_eq!(status, "COMPLETED", "{id}: attempt {attempt}, {error:?}");
    }
    let completions = fleet.completions();
    for id in &all {
        assert_eq!(
            completions.get(id),
            Some(&1),
            "{id} recorded COMPLETED {:?} times",
            completions.get(id)
        );
    }
    // The jobs the killed worker held were taken over after their lease ran out.
    let mut taken_over = 0;
    for id in killed_holding.iter().chain(held.iter()) {
        let (status, attempt, _) = &rows[id];
        assert_eq!(status, "COMPLETED");
        if *attempt >= 2 {
            taken_over += 1;
        }
    }
    assert!(
        taken_over >= 1,
        "no job of the killed worker was run again: held {held:?}, at death {killed_holding:?}"
    );

    // Each result object written once, and equal to the offline output of its file.
    let writes = proxy.writes("/results/");
    for (id, which) in &ids {
        let path = writes
            .keys()
            .find(|p| p.ends_with(&format!("/results/local/{id}.csv")))
            .unwrap_or_else(|| panic!("no write of the result of {id} reached the store"));
        assert_eq!(writes[path], 1, "{path} written {} times", writes[path]);
        assert!(
            stored_result(&t, id).await == offline[*which],
            "result of {id} differs from `retainwise predict` of input {which}"
        );
    }
    assert_eq!(
        writes.len(),
        uploads,
        "unexpected result objects: {writes:?}"
    );
    assert_nothing_in_flight(&t).await;
    stop_fleet(&mut fleet).await;
    let attempts: i64 = rows.values().map(|(_, a, _)| a).sum();
    loud(&format!(
        "drill (kill/term): {uploads} uploads, 3 workers, SIGKILL worker0 holding {} job(s), SIGTERM worker{w}: \
         {uploads} COMPLETED once, {} result writes, {} attempts in all, {:.1} s",
        killed_holding.len().max(held.len()),
        writes.values().sum::<u32>(),
        attempts,
        wall.as_secs_f64()
    ));
}

/// Postgres is stopped (fast shutdown: sessions cut) mid-run and started again 3 s later on the
/// same port: the workers neither exit nor spin, they reconnect and finish every job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_database_restart_mid_run_workers_reconnect_and_finish() {
    let Some(bucket) = std::env::var("RETAINWISE_TEST_S3_BUCKET")
        .ok()
        .filter(|b| !b.is_empty())
    else {
        loud("*** SKIPPED: RETAINWISE_TEST_S3_BUCKET not set (scripts/test-services.sh starts an S3 server) ***");
        return;
    };
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let started = Instant::now();
    let url = pg.url.clone();
    let prefix = format!("drill-{}", uuid::Uuid::new_v4().simple());
    let t = TestApp::spawn_with(move |c| {
        c.database_url = url;
        c.storage = StorageLocation::S3 {
            bucket,
            prefix: Some(prefix),
        };
    })
    .await;
    let proxy = S3Proxy::start(&s3_endpoint()).await;
    let env = fleet_env(&t, &proxy.url, &[]);
    let mut fleet = Fleet::start_api(&as_refs(&env)).await;
    let files = inputs();
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(
            fleet
                .upload(&format!("c{i}.csv"), files[i % files.len()].clone())
                .await,
        );
    }
    fleet.add_worker(2);
    fleet.add_worker(2);
    // Mid-run: both workers up (start-up itself needs the database) and one holding a job.
    wait_for(
        "both workers to start and one to hold a job",
        Duration::from_secs(60),
        || {
            let up = fleet
                .workers
                .iter()
                .all(|w| !w.events("worker_startup").is_empty());
            let busy = fleet.workers.iter().any(|w| !w.in_hand().is_empty());
            (up && busy).then_some(())
        },
    )
    .await;
    pg.stop();
    let down_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_again();
    let outage = down_at.elapsed();

    // The API reconnects too: an upload after the restart is accepted and scored.
    ids.push(fleet.upload("after.csv", files[0].clone()).await);
    wait_terminal(&t, &ids, Duration::from_secs(300), &fleet).await;
    let rows = predictions(&t).await;
    for id in &ids {
        let (status, attempt, error) = &rows[id];
        assert_eq!(status, "COMPLETED", "{id}: attempt {attempt}, {error:?}");
    }
    let logs = fleet.worker_logs();
    let db_errors = logs
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\"") || l.contains("\"level\":\"WARN\""))
        .count();
    assert!(
        db_errors > 0,
        "the workers never noticed the database going away:\n{}",
        tail(&logs, 30)
    );
    for w in fleet.workers.iter_mut() {
        assert!(
            w.is_running(),
            "{} exited:\n{}",
            w.name,
            tail(&w.log_text(), 20)
        );
        // Two receive loops, each backing off from 0.5 s (full jitter): a hot loop would log
        // thousands of these in a 3 s outage.
        let loop_errors = w.events("worker_loop_error").len();
        assert!(
            loop_errors <= 40,
            "{} logged {loop_errors} receive errors in a {outage:?} outage: spinning",
            w.name
        );
    }
    assert_nothing_in_flight(&t).await;
    let completions = fleet.completions();
    assert!(
        ids.iter().all(|id| completions.get(id) == Some(&1)),
        "{completions:?}"
    );
    // Leases run out while the database is away, so a job may be run again by another worker
    // after its first run had stored the result: the stored result is not written again.
    let writes = proxy.writes("/results/");
    assert_eq!(writes.len(), ids.len(), "{writes:?}");
    assert!(
        writes.values().all(|n| *n == 1),
        "a result was rewritten: {writes:?}"
    );
    let reruns = events(&logs, "prediction_processing_started").len() - ids.len();
    stop_fleet(&mut fleet).await;
    loud(&format!(
        "drill (database restart): 16 jobs + 1 uploaded after, 2 workers, Postgres down {:.1} s: all COMPLETED, \
         {reruns} job(s) run again, each result written once, {db_errors} error/warning log lines, {:.1} s",
        outage.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
}

/// S3 unreachable while the workers start on a backlog: the jobs fail, go back to the queue with
/// a backoff (receive count and attempt rise) and complete once it is back. Then results are
/// refused (403, a broken bucket policy) for one job: it is dead-lettered after max receives with
/// its last error and its prediction FAILED; once the cause is lifted, `retainwise queue
/// redrive --all` runs it again to COMPLETED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_storage_outage_retries_then_dead_letter_and_redrive() {
    let Some(t) = TestApp::spawn_postgres_s3().await else {
        return;
    };
    let started = Instant::now();
    let proxy = S3Proxy::start(&s3_endpoint()).await;
    let env = fleet_env(&t, &proxy.url, &[]);
    let mut fleet = Fleet::start_api(&as_refs(&env)).await;
    let files = inputs();
    let offline = offline_outputs(&files);
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push((
            fleet
                .upload(&format!("c{i}.csv"), files[i % 2].clone())
                .await,
            i % 2,
        ));
    }
    let all: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();

    // Phase A: the store is unreachable when the workers start, for 5 s: longer than one
    // attempt (a refused connection uses up the S3 client's retries in about 2 s, so the first
    // attempts fail and go back to the queue), and short enough that no job uses up its three
    // receives (9 s did once: three 2 s attempts with small jittered backoffs fit in it).
    proxy.set_down(true);
    fleet.add_worker(2);
    fleet.add_worker(2);
    wait_for("the workers to start", Duration::from_secs(60), || {
        fleet
            .workers
            .iter()
            .all(|w| !w.events("worker_startup").is_empty())
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.set_down(false);
    wait_terminal(&t, &all, Duration::from_secs(120), &fleet).await;
    let rows = predictions(&t).await;
    for (id, which) in &ids {
        let (status, attempt, error) = &rows[id];
        assert_eq!(status, "COMPLETED", "{id}: attempt {attempt}, {error:?}");
        assert!(stored_result(&t, id).await == offline[*which]);
    }
    let retried: Vec<_> = rows.values().filter(|(_, a, _)| *a >= 2).collect();
    assert!(
        !retried.is_empty(),
        "no job was retried: the outage went unnoticed\n{}",
        tail(&fleet.worker_logs(), 30)
    );
    let failures = events(&fleet.worker_logs(), "message_processing_failed");
    assert!(
        failures
            .iter()
            .any(|e| e["error"].as_str().unwrap_or("").contains("object storage")),
        "{failures:?}"
    );
    assert_nothing_in_flight(&t).await;

    // Phase B: every result write refused until the operator fixes the policy.
    proxy.deny(Some("/results/".to_owned()));
    let doomed = fleet.upload("doomed.csv", files[0].clone()).await;
    wait_terminal(
        &t,
        std::slice::from_ref(&doomed),
        Duration::from_secs(120),
        &fleet,
    )
    .await;
    let (status, attempt, error) = predictions(&t).await[&doomed].clone();
    let error = error.unwrap_or_default();
    assert_eq!(status, "FAILED", "{error}");
    assert_eq!(attempt, 3, "dead-lettered after max receives (3)");
    assert!(
        error.starts_with("dead-lettered: after 3 attempts:")
            && !error.contains("object storage")
            && error.contains("contact the operator"),
        "{error}"
    );
    let dead = t.app.queue.dead(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].receive_count, 3);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Access Denied") || e.contains("403")),
        "{:?}",
        dead[0].last_error
    );
    let (ok, listing) = fleet.run(&["queue", "dead"]);
    assert!(ok && listing.contains(&dead[0].message_id), "{listing}");

    proxy.deny(None);
    let (ok, said) = fleet.run(&["queue", "redrive", "--all"]);
    assert!(ok && said.contains("redrove 1 message"), "{said}");
    wait_for(
        "the redriven job to finish",
        Duration::from_secs(60),
        || {
            let text = fleet.worker_logs();
            events(&text, "prediction_status_updated")
                .iter()
                .any(|e| e["prediction_id"] == doomed.as_str() && e["status"] == "COMPLETED")
                .then_some(())
        },
    )
    .await;
    let (status, attempt, error) = predictions(&t).await[&doomed].clone();
    assert_eq!(status, "COMPLETED", "{error:?}");
    assert_eq!(attempt, 4);
    assert!(stored_result(&t, &doomed).await == offline[0]);
    let writes = proxy.writes("/results/");
    assert_eq!(writes.len(), all.len() + 1, "{writes:?}");
    assert!(
        writes.values().all(|n| *n == 1),
        "a result was rewritten: {writes:?}"
    );
    assert_nothing_in_flight(&t).await;
    let retried_n = retried.len();
    stop_fleet(&mut fleet).await;
    loud(&format!(
        "drill (storage): 8 jobs over a 5 s S3 outage, {retried_n} retried, all COMPLETED; one job \
         dead-lettered after 3 receives, redriven, COMPLETED at attempt 4; {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}
