//! The conformance suite and SQL-specific checks on real SQLite files.

mod conformance;

use conformance::{conformance_suite, Backend, Fixture};
use retainwise_queue::{connect, Dialect, Queue, QueueConfig, QueueError, SqlQueue};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

struct Sqlite;

#[async_trait::async_trait]
impl Backend for Sqlite {
    async fn open(&self, config: QueueConfig, handles: usize) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/queue.db", dir.path().display());
        let mut queues: Vec<Arc<dyn Queue>> = Vec::new();
        let mut first_pool = None;
        // One after the other: migrations on a fresh SQLite file are not safe to race.
        for _ in 0..handles {
            let (pool, dialect) = connect(&url).await.unwrap();
            assert_eq!(dialect, Dialect::Sqlite);
            first_pool.get_or_insert_with(|| pool.clone());
            queues.push(Arc::new(
                SqlQueue::new(pool, dialect, config.clone()).await.unwrap(),
            ));
        }
        Fixture {
            queues,
            pool: first_pool.unwrap(),
            guard: Box::new(dir),
        }
    }
}

conformance_suite!(Some(Sqlite));

async fn open(dir: &tempfile::TempDir, config: QueueConfig) -> SqlQueue {
    let url = format!("sqlite://{}/q.db", dir.path().display());
    let (pool, dialect) = connect(&url).await.unwrap();
    SqlQueue::new(pool, dialect, config).await.unwrap()
}

#[tokio::test]
async fn connect_creates_the_file_and_applies_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/retainwise.db");
    let (pool, dialect) = connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(dialect, Dialect::Sqlite);
    assert!(path.exists());
    let pragma = |name: &'static str| {
        let pool = pool.clone();
        async move {
            let row = sqlx::query(&format!("PRAGMA {name}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            match row.try_get::<String, _>(0) {
                Ok(s) => s,
                Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
            }
        }
    };
    assert_eq!(pragma("journal_mode").await, "wal");
    assert_eq!(pragma("busy_timeout").await, "10000");
    assert_eq!(pragma("synchronous").await, "1"); // NORMAL
    assert_eq!(pragma("foreign_keys").await, "1");
    assert_eq!(pool.options().get_max_connections(), 1);
}

#[tokio::test]
async fn in_memory_database_keeps_its_data() {
    let (pool, dialect) = connect("sqlite::memory:").await.unwrap();
    let q = SqlQueue::new(pool, dialect, QueueConfig::default())
        .await
        .unwrap();
    let id = q
        .send(&retainwise_queue::OutgoingMessage::new("m"))
        .await
        .unwrap();
    let got = q.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(got[0].message_id, id);
}

#[tokio::test]
async fn unsupported_urls_are_rejected() {
    for url in ["mysql://localhost/db", "db", "", "file:///tmp/x.db"] {
        match connect(url).await {
            Err(QueueError::InvalidUrl(u)) => assert_eq!(u, url),
            other => panic!(
                "{url}: expected InvalidUrl, got {:?}",
                other.map(|(_, d)| d)
            ),
        }
    }
}

/// The application runs its own migrator on the same database; each must ignore the other's
/// versions, in either order, and re-running is harmless.
#[tokio::test]
async fn migrations_coexist_with_another_migrator() {
    let dir = tempfile::tempdir().unwrap();
    let app_migrations = dir.path().join("app-migrations");
    std::fs::create_dir(&app_migrations).unwrap();
    std::fs::write(
        app_migrations.join("20261130100001_app.sql"),
        "CREATE TABLE app_rows (id TEXT PRIMARY KEY);",
    )
    .unwrap();
    let mut app = sqlx::migrate::Migrator::new(app_migrations.as_path())
        .await
        .unwrap();
    app.set_ignore_missing(true);

    let url = format!("sqlite://{}/q.db", dir.path().display());
    let (pool, dialect) = connect(&url).await.unwrap();
    app.run(&pool).await.unwrap();
    SqlQueue::new(pool.clone(), dialect, QueueConfig::default())
        .await
        .unwrap();
    app.run(&pool).await.unwrap();
    let q = SqlQueue::new(pool.clone(), dialect, QueueConfig::default())
        .await
        .unwrap();
    q.send(&retainwise_queue::OutgoingMessage::new("m"))
        .await
        .unwrap();
    assert_eq!(q.stats().await.unwrap().depth, 1);
}

#[tokio::test]
async fn queue_names_do_not_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(
        &dir,
        QueueConfig {
            name: "a".into(),
            ..QueueConfig::default()
        },
    )
    .await;
    let b = SqlQueue::new(
        a.pool().clone(),
        Dialect::Sqlite,
        QueueConfig {
            name: "b".into(),
            ..QueueConfig::default()
        },
    )
    .await
    .unwrap();
    let id = a
        .send(&retainwise_queue::OutgoingMessage::new("for a"))
        .await
        .unwrap();
    assert!(b.receive(10, Duration::ZERO).await.unwrap().is_empty());
    assert_eq!(b.stats().await.unwrap().depth, 0);
    assert_eq!(b.redrive(None).await.unwrap(), 0);
    let d = a.receive(1, Duration::ZERO).await.unwrap().pop().unwrap();
    assert_eq!(d.message_id, id);
    // b cannot ack a's message even with a's receipt.
    assert!(b.ack(&d.receipt).await.unwrap_err().is_lease_lost());
    a.ack(&d.receipt).await.unwrap();
}

/// SQL-backend choice (documented in the crate docs): like SQS, a receipt whose lease ran out
/// but whose message nobody received again is still accepted.
#[tokio::test]
async fn expired_but_unclaimed_receipt_still_acks() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(
        &dir,
        QueueConfig {
            visibility_timeout: Duration::from_millis(100),
            ..QueueConfig::default()
        },
    )
    .await;
    q.send(&retainwise_queue::OutgoingMessage::new("m"))
        .await
        .unwrap();
    let d = q.receive(1, Duration::ZERO).await.unwrap().pop().unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        q.stats().await.unwrap().depth,
        1,
        "expired lease: visible again"
    );
    q.extend(&d.receipt, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        q.stats().await.unwrap().in_flight,
        1,
        "extend re-took the lease"
    );
    q.ack(&d.receipt).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), Default::default());
}

/// Rough figures, not a benchmark: `cargo test -p retainwise-queue --test sqlite -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints figures"]
async fn measure_throughput() {
    const N: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, QueueConfig::default()).await;
    let start = std::time::Instant::now();
    for i in 0..N {
        q.send(&retainwise_queue::OutgoingMessage::new(format!(
            "{{\"n\":{i}}}"
        )))
        .await
        .unwrap();
    }
    let send = start.elapsed();
    let start = std::time::Instant::now();
    let mut done = 0;
    while done < N {
        for d in q.receive(10, Duration::ZERO).await.unwrap() {
            q.ack(&d.receipt).await.unwrap();
            done += 1;
        }
    }
    let consume = start.elapsed();

    // The claim must not slow down with the backlog: 100k waiting, consume 5k of them.
    const BACKLOG: usize = 100_000;
    let mut tx = q.pool().begin().await.unwrap();
    for i in 0..BACKLOG {
        q.send_in(
            &mut tx,
            &retainwise_queue::OutgoingMessage::new(format!("{{\"n\":{i}}}")),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let start = std::time::Instant::now();
    let mut done = 0;
    while done < N {
        for d in q.receive(10, Duration::ZERO).await.unwrap() {
            q.ack(&d.receipt).await.unwrap();
            done += 1;
        }
    }
    let consume_backlog = start.elapsed();
    let start = std::time::Instant::now();
    let stats = q.stats().await.unwrap();
    let stats_time = start.elapsed();
    assert_eq!(stats.depth, (BACKLOG - N) as u64);
    conformance::shout(&format!(
        "sqlite: {N} sends (one transaction each) {:.0}/s; receive(10)+ack {:.0} msgs/s; \
         with a {BACKLOG} backlog {:.0} msgs/s; stats() over {} rows {stats_time:?}",
        N as f64 / send.as_secs_f64(),
        N as f64 / consume.as_secs_f64(),
        N as f64 / consume_backlog.as_secs_f64(),
        BACKLOG - N,
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_many_spans_statements() {
    conformance::ack_many_spans_statements(&Sqlite).await;
}

/// `migrate: false` (a process started with `--no-migrate`) changes no schema: on an empty
/// database the queue's tables stay absent, and opening with `migrate: true` creates them.
#[tokio::test]
async fn a_queue_opened_without_migrating_creates_no_table() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    let (pool, dialect) = connect(&url).await.unwrap();
    let tables = || async {
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
    };
    let config = QueueConfig {
        migrate: false,
        ..QueueConfig::default()
    };
    SqlQueue::new(pool.clone(), dialect, config).await.unwrap();
    assert_eq!(tables().await, Vec::<String>::new());
    SqlQueue::new(pool.clone(), dialect, QueueConfig::default())
        .await
        .unwrap();
    assert!(tables().await.contains(&"queue_messages".to_owned()));
}
