//! Start-up wiring: from a [`Config`] to the live parts every role shares.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use retainwise_model::Model;
use retainwise_queue::{Queue, QueueConfig, SqlQueue, SqsConfig, SqsQueue};

use crate::api::Limits;
use crate::auth::Auth;
use crate::config::{Config, QueueBackend};
use crate::db::Db;
use crate::registry::Registry;
use crate::storage::Storage;

/// Name of the queue carrying prediction messages.
pub const PREDICTIONS_QUEUE: &str = "predictions";

/// The shared parts of a running retainwise: configuration, database, storage, queue, model.
/// Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Application database.
    pub db: Db,
    /// Object storage.
    pub storage: Storage,
    /// Queue of prediction messages.
    pub queue: Arc<dyn Queue>,
    /// The model the process was started with (embedded or `--model`): active until another
    /// is activated.
    pub model: &'static Model,
    /// Every registered model, loaded by id; which one is active for a user.
    pub registry: Registry,
    /// How requests are authenticated.
    pub auth: Auth,
    /// Per-IP and per-user request limits.
    pub limits: Arc<Limits>,
}

impl App {
    /// Connects the database (running migrations), opens storage and the queue, loads the model
    /// and records its card.
    ///
    /// Errors: any part unreachable or misconfigured, or a model file that does not load; the
    /// message names the part.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url)
            .await
            .with_context(|| format!("opening the database {}", redact(&config.database_url)))?;
        let storage = Storage::open(&config.storage).context("opening object storage")?;
        let queue: Arc<dyn Queue> = match &config.queue {
            QueueBackend::Database => {
                let queue_config = QueueConfig {
                    name: PREDICTIONS_QUEUE.to_owned(),
                    visibility_timeout: config.visibility_timeout,
                    max_receives: config.max_receives,
                    poll_interval: Duration::from_millis(500),
                };
                Arc::new(
                    SqlQueue::new(db.pool().clone(), db.dialect(), queue_config)
                        .await
                        .context("opening the queue")?,
                )
            }
            QueueBackend::Sqs(url) => {
                let mut sqs = SqsConfig::new(url.clone());
                sqs.visibility_timeout = config.visibility_timeout;
                sqs.max_receives = config.max_receives;
                Arc::new(
                    SqsQueue::new(db.pool().clone(), db.dialect(), sqs)
                        .await
                        .with_context(|| format!("opening the SQS queue {url}"))?,
                )
            }
        };
        let model = load_model(config.model.as_deref())?;
        let registry = Registry::new(Arc::new(model.clone()));
        if config.model.is_some() {
            // A model given by file is stored too, so workers started without the file can
            // still load the jobs queued for it.
            registry
                .register(&db, &storage, model, None)
                .await
                .context("registering the model")?;
        } else {
            let card = serde_json::to_string(model.card()).context("serialising the model card")?;
            db.upsert_model(model.id(), &card)
                .await
                .context("recording the model")?;
        }
        // The SaaS baseline is built into every process: listed so it can be seen and activated.
        let baseline = registry.baseline();
        let card =
            serde_json::to_string(baseline.card()).context("serialising the baseline card")?;
        db.upsert_model(baseline.id(), &card)
            .await
            .context("recording the baseline")?;
        crate::telemetry::handle();
        let auth = Auth::from_config(&config.auth).context("configuring sign-in")?;
        let limits = Arc::new(Limits::new(config.rate_limit_per_minute));
        Ok(Self {
            config: Arc::new(config),
            db,
            storage,
            queue,
            model,
            registry,
            auth,
            limits,
        })
    }
}

/// The embedded default model, or the artifact at `path`. A loaded artifact lives for the
/// whole process, so it is leaked once rather than reference-counted on the scoring path.
pub fn load_model(path: Option<&std::path::Path>) -> anyhow::Result<&'static Model> {
    match path {
        None => Ok(Model::embedded_default()),
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
            let model = Model::from_json_slice(&bytes)
                .with_context(|| format!("loading model {}", path.display()))?;
            Ok(Box::leak(Box::new(model)))
        }
    }
}

/// A URL with any password replaced by `***`, for messages and logs: the `user:password@` part
/// and a `password=` query parameter (libpq style) are both masked.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &base[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => {
                    format!("{}{}:***{}", &base[..scheme_end + 3], user, &base[at..])
                }
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _))
                    if key.eq_ignore_ascii_case("password")
                        || key.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&masked.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(
            super::redact("postgres://h/db?user=u&password=hunter2&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
    }
}
