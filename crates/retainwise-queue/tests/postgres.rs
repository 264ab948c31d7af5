//! The conformance suite against Postgres, when one is available: set
//! `RETAINWISE_TEST_POSTGRES_URL=postgres://user@127.0.0.1:PORT/db`. Tests share the database
//! and are isolated by a unique queue name each.

mod conformance;

use conformance::{conformance_suite, shout, Backend, Fixture};
use retainwise_queue::{
    connect, Dialect, OutgoingMessage, Queue, QueueConfig, QueueStats, SqlQueue,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

const URL_VAR: &str = "RETAINWISE_TEST_POSTGRES_URL";

struct Postgres {
    url: String,
}

/// `None` (and one loud line) unless a URL is given (`scripts/test-services.sh` starts one).
fn postgres() -> Option<Postgres> {
    static SKIP_NOTICE: Once = Once::new();
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(Postgres { url }),
        _ => {
            SKIP_NOTICE.call_once(|| {
                shout("SKIPPED postgres conformance: RETAINWISE_TEST_POSTGRES_URL not set")
            });
            None
        }
    }
}

#[async_trait::async_trait]
impl Backend for Postgres {
    async fn open(&self, mut config: QueueConfig, handles: usize) -> Fixture {
        config.name = format!("{}-{}", config.name, uuid::Uuid::new_v4());
        let mut queues: Vec<Arc<dyn Queue>> = Vec::new();
        let mut first_pool = None;
        for _ in 0..handles {
            let (pool, dialect) = connect(&self.url).await.unwrap();
            assert_eq!(dialect, Dialect::Postgres);
            first_pool.get_or_insert_with(|| pool.clone());
            queues.push(Arc::new(
                SqlQueue::new(pool, dialect, config.clone()).await.unwrap(),
            ));
        }
        Fixture {
            queues,
            pool: first_pool.unwrap(),
            guard: Box::new(()),
        }
    }
}

conformance_suite!(postgres());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_many_spans_statements() {
    if let Some(pg) = postgres() {
        conformance::ack_many_spans_statements(&pg).await;
    }
}

// ---- LISTEN/NOTIFY: wake-ups across processes (separate handles, separate pools) ----

/// Polling so slow that only a notification can explain a prompt wake-up.
const NO_POLLING: Duration = Duration::from_secs(60);

fn listen_config(name: &str, poll_interval: Duration) -> QueueConfig {
    QueueConfig {
        name: name.to_owned(),
        visibility_timeout: Duration::from_secs(60),
        max_receives: 3,
        poll_interval,
        migrate: true,
    }
}

/// A handle with its own pool, as another process would have.
async fn handle(url: &str, config: QueueConfig) -> SqlQueue {
    let (pool, dialect) = connect(url).await.unwrap();
    SqlQueue::new(pool, dialect, config).await.unwrap()
}

async fn wait_listening(q: &SqlQueue) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !q.is_listening() {
        assert!(Instant::now() < deadline, "listener not up after 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A receive blocked with a long wait in one handle returns within tens of milliseconds of a
/// send from another handle (polling alone would take a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_a_receiver_in_another_handle_within_tens_of_ms() {
    let Some(pg) = postgres() else { return };
    let name = format!("listen-{}", uuid::Uuid::new_v4());
    let sender = handle(&pg.url, listen_config(&name, NO_POLLING)).await;
    let receiver = handle(&pg.url, listen_config(&name, NO_POLLING)).await;
    wait_listening(&receiver).await;
    let mut latencies = Vec::new();
    for i in 0..15 {
        let waiting = {
            let receiver = receiver.clone();
            tokio::spawn(async move {
                let got = receiver.receive(1, Duration::from_secs(30)).await.unwrap();
                (got, Instant::now())
            })
        };
        // Let the receive find the queue empty and start waiting.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sent = Instant::now();
        let id = sender
            .send(&OutgoingMessage::new(format!("m{i}")))
            .await
            .unwrap();
        let (got, woke) = waiting.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message_id, id);
        receiver.ack(&got[0].receipt).await.unwrap();
        latencies.push(woke - sent);
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    eprintln!("send → receive in another handle: median {median:?}, worst {worst:?}");
    assert!(
        median < Duration::from_millis(50),
        "median {median:?}: {latencies:?}"
    );
    assert!(
        worst < Duration::from_millis(500),
        "worst {worst:?}: {latencies:?}"
    );
}

/// The notification is part of the sender's transaction: nothing wakes while it is open, the
/// receiver wakes at once when it commits, and a rolled-back send wakes nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_fires_on_commit_only() {
    let Some(pg) = postgres() else { return };
    let name = format!("listen-{}", uuid::Uuid::new_v4());
    let sender = handle(&pg.url, listen_config(&name, NO_POLLING)).await;
    let receiver = handle(&pg.url, listen_config(&name, NO_POLLING)).await;
    wait_listening(&receiver).await;

    let mut tx = sender.pool().begin().await.unwrap();
    sender
        .send_in(&mut tx, &OutgoingMessage::new("never"))
        .await
        .unwrap();
    let got = receiver
        .receive(1, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(got.is_empty(), "visible before commit: {got:?}");
    tx.rollback().await.unwrap();
    let got = receiver
        .receive(1, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(got.is_empty(), "a rolled-back send was delivered: {got:?}");

    let waiting = {
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let got = receiver.receive(1, Duration::from_secs(30)).await.unwrap();
            (got, Instant::now())
        })
    };
    let mut tx = sender.pool().begin().await.unwrap();
    let id = sender
        .send_in(&mut tx, &OutgoingMessage::new("committed"))
        .await
        .unwrap();
    // Held open: the receiver must still be waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "woke before the commit");
    let committed = Instant::now();
    tx.commit().await.unwrap();
    let (got, woke) = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);
    assert!(
        woke - committed < Duration::from_millis(500),
        "woke {:?} after commit",
        woke - committed
    );
}

/// With the listener unable to connect (the role's connection limit is used up by the pool),
/// receivers still find other handles' messages by polling; and a listener whose connection is
/// killed reconnects and wakes receivers promptly again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_covers_a_listener_that_is_down_and_the_listener_reconnects() {
    let Some(pg) = postgres() else { return };
    let name = format!("listen-{}", uuid::Uuid::new_v4());
    let (admin, _) = connect(&pg.url).await.unwrap();
    let role = format!("rw_{}", uuid::Uuid::new_v4().simple());
    // Not a superuser: superusers ignore CONNECTION LIMIT.
    for sql in [
        format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 1"),
        format!("GRANT ALL ON SCHEMA public TO {role}"),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::query(&sql).execute(&admin).await.unwrap();
    }
    let limited_url = with_user(&pg.url, &role);

    // One connection for the pool; the listener's own connection is refused.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect(&limited_url)
        .await
        .unwrap();
    let poll = Duration::from_millis(300);
    let receiver = SqlQueue::new(pool, Dialect::Postgres, listen_config(&name, poll))
        .await
        .unwrap();
    let sender = handle(&pg.url, listen_config(&name, NO_POLLING)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !receiver.is_listening(),
        "the listener should be refused a connection"
    );
    let waiting = {
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let got = receiver.receive(1, Duration::from_secs(30)).await.unwrap();
            (got, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = sender.send(&OutgoingMessage::new("polled")).await.unwrap();
    let (got, waited) = waiting.await.unwrap();
    assert_eq!(got.len(), 1, "polling found nothing");
    assert_eq!(got[0].message_id, id);
    assert!(waited < Duration::from_secs(2), "polling took {waited:?}");
    receiver.ack(&got[0].receipt).await.unwrap();
    assert!(!receiver.is_listening());
    drop(receiver);

    // A normal handle: kill its listener's connection; it must come back by itself.
    let app = format!("rw-listen-{}", uuid::Uuid::new_v4().simple());
    let url = with_param(&pg.url, "application_name", &app);
    let receiver = handle(&url, listen_config(&name, NO_POLLING)).await;
    wait_listening(&receiver).await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&app)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(killed, 1, "exactly the listener's connection is killed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while receiver.is_listening() {
        assert!(Instant::now() < deadline, "the listener did not notice");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_listening(&receiver).await;
    let waiting = {
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let got = receiver.receive(1, Duration::from_secs(30)).await.unwrap();
            (got, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = Instant::now();
    let id = sender
        .send(&OutgoingMessage::new("after reconnect"))
        .await
        .unwrap();
    let (got, woke) = waiting.await.unwrap();
    assert_eq!(got[0].message_id, id);
    assert!(
        woke - sent < Duration::from_millis(500),
        "woke {:?} after send",
        woke - sent
    );
}

/// `postgres://user@host…` → the same URL with another user (the test cluster trusts loopback).
fn with_user(url: &str, user: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("postgres://{user}@{host}")
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

// ---- Exactly once under concurrent receivers in several handles ----

/// N messages, 4 handles (separate pools) × 4 receivers each, sends from another handle while
/// they run, some receivers acknowledging one by one and some in batches: every message is
/// processed exactly once and nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receivers_in_several_handles_process_every_message_exactly_once() {
    let Some(pg) = postgres() else { return };
    const N: usize = 3000;
    let name = format!("exactly-once-{}", uuid::Uuid::new_v4());
    let sender = handle(&pg.url, listen_config(&name, Duration::from_millis(200))).await;
    let processed = Arc::new(Mutex::new(HashMap::<String, u32>::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut receivers = Vec::new();
    for h in 0..4 {
        let q = handle(&pg.url, listen_config(&name, Duration::from_millis(200))).await;
        for r in 0..4 {
            let (q, processed, done) = (q.clone(), processed.clone(), done.clone());
            let batched = (h + r) % 2 == 0;
            receivers.push(tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                while done.load(Ordering::SeqCst) < N && Instant::now() < deadline {
                    let got = q.receive(10, Duration::from_millis(200)).await.unwrap();
                    for d in &got {
                        *processed.lock().unwrap().entry(d.body.clone()).or_default() += 1;
                    }
                    if batched {
                        let receipts: Vec<_> = got.iter().map(|d| d.receipt.clone()).collect();
                        for result in q.ack_many(&receipts).await.unwrap() {
                            result.unwrap();
                        }
                    } else {
                        for d in &got {
                            q.ack(&d.receipt).await.unwrap();
                        }
                    }
                    done.fetch_add(got.len(), Ordering::SeqCst);
                }
            }));
        }
    }
    for i in 0..N {
        sender
            .send(&OutgoingMessage::new(format!("job-{i}")))
            .await
            .unwrap();
    }
    for r in receivers {
        r.await.unwrap();
    }
    let processed = processed.lock().unwrap().clone();
    let twice: Vec<_> = processed.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "processed more than once: {twice:?}");
    assert_eq!(processed.len(), N, "messages lost");
    for i in 0..N {
        assert!(
            processed.contains_key(&format!("job-{i}")),
            "job-{i} never processed"
        );
    }
    assert_eq!(sender.stats().await.unwrap(), QueueStats::default());
}
