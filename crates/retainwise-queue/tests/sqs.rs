//! The conformance suite against SQS, when a compatible server is available: set
//! `RETAINWISE_TEST_SQS_ENDPOINT=http://127.0.0.1:PORT` (a moto server; `scripts/test-services.sh`
//! starts one). Every test creates its own queue and dead-letter queue with `sqs::setup`, and its
//! own SQLite file for the outbox and lease table.
//!
//! Skipped cases (see `Capabilities`): priority order (SQS has none) and dead-lettering 200 ms
//! after a lease expires (SQS leases are whole seconds and the redrive policy acts at the next
//! receive).

mod conformance;

use conformance::{conformance_suite, shout, Backend, Capabilities, Fixture};
use retainwise_queue::sqs::{setup, QueueUrls};
use retainwise_queue::{connect, Queue, QueueConfig, SqsConfig, SqsQueue};
use std::sync::{Arc, Once};
use std::time::Duration;

const ENDPOINT_VAR: &str = "RETAINWISE_TEST_SQS_ENDPOINT";

struct Sqs {
    endpoint: String,
    /// The SQL database of the outbox and lease table: a fresh SQLite file per test when
    /// `None`, else this (shared) Postgres database.
    database: Option<String>,
}

/// `None` (and one loud line) unless an endpoint is given.
fn sqs() -> Option<Sqs> {
    static SKIP_NOTICE: Once = Once::new();
    match std::env::var(ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.is_empty() => Some(Sqs {
            endpoint,
            database: None,
        }),
        _ => {
            SKIP_NOTICE.call_once(|| {
                shout("SKIPPED sqs conformance: RETAINWISE_TEST_SQS_ENDPOINT not set")
            });
            None
        }
    }
}

impl Sqs {
    /// A client for the test server with fixed credentials (moto accepts any), so the tests
    /// neither need nor touch the developer's AWS configuration.
    fn client(&self) -> aws_sdk_sqs::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "retainwise-test",
            ))
            .endpoint_url(&self.endpoint)
            .http_client(http)
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    async fn queue(&self, config: &QueueConfig) -> (aws_sdk_sqs::Client, QueueUrls) {
        let client = self.client();
        let name = format!("rw-{}-{}", config.name, uuid::Uuid::new_v4().simple());
        let urls = setup(
            &client,
            &name,
            config.visibility_timeout,
            config.max_receives,
        )
        .await
        .unwrap();
        (client, urls)
    }
}

#[async_trait::async_trait]
impl Backend for Sqs {
    async fn open(&self, config: QueueConfig, handles: usize) -> Fixture {
        let (client, urls) = self.queue(&config).await;
        let dir = tempfile::tempdir().unwrap();
        let url = match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}/outbox.db", dir.path().display()),
        };
        let mut queues: Vec<Arc<dyn Queue>> = Vec::new();
        let mut first_pool = None;
        for _ in 0..handles {
            let (pool, dialect) = connect(&url).await.unwrap();
            first_pool.get_or_insert_with(|| pool.clone());
            let sqs_config = SqsConfig {
                dlq_url: Some(urls.dlq_url.clone()),
                visibility_timeout: config.visibility_timeout,
                max_receives: config.max_receives,
                ..SqsConfig::new(urls.queue_url.clone())
            };
            queues.push(Arc::new(
                SqsQueue::with_client(pool, dialect, client.clone(), sqs_config)
                    .await
                    .unwrap(),
            ));
        }
        Fixture {
            queues,
            pool: first_pool.unwrap(),
            guard: Box::new(dir),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            priority_order: false,
            sub_second_visibility: false,
            uncounted_release: false,
        }
    }
}

conformance_suite!(sqs());

/// The outbox and lease statements on Postgres (the suite above keeps them in SQLite): a few
/// cases that go through every statement, when both servers are available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_and_leases_on_postgres() {
    let Some(mut sqs) = sqs() else { return };
    let Some(url) = std::env::var("RETAINWISE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return shout("SKIPPED sqs outbox on postgres: RETAINWISE_TEST_POSTGRES_URL not set");
    };
    sqs.database = Some(url);
    conformance::send_in_rolled_back_sends_nothing(&sqs).await;
    conformance::send_receive_ack(&sqs).await;
    conformance::stale_receipt_is_rejected_and_deletes_nothing(&sqs).await;
    conformance::dead_letter_after_max_receives_keeps_last_error(&sqs).await;
    conformance::redrive_by_id(&sqs).await;
    conformance::stats_counts_every_bucket(&sqs).await;
    conformance::concurrent_receivers_never_share_a_message(&sqs).await;
}

/// Without `dlq_url`, the queue finds its DLQ through the RedrivePolicy `setup` wrote.
#[tokio::test]
async fn dlq_is_discovered_from_the_redrive_policy() {
    let Some(sqs) = sqs() else { return };
    let config = QueueConfig::default();
    let (client, urls) = sqs.queue(&config).await;
    let (pool, dialect) = connect("sqlite::memory:").await.unwrap();
    let q = SqsQueue::with_client(pool, dialect, client, SqsConfig::new(&urls.queue_url))
        .await
        .unwrap();
    assert_eq!(q.dlq_url(), urls.dlq_url);
}

/// A publish that fails stays in the outbox and is retried: here the relay's first attempts go
/// to a queue that does not exist yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_retries_until_the_queue_exists() {
    let Some(sqs) = sqs() else { return };
    let client = sqs.client();
    let name = format!("rw-late-{}", uuid::Uuid::new_v4().simple());
    let dlq = setup(&client, &format!("{name}-x"), Duration::from_secs(30), 3)
        .await
        .unwrap()
        .dlq_url;
    // The URL the queue will have once created (moto: same host, same account).
    let queue_url = dlq.replace(&format!("{name}-x-dlq"), &name);
    let (pool, dialect) = connect("sqlite::memory:").await.unwrap();
    let q = SqsQueue::with_client(
        pool,
        dialect,
        client.clone(),
        SqsConfig {
            dlq_url: Some(dlq),
            ..SqsConfig::new(&queue_url)
        },
    )
    .await
    .unwrap();
    let id = q
        .send(&retainwise_queue::OutgoingMessage::new("patient"))
        .await
        .unwrap();
    client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap();
    let d = q.receive(1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(d.len(), 1, "the relay republished within 10 s");
    assert_eq!(d[0].message_id, id);
}

/// `SqsQueue::new` builds its client from the standard AWS configuration chain, with the
/// endpoint and region overrides of `SqsConfig`. Needs credentials in the environment
/// (`scripts/test-services.sh` exports the S3 server's; moto accepts any).
#[tokio::test]
async fn new_builds_its_client_from_the_environment() {
    let Some(sqs) = sqs() else { return };
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        return shout("SKIPPED sqs SqsQueue::new: AWS_ACCESS_KEY_ID not set");
    }
    let (_, urls) = sqs.queue(&QueueConfig::default()).await;
    let (pool, dialect) = connect("sqlite::memory:").await.unwrap();
    let q = SqsQueue::new(
        pool,
        dialect,
        SqsConfig {
            endpoint_url: Some(sqs.endpoint.clone()),
            region: Some("us-east-1".to_owned()),
            ..SqsConfig::new(&urls.queue_url)
        },
    )
    .await
    .unwrap();
    assert_eq!(q.dlq_url(), urls.dlq_url);
    let id = q
        .send(&retainwise_queue::OutgoingMessage::new("via new"))
        .await
        .unwrap();
    let d = q.receive(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(d[0].message_id, id);
    q.ack(&d[0].receipt).await.unwrap();
}
