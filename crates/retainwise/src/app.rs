//! Start-up wiring: from a [`Config`] to the live parts every role shares.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use retainwise_model::Model;
use retainwise_queue::{Queue, QueueConfig, SqlQueue, SqsConfig, SqsQueue};

use crate::auth::Auth;
use crate::config::{Config, QueueBackend};
use crate::db::Db;
use crate::http::Limits;
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
        Self::open_migrating(config, true).await
    }

    /// [`App::open`]; with `migrate` false no migration is applied: the database must already
    /// hold every migration of this build (`retainwise migrate`), else this fails naming them
    /// (`--no-migrate`, see [`crate::ops::migrations::check`]).
    pub async fn open_migrating(config: Config, migrate: bool) -> anyhow::Result<Self> {
        let db = connect_waiting(&config.database_url, config.db_connect_timeout, migrate)
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
                    migrate,
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
                sqs.migrate = migrate;
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
        let auth = Auth::from_config(&config.auth, &config.jwt_org_claim)
            .context("configuring sign-in")?;
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

/// First and largest pause between start-up attempts to reach the database (before jitter).
const CONNECT_RETRY_BASE: Duration = Duration::from_millis(250);
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(5);
/// Full jitter may draw zero; a floor keeps a long outage from turning into a hot loop.
const CONNECT_RETRY_MIN: Duration = Duration::from_millis(100);

/// [`Db::connect`], tried again while the database is unreachable (refused or dropped
/// connections, a server still starting or shutting down, too many clients) with exponential
/// backoff and full jitter, for at most `timeout` in all. Each failed attempt is logged as
/// `database_unreachable` with its whole cause chain; a configuration error (bad URL, refused
/// password, missing database, failed migration) is returned at once, since waiting cannot
/// fix it.
///
/// Errors: the last attempt's error, with how long and how often it was tried when it gave up.
pub(crate) async fn connect_waiting(
    url: &str,
    timeout: Duration,
    migrate: bool,
) -> anyhow::Result<Db> {
    let started = std::time::Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let connected = match probe(url).await {
            Ok(()) => Db::open(url, migrate).await,
            Err(error) => Err(error),
        };
        let error = match connected {
            Ok(db) => {
                if attempt > 1 {
                    tracing::info!(
                        attempts = attempt,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "database_reachable"
                    );
                }
                return Ok(db);
            }
            Err(error) => error,
        };
        let waited = started.elapsed();
        if !is_unreachable(&error) {
            return Err(error);
        }
        if waited >= timeout {
            return Err(error.context(format!(
                "the database was unreachable for {:.0} s ({attempt} attempts; \
                 RETAINWISE_DB_CONNECT_TIMEOUT_SECS={})",
                waited.as_secs_f64(),
                timeout.as_secs()
            )));
        }
        let pause = retainwise_queue::backoff(attempt, CONNECT_RETRY_BASE, CONNECT_RETRY_MAX)
            .max(CONNECT_RETRY_MIN)
            .min(timeout - waited);
        tracing::warn!(
            attempt,
            error = crate::error_chain::chain_anyhow(&error),
            retry_in_ms = pause.as_millis() as u64,
            "database_unreachable"
        );
        tokio::time::sleep(pause).await;
    }
}

/// Longest wait for one connection attempt (a server that drops packets answers nothing).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection attempt, no pool, to a server database (a SQLite file needs no probe):
/// sqlx's pool retries a refused connection silently until its acquire timeout (30 s) and then
/// reports only "pool timed out", while a single attempt fails at once with the socket's own
/// error — which is what the wait loop should log.
async fn probe(url: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    if crate::config::sqlite_path(url).is_some() || url.starts_with("sqlite:") {
        return Ok(());
    }
    sqlx::any::install_default_drivers();
    match tokio::time::timeout(PROBE_TIMEOUT, sqlx::AnyConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("connecting")),
        Err(_) => Err(anyhow::Error::new(ProbeTimedOut(PROBE_TIMEOUT))),
    }
}

/// A connection attempt that got no answer within the probe timeout.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
struct ProbeTimedOut(Duration);

/// Whether a start-up error means "not reachable yet" rather than "misconfigured": an I/O
/// error, a pool timeout, or a server answering with SQLSTATE class 08 (connection exception),
/// 57P01–57P03 (shutting down, crash recovery, starting up) or 53300 (too many connections).
/// SQLSTATE codes: PostgreSQL documentation, Appendix A.
fn is_unreachable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            _ if cause.is::<ProbeTimedOut>() => true,
            Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)) => true,
            Some(sqlx::Error::Database(db)) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
            }),
            _ => false,
        })
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

/// Removes, at start and then hourly, the staged parts of local uploads that a killed process
/// left behind ([`Storage::remove_abandoned_parts`]); an hour is far beyond the request timeout,
/// so no upload in progress loses its part. Started by the long-running roles (`serve`, `api`,
/// `worker`), not by every command that opens the app. With `uploads` (the roles that serve the
/// API), also [`sweep_expired_uploads`] on that database.
pub fn spawn_part_sweeper(storage: Storage, uploads: Option<crate::db::Db>) {
    const IDLE: Duration = Duration::from_secs(3600);
    tokio::spawn(async move {
        loop {
            match storage.remove_abandoned_parts(IDLE).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed parts of abandoned uploads"),
                Err(e) => tracing::warn!(error = %e, "could not sweep parts of abandoned uploads"),
            }
            if let Some(db) = &uploads {
                match sweep_expired_uploads(db, &storage).await {
                    Ok(0) => {}
                    Ok(expired) => tracing::info!(expired, "removed expired direct uploads"),
                    Err(e) => tracing::warn!(error = %e, "could not sweep expired direct uploads"),
                }
            }
            tokio::time::sleep(IDLE).await;
        }
    });
}

/// Queues today's retention runs (`crate::retention::schedule`), at start and then hourly, so a
/// run is queued within the hour after a UTC day begins; every long-running role (`serve`,
/// `api`, `worker`) does, and the runs' UNIQUE (organisation, day) key keeps it to one run per
/// organisation per day however many processes try. The API's pass also wakes a fleet scaled to
/// zero on its queue's depth.
pub fn spawn_retention_scheduler(app: App) {
    const EVERY: Duration = Duration::from_secs(3600);
    tokio::spawn(async move {
        loop {
            match crate::retention::schedule(&app, &crate::time::SystemClock).await {
                Ok(0) => {}
                Ok(queued) => tracing::info!(queued, "retention runs queued"),
                Err(e) => tracing::warn!(
                    error = crate::error_chain::chain_anyhow(&e),
                    "queueing retention runs failed; the next pass tries again"
                ),
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}

/// Removes the bytes of direct uploads (`POST /api/uploads`) still PENDING past their expiry
/// ([`crate::api::direct_upload::UPLOAD_LIFETIME`] after creation) — local parts, an S3
/// multipart upload (aborted), an object sent but never completed — and marks them EXPIRED;
/// returns how many. Run by [`spawn_part_sweeper`], at start and hourly, so an upload's bytes
/// are gone at most an hour after it expires.
///
/// # Errors
/// The database or storage; an upload whose bytes could not be removed stays PENDING and is
/// tried again at the next sweep.
pub async fn sweep_expired_uploads(db: &crate::db::Db, storage: &Storage) -> anyhow::Result<usize> {
    let mut expired = 0;
    loop {
        let rows = db.expired_direct_uploads(100).await?;
        if rows.is_empty() {
            return Ok(expired);
        }
        let mut progressed = false;
        for row in rows {
            let (Ok(user), Ok(upload)) = (
                row.user_id.parse::<crate::domain::OrgId>(),
                row.id.parse::<crate::domain::UploadId>(),
            ) else {
                progressed |= db.expire_direct_upload(&row.id).await?;
                continue;
            };
            let key = crate::domain::ObjectKey::upload(&user, upload);
            if let Some(multipart) = &row.multipart_id {
                storage.abort_multipart(&key, multipart).await?;
            }
            storage.remove_incoming(&key).await?;
            storage.delete(&key).await?;
            if db.expire_direct_upload(&row.id).await? {
                expired += 1;
                progressed = true;
            }
        }
        if !progressed {
            return Ok(expired);
        }
    }
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
