//! Start-up while the database is down: a fleet started
//! together with its database — or restarted during a failover — waits for it instead of
//! exiting (`RETAINWISE_DB_CONNECT_TIMEOUT_SECS`), and says why it is waiting.

use std::time::{Duration, Instant};

use crate::fleet::{Fleet, PrivatePostgres};
use crate::helpers::*;

/// Postgres is stopped and `retainwise api` started; 4 s later Postgres starts. The API waits
/// (logging each attempt with its cause), comes up, and a job uploaded then completes. The
/// objects folder is local (the fleet's data folder), so only Postgres is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_started_while_the_database_is_down_waits_for_it() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    pg.stop();
    let url = pg.url.clone();
    let env = [("RETAINWISE_DATABASE_URL", url.as_str())];
    let started = Instant::now();
    let pg = std::sync::Arc::new(pg);
    let restart = tokio::spawn({
        let pg = pg.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            tokio::task::spawn_blocking(move || pg.start_again())
                .await
                .unwrap();
        }
    });
    // `start_api` returns once the API listens, which it can only do with the database up.
    let mut fleet = Fleet::start_api(&env).await;
    restart.await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "the API listened before the database was up"
    );
    let waits = fleet.api.events("database_unreachable");
    assert!(
        !waits.is_empty(),
        "no wait logged:\n{}",
        fleet.api.log_text()
    );
    // Each attempt is logged with its cause chain, down to the socket error.
    let cause = waits[0]["error"].as_str().unwrap_or_default();
    assert!(
        cause.contains("refused"),
        "the logged error does not say why: {cause}"
    );
    assert!(
        !fleet.api.events("database_reachable").is_empty(),
        "{}",
        fleet.api.log_text()
    );
    fleet.add_worker(1);
    let id = fleet
        .upload("customers.csv", synthetic_telco(20).into_bytes())
        .await;
    let status = wait_status(&fleet, &id, Duration::from_secs(60)).await;
    assert_eq!(status, "COMPLETED");
}

/// A worker started while the database is down waits (attempts logged with their cause),
/// comes up when it starts 4 s later, and completes a job that was queued before the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_started_while_the_database_is_down_waits_and_completes_the_queued_job() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let env = [("RETAINWISE_DATABASE_URL", pg.url.as_str())];
    let mut fleet = Fleet::start_api(&env).await;
    let id = fleet
        .upload("customers.csv", synthetic_telco(20).into_bytes())
        .await;
    pg.stop();
    let down_at = Instant::now();
    let w = fleet.add_worker(1);
    wait_until("the worker to log a wait for the database", || {
        !fleet.workers[w].events("database_unreachable").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(down_at.elapsed())).await;
    assert!(
        fleet.workers[w].is_running(),
        "the worker exited while the database was down:\n{}",
        fleet.workers[w].log_text()
    );
    pg.start_again();
    let status = wait_status(&fleet, &id, Duration::from_secs(60)).await;
    assert_eq!(status, "COMPLETED");
    let waits = fleet.workers[w].events("database_unreachable");
    let cause = waits[0]["error"].as_str().unwrap_or_default();
    assert!(
        cause.contains("refused"),
        "the logged error does not say why: {cause}"
    );
    assert!(
        waits.len() < 60,
        "{} attempts in a 4 s outage: not backing off",
        waits.len()
    );
    assert!(!fleet.workers[w].events("worker_startup").is_empty());
}

/// Polls `GET /api/predictions/{id}` (errors while the API itself reconnects are waited out)
/// until the job is COMPLETED or FAILED; its status.
async fn wait_status(fleet: &Fleet, id: &str, timeout: Duration) -> String {
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = client
            .get(format!("{}/api/predictions/{id}", fleet.base))
            .send()
            .await
        {
            if let Ok(body) = r.json::<serde_json::Value>().await {
                let status = body["prediction"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if status == "COMPLETED" || status == "FAILED" {
                    return status;
                }
            }
        }
        assert!(
            start.elapsed() < timeout,
            "prediction {id} not finished after {timeout:?}:\n{}",
            fleet.worker_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until(what: &str, mut probe: impl FnMut() -> bool) {
    let start = Instant::now();
    while !probe() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fleet starts at once on a fresh Postgres database: eight processes migrate and make the
/// audit log append-only at the same moment, three times over. Every start succeeds (two
/// concurrent catalogue changes of one function fail with "tuple concurrently updated" unless
/// they are serialised), and the log refuses UPDATE and DELETE afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_starting_at_once_on_a_fresh_postgres_all_start() {
    for round in 0..3 {
        let Some(url) = fresh_postgres_database("rw").await else {
            return;
        };
        let starts = (0..8).map(|_| retainwise::db::Db::connect(&url));
        let dbs: Vec<_> = futures::future::join_all(starts)
            .await
            .into_iter()
            .map(|db| db.unwrap_or_else(|e| panic!("round {round}: a start failed: {e:#}")))
            .collect();
        // A row-level trigger only fires on a row.
        sqlx::raw_sql(
            "INSERT INTO audit_log (id, seq, action, outcome, created_at) \
             VALUES ('e1', 1, 'upload', 'ok', 0)",
        )
        .execute(dbs[0].pool())
        .await
        .expect("append an entry");
        for sql in [
            "UPDATE audit_log SET outcome = 'refused'",
            "DELETE FROM audit_log",
        ] {
            assert!(
                sqlx::raw_sql(sql).execute(dbs[0].pool()).await.is_err(),
                "round {round}: {sql} was allowed"
            );
        }
        for db in dbs {
            db.pool().close().await;
        }
    }
}
