//! The conformance suite against Postgres, when one is available: set
//! `RETAINWISE_TEST_POSTGRES_URL=postgres://user@127.0.0.1:PORT/db`. Tests share the database
//! and are isolated by a unique queue name each.

mod conformance;

use conformance::{conformance_suite, shout, Backend, Fixture};
use retainwise_queue::{connect, Dialect, Queue, QueueConfig, SqlQueue};
use std::sync::{Arc, Once};

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
