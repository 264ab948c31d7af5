//! One typed configuration, read once at start-up from flags and environment (DESIGN §6).
//!
//! Every setting has a `RETAINWISE_*` variable; the original service's names (`DATABASE_URL`,
//! `S3_BUCKET`/`PREDICTIONS_BUCKET`, `PREDICTIONS_QUEUE_URL` with `ENABLE_SQS=true`) are honoured
//! as fallbacks so an existing deployment can switch images. Nothing set means the embedded
//! default: SQLite and a folder under `./retainwise-data`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use retainwise_model::RiskThresholds;

/// Smallest part of a multipart upload S3 accepts (all but the last part), in bytes (AWS S3 user
/// guide, "Amazon S3 multipart upload limits").
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Largest part S3 accepts, in bytes (same source).
pub const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Settings shared by `serve`, `api`, `worker` and `queue`: where the data lives and how the queue
/// behaves. Parsed by clap from flags, then from the named environment variables.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Folder for the embedded default (SQLite database + objects folder).
    #[arg(long, env = "RETAINWISE_DATA_DIR", default_value = "./retainwise-data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` (default `sqlite://{data_dir}/retainwise.db`) or `postgres://…`.
    /// Falls back to `DATABASE_URL`.
    #[arg(long, env = "RETAINWISE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Object storage: a folder path, `file:///abs/path` or `s3://bucket/prefix` (default
    /// `{data_dir}/objects`). Falls back to `S3_BUCKET` / `PREDICTIONS_BUCKET`.
    #[arg(long, env = "RETAINWISE_STORAGE_URL", hide_env_values = true)]
    pub storage_url: Option<String>,
    /// Queue: `db` (the database's own queue tables; the default) or an SQS queue URL.
    /// Falls back to `PREDICTIONS_QUEUE_URL` when `ENABLE_SQS=true`.
    #[arg(long, env = "RETAINWISE_QUEUE_URL", hide_env_values = true)]
    pub queue_url: Option<String>,
    /// Seconds a received message stays invisible to other workers; the worker's heartbeat
    /// extends it while a job runs, so this bounds how long a crashed worker's job waits.
    #[arg(long, env = "RETAINWISE_VISIBILITY_TIMEOUT_SECS", default_value_t = 30)]
    pub visibility_timeout_secs: u64,
    /// Receives after which a message is moved to the dead-letter store.
    #[arg(long, env = "RETAINWISE_MAX_RECEIVES", default_value_t = 3)]
    pub max_receives: u32,
    /// Largest accepted upload, in bytes (default 10 MiB).
    #[arg(long, env = "RETAINWISE_MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// Largest file accepted by the direct upload (`POST /api/uploads`: the bytes go straight
    /// to storage, by parts), in bytes (default 5 GiB, S3's largest single PUT).
    #[arg(long, env = "RETAINWISE_MAX_DIRECT_UPLOAD_BYTES", default_value_t = 5 * 1024 * 1024 * 1024)]
    pub max_direct_upload_bytes: u64,
    /// Size of each part of a direct upload, in bytes (default 16 MiB; at least 5 MiB, S3's
    /// smallest part). A file no larger goes up in one PUT; a larger one in parts of this size
    /// (grown when a file would need more than S3's 10,000 parts), each resent alone after a
    /// dropped connection.
    #[arg(long, env = "RETAINWISE_UPLOAD_PART_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub upload_part_bytes: u64,
    /// Largest scored result a job may store, in bytes; a file whose results would be larger
    /// fails with a message naming this limit. Scoring adds probabilities and explanations to
    /// every row, so a file of tiny rows grows many times over (a 10 MB upload reached 195 MB);
    /// this bounds what one upload can make the store hold. Default: 16 × the larger of the
    /// upload limit and the direct upload limit.
    #[arg(long, env = "RETAINWISE_MAX_RESULT_BYTES")]
    pub max_result_bytes: Option<u64>,
    /// Rows per piece of a file scored by many workers: a prediction of a UTF-8 file with more
    /// data rows than this is cut at record starts into pieces of this many rows, each scored
    /// by its own job (any worker), then merged into the same bytes one job would write. 0:
    /// never cut. A piece is streamed from storage to the worker's disk and scored from there
    /// (memory does not grow with it); the default keeps files under a million rows to one job,
    /// as before, and makes a piece of ~150 MB for Telco-sized rows, so a lost worker costs one
    /// piece's seconds, not the file.
    #[arg(long, env = "RETAINWISE_CHUNK_ROWS", default_value_t = 1_000_000)]
    pub chunk_rows: u64,
    /// Largest training table, in cells (data rows × columns), checked before a training
    /// starts; a larger one fails naming this limit. Time and memory of the built-in search grow
    /// with it.
    #[arg(
        long,
        env = "RETAINWISE_TRAINING_MAX_CELLS",
        default_value_t = 2_000_000
    )]
    pub training_max_cells: u64,
    /// Memory a training may be estimated to need, in MiB, checked before it starts (the
    /// estimate grows with cells; see the README); a larger one fails naming this limit.
    #[arg(
        long,
        env = "RETAINWISE_TRAINING_MAX_MEMORY_MB",
        default_value_t = 1024
    )]
    pub training_max_memory_mb: u64,
    /// Seconds a training's search may run; it stops at the next fit after that and fails
    /// naming this limit, so one large file cannot hold a worker for hours.
    #[arg(long, env = "RETAINWISE_TRAINING_MAX_SECONDS", default_value_t = 1_800)]
    pub training_max_seconds: u64,
    /// Churn probability at or above which a customer is high risk.
    #[arg(long, env = "RETAINWISE_HIGH_RISK", default_value_t = 0.70)]
    pub high_risk: f64,
    /// Churn probability at or above which a customer is medium risk.
    #[arg(long, env = "RETAINWISE_MEDIUM_RISK", default_value_t = 0.40)]
    pub medium_risk: f64,
    /// A model artifact (JSON from `retainwise train`) to use instead of the embedded default.
    #[arg(long, env = "RETAINWISE_MODEL")]
    pub model: Option<PathBuf>,
    /// HS256 shared secret for bearer JWTs (at least 32 bytes). Never logged.
    #[arg(long, env = "RETAINWISE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<secrecy::SecretString>,
    /// JWKS URL for RS256/ES256 bearer JWTs (Clerk, Auth0, Cognito, any OIDC issuer).
    #[arg(long, env = "RETAINWISE_JWKS_URL", hide_env_values = true)]
    pub jwks_url: Option<String>,
    /// Expected `iss` claim (required with a JWKS URL).
    #[arg(long, env = "RETAINWISE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Expected `aud` claim, when set.
    #[arg(long, env = "RETAINWISE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The JWT claim naming the organisation a token acts in (dots descend into objects:
    /// Clerk's v2 tokens put it in `o.id`); a token without it acts in the user's last-joined
    /// team or personal organisation.
    #[arg(long, env = "RETAINWISE_JWT_ORG_CLAIM", default_value = crate::auth::DEFAULT_ORG_CLAIM)]
    pub jwt_org_claim: String,
    /// Rows scored per calendar month (UTC) for every organisation without its own quota
    /// (`retainwise org quota`); unset: unlimited.
    #[arg(long, env = "RETAINWISE_DEFAULT_QUOTA_ROWS")]
    pub default_quota_rows: Option<u64>,
    /// Days an uploaded file is kept after its prediction finished, for every organisation
    /// without its own retention (`retainwise org retention`); then the retention job deletes it.
    #[arg(long, env = "RETAINWISE_RETENTION_UPLOAD_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retention_upload_days: u32,
    /// Days a prediction's results and report are kept after it finished, for every
    /// organisation without its own retention; then the retention job deletes them.
    #[arg(long, env = "RETAINWISE_RETENTION_RESULT_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retention_result_days: u32,
    /// The original service's Clerk domain: JWKS at https://DOMAIN/.well-known/jwks.json,
    /// issuer https://DOMAIN.
    #[arg(long, env = "CLERK_FRONTEND_API")]
    pub clerk_frontend_api: Option<String>,
    /// Origins allowed by CORS, comma-separated (none by default).
    #[arg(long, env = "RETAINWISE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// User ids whose uploads may ask for `?priority=high`, comma-separated (none by default:
    /// jumping the queue is the operator's decision, not any user's).
    #[arg(long, env = "RETAINWISE_HIGH_PRIORITY_USERS", value_delimiter = ',')]
    pub high_priority_users: Vec<String>,
    /// Requests per minute allowed per user and per client IP on `/api/`.
    #[arg(long, env = "RETAINWISE_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,
    /// Jobs a user may have QUEUED or RUNNING at once; further uploads get 429.
    #[arg(
        long,
        env = "RETAINWISE_MAX_ACTIVE_JOBS_PER_USER",
        default_value_t = 20
    )]
    pub max_active_jobs_per_user: u32,
    /// Let webhooks go to loopback, private and link-local addresses (`true` for tests and a
    /// receiver on the same network); refused by default, since a URL a user gives must not reach
    /// the service's own network (OWASP SSRF Prevention Cheat Sheet).
    #[arg(long, env = "RETAINWISE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// The delays between a webhook delivery's attempts, comma-separated (`5s`, `5m`, `2h`):
    /// one attempt more than delays, each delay ±20 % jitter, then the delivery is
    /// dead-lettered. The default is Svix's published schedule: 8 attempts over 27 h 35 min
    /// (README, "Webhooks").
    #[arg(
        long,
        env = "RETAINWISE_WEBHOOK_RETRY_SCHEDULE",
        default_value = crate::worker::WEBHOOK_SCHEDULE
    )]
    pub webhook_retry_schedule: String,
    /// Days after a prediction within which a churn counts as the one it predicted; once they
    /// have passed, a scored customer without an outcome counts as retained (README, "Outcomes
    /// and measured accuracy").
    #[arg(long, env = "RETAINWISE_OUTCOME_WINDOW_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub outcome_window_days: u32,
    /// Seconds a starting `serve`, `api` or `worker` keeps trying to reach the database
    /// (jittered exponential backoff, each attempt logged with its cause) before it gives up;
    /// 0 tries once. A fleet started together with its database, or restarted during a
    /// failover, waits for it instead of exiting.
    #[arg(long, env = "RETAINWISE_DB_CONNECT_TIMEOUT_SECS", default_value_t = 60)]
    pub db_connect_timeout_secs: u64,
    /// Seconds a request may take before it is answered 408 (uploads included).
    #[arg(long, env = "RETAINWISE_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// The HTTP front door's limits and names (README, "Security").
    #[command(flatten)]
    pub http: HttpSettings,
}

/// The HTTP front door's limits and the names it answers to, as flags and variables; resolved
/// into [`HttpConfig`]. What each protects is in the README's "Security" section.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpSettings {
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(
        long,
        env = "RETAINWISE_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 20
    )]
    pub header_read_timeout_secs: u64,
    /// Open client connections, in total (lowered to fit the open-file limit).
    #[arg(long, env = "RETAINWISE_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Open client connections from one address (trusted proxies excepted).
    #[arg(long, env = "RETAINWISE_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// The address users reach the service at, e.g. `https://churn.example.com`: its host name
    /// is accepted in `Host`, its origin counts as this site, and `https` makes the session
    /// cookie `__Host-` prefixed and `Secure`.
    #[arg(long, env = "RETAINWISE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// More host names accepted in `Host`, comma-separated (loopback names and IP addresses
    /// always are).
    #[arg(long, env = "RETAINWISE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For` is believed
    /// for the client address; none by default.
    #[arg(long, env = "RETAINWISE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Hours a web sign-in lasts before the key must be entered again.
    #[arg(long, env = "RETAINWISE_SESSION_HOURS", default_value_t = 24 * 7)]
    pub session_hours: u64,
}

/// The HTTP front door's settings after resolution (see [`HttpSettings`]).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time to receive a request's headers; also the idle time of a keep-alive connection.
    pub header_read_timeout: Duration,
    /// Open client connections in total.
    pub max_connections: usize,
    /// Open client connections from one address.
    pub max_connections_per_ip: usize,
    /// Host names accepted in `Host` besides loopback names and IP literals, lower-case,
    /// without port.
    pub allowed_hosts: Vec<String>,
    /// The public origin (`scheme://host[:port]`, lower-case) from `RETAINWISE_PUBLIC_URL`.
    pub public_origin: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// How long a web session lasts.
    pub session_ttl: Duration,
}

impl Default for HttpConfig {
    /// The defaults of [`HttpSettings`]: loopback names only, no proxies.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(20),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            allowed_hosts: Vec::new(),
            public_origin: None,
            trusted_proxies: TrustedProxies::default(),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl HttpConfig {
    /// Whether users reach the service over HTTPS (`RETAINWISE_PUBLIC_URL` is `https://…`).
    pub fn is_https(&self) -> bool {
        self.public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }
}

impl HttpSettings {
    fn resolve(&self) -> anyhow::Result<HttpConfig> {
        if self.header_read_timeout_secs == 0
            || self.max_connections == 0
            || self.max_connections_per_ip == 0
            || self.session_hours == 0
        {
            bail!("RETAINWISE_HEADER_READ_TIMEOUT_SECS, RETAINWISE_MAX_CONNECTIONS, RETAINWISE_MAX_CONNECTIONS_PER_IP and RETAINWISE_SESSION_HOURS must be at least 1");
        }
        let public_origin = match self.public_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => Some(parse_public_origin(url)?),
        };
        let mut allowed_hosts = Vec::new();
        for host in &self.allowed_hosts {
            let host = host.trim().to_ascii_lowercase();
            if host.is_empty() {
                continue;
            }
            if host.contains(['/', ':', ' ']) {
                bail!("RETAINWISE_ALLOWED_HOSTS: {host:?} is not a host name (give names like churn.example.com, without scheme or port)");
            }
            allowed_hosts.push(host);
        }
        if let Some(origin) = &public_origin {
            allowed_hosts
                .push(host_name(origin.split_once("://").map_or("", |(_, a)| a)).to_owned());
        }
        Ok(HttpConfig {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            allowed_hosts,
            public_origin,
            trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)?,
            session_ttl: Duration::from_secs(self.session_hours.saturating_mul(3600)),
        })
    }
}

/// `scheme://host[:port]` of `RETAINWISE_PUBLIC_URL`, lower-case, without path.
fn parse_public_origin(url: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("RETAINWISE_PUBLIC_URL {url:?} must start with https:// (or http://)");
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        bail!("RETAINWISE_PUBLIC_URL {url:?} must start with https:// (or http://)");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        bail!("RETAINWISE_PUBLIC_URL {url:?} needs a host name, e.g. https://churn.example.com");
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The name part of a `Host` value or URL authority: without port, brackets kept for IPv6.
pub fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Addresses and CIDR ranges of trusted reverse proxies (`RETAINWISE_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.168.1.5`, `::1` entries.
    ///
    /// Errors: an entry that is neither an address nor a CIDR range, named.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut nets = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<ipnet::IpNet>() {
                Ok(net) => net,
                Err(_) => match entry.parse::<std::net::IpAddr>() {
                    Ok(ip) => ipnet::IpNet::from(ip),
                    Err(_) => bail!(
                        "RETAINWISE_TRUSTED_PROXIES: {entry:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8)"
                    ),
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks risk thresholds: `0 < medium <= high <= 1`, as `serve` and `predict` both require.
/// `high_name` and `medium_name` are what the user set (an environment variable or a flag),
/// named in the error.
///
/// Errors: the thresholds are out of order or range (NaN included).
pub fn check_thresholds(
    high: f64,
    medium: f64,
    high_name: &str,
    medium_name: &str,
) -> anyhow::Result<()> {
    if !(medium > 0.0 && medium <= high && high <= 1.0) {
        bail!(
            "risk thresholds must satisfy 0 < {medium_name} ({medium}) <= {high_name} ({high}) <= 1"
        );
    }
    Ok(())
}

/// `HOST:PORT` to listen on: an IP address (`127.0.0.1:8080`, `[::1]:8080`) or a host name
/// (`localhost:8080`) resolved once at start; of a name's addresses the first IPv4 one is
/// taken (else the first), so `localhost` stays on loopback.
///
/// Errors: no port, or a name that does not resolve; the message shows the expected form.
pub fn listen_addr(raw: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let expected = "expected HOST:PORT such as 127.0.0.1:8080, localhost:8080 or [::1]:8080";
    let addrs: Vec<SocketAddr> = raw
        .to_socket_addrs()
        .map_err(|e| format!("{raw:?} is not an address to listen on ({e}); {expected}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{raw:?} resolves to no address; {expected}"))
}

/// Where objects are stored, parsed from [`Settings::storage_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A local folder (created if absent).
    Local(PathBuf),
    /// An S3 bucket (or any S3-compatible store), with an optional key prefix. Credentials,
    /// region and endpoint come from the standard AWS variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/`.
        prefix: Option<String>,
    },
}

/// Which queue backend carries prediction messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueBackend {
    /// The SQL queue in the application's own database (SQLite or Postgres).
    Database,
    /// An Amazon SQS queue (or a compatible endpoint) by its queue URL; its dead-letter queue is
    /// found from the queue's redrive policy. Messages go through a transactional outbox in the
    /// database.
    Sqs(String),
}

/// The resolved configuration: every default applied, every URL parsed.
#[derive(Clone)]
pub struct Config {
    /// Database URL for sqlx (`sqlite://…` or `postgres://…`).
    pub database_url: String,
    /// Object storage location.
    pub storage: StorageLocation,
    /// Queue backend.
    pub queue: QueueBackend,
    /// Visibility timeout of a received message (default 30 s).
    pub visibility_timeout: Duration,
    /// Dead-letter after this many receives (default 3).
    pub max_receives: u32,
    /// Upload size limit in bytes.
    pub max_upload_bytes: u64,
    /// Largest direct upload in bytes (`RETAINWISE_MAX_DIRECT_UPLOAD_BYTES`).
    pub max_direct_upload_bytes: u64,
    /// Part size of a direct upload in bytes (`RETAINWISE_UPLOAD_PART_BYTES`).
    pub upload_part_bytes: u64,
    /// Largest scored result a job may store, in bytes (`RETAINWISE_MAX_RESULT_BYTES`).
    pub max_result_bytes: u64,
    /// Rows per piece of a file scored by many workers; 0 never cuts (`RETAINWISE_CHUNK_ROWS`).
    pub chunk_rows: u64,
    /// Largest training table in cells, rows × columns (`RETAINWISE_TRAINING_MAX_CELLS`).
    pub training_max_cells: u64,
    /// Largest estimated training memory in MiB (`RETAINWISE_TRAINING_MAX_MEMORY_MB`).
    pub training_max_memory_mb: u64,
    /// Longest a training's search may run (`RETAINWISE_TRAINING_MAX_SECONDS`).
    pub training_max_time: Duration,
    /// Risk-level thresholds applied to churn probabilities.
    pub thresholds: RiskThresholds,
    /// Model artifact path, `None` for the embedded default.
    pub model: Option<PathBuf>,
    /// How requests are authenticated.
    pub auth: crate::auth::AuthConfig,
    /// The JWT claim naming a token's organisation (`RETAINWISE_JWT_ORG_CLAIM`).
    pub jwt_org_claim: String,
    /// The monthly row quota of organisations without their own (`RETAINWISE_DEFAULT_QUOTA_ROWS`).
    pub default_quota_rows: Option<u64>,
    /// How long organisations without their own retention keep files
    /// (`RETAINWISE_RETENTION_UPLOAD_DAYS`, `RETAINWISE_RETENTION_RESULT_DAYS`).
    pub retention: Retention,
    /// Origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// User ids allowed to queue with `?priority=high` (`RETAINWISE_HIGH_PRIORITY_USERS`).
    pub high_priority_users: Vec<String>,
    /// Requests per minute per user and per IP on `/api/`.
    pub rate_limit_per_minute: u32,
    /// Jobs a user may have QUEUED or RUNNING at once.
    pub max_active_jobs_per_user: u32,
    /// Webhooks may go to loopback, private and link-local addresses
    /// (`RETAINWISE_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// The delays between a webhook delivery's attempts (`RETAINWISE_WEBHOOK_RETRY_SCHEDULE`).
    pub webhook_retry: Vec<Duration>,
    /// Request timeout.
    pub request_timeout: Duration,
    /// How long start-up waits for an unreachable database (zero: one attempt).
    pub db_connect_timeout: Duration,
    /// The HTTP front door's limits and names.
    pub http: HttpConfig,
    /// The outcome window in days (`RETAINWISE_OUTCOME_WINDOW_DAYS`).
    pub outcome_window_days: u32,
}

/// How long an organisation's files are kept after their prediction finished, in whole days
/// (at least 1 each): the uploaded file `upload_days`, the results and report `result_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    /// Days the uploaded file is kept (default 30).
    pub upload_days: u32,
    /// Days the results and the report are kept (default 365).
    pub result_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            upload_days: 30,
            result_days: 365,
        }
    }
}

impl Settings {
    /// Applies defaults and the original service's variable names.
    ///
    /// Errors: an unsupported URL scheme, a visibility timeout of 0 or above SQS's 12-hour cap,
    /// `max_receives` of 0, or thresholds outside `0 < medium <= high <= 1`.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let database_url = match self.database_url.clone().or_else(|| env("DATABASE_URL")) {
            Some(url) => url,
            None => format!("sqlite://{}", self.data_dir.join("retainwise.db").display()),
        };
        let storage = match self.storage_url.clone() {
            Some(url) => parse_storage_url(&url).context("RETAINWISE_STORAGE_URL")?,
            None => match env("S3_BUCKET").or_else(|| env("PREDICTIONS_BUCKET")) {
                Some(bucket) => parse_storage_url(&format!("s3://{}", bucket.trim()))
                    .context("S3_BUCKET (or PREDICTIONS_BUCKET)")?,
                None => StorageLocation::Local(self.data_dir.join("objects")),
            },
        };
        let sqs_enabled =
            env("ENABLE_SQS").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let queue_url = self.queue_url.clone().or_else(|| {
            if sqs_enabled {
                env("PREDICTIONS_QUEUE_URL")
            } else {
                None
            }
        });
        let queue = match queue_url.as_deref().map(str::trim) {
            None | Some("db") | Some("database") => QueueBackend::Database,
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                QueueBackend::Sqs(url.to_owned())
            }
            Some(other) => bail!(
                "{} {other:?} is not supported: use `db` (the database's own queue) or an SQS queue URL (https://…)",
                if self.queue_url.is_some() { "RETAINWISE_QUEUE_URL" } else { "PREDICTIONS_QUEUE_URL" }
            ),
        };
        if self.visibility_timeout_secs == 0 || self.visibility_timeout_secs > 12 * 3600 {
            bail!(
                "RETAINWISE_VISIBILITY_TIMEOUT_SECS must be between 1 and 43200 (12 hours), got {}",
                self.visibility_timeout_secs
            );
        }
        if self.max_upload_bytes == 0 {
            bail!("RETAINWISE_MAX_UPLOAD_BYTES must be at least 1");
        }
        if self.max_receives == 0 {
            bail!("RETAINWISE_MAX_RECEIVES must be at least 1");
        }
        if self.max_direct_upload_bytes == 0 {
            bail!("RETAINWISE_MAX_DIRECT_UPLOAD_BYTES must be at least 1");
        }
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&self.upload_part_bytes) {
            bail!(
                "RETAINWISE_UPLOAD_PART_BYTES must be between {MIN_PART_BYTES} (5 MiB, S3's smallest part) and {MAX_PART_BYTES} (5 GiB, its largest), got {}",
                self.upload_part_bytes
            );
        }
        let max_result_bytes = self.max_result_bytes.unwrap_or_else(|| {
            self.max_upload_bytes
                .max(self.max_direct_upload_bytes)
                .saturating_mul(16)
        });
        if max_result_bytes == 0 {
            bail!("RETAINWISE_MAX_RESULT_BYTES must be at least 1");
        }
        check_thresholds(
            self.high_risk,
            self.medium_risk,
            "RETAINWISE_HIGH_RISK",
            "RETAINWISE_MEDIUM_RISK",
        )?;
        let auth = self.auth_config()?;
        for (value, var) in [
            (
                u64::from(self.rate_limit_per_minute),
                "RETAINWISE_RATE_LIMIT_PER_MINUTE",
            ),
            (
                u64::from(self.max_active_jobs_per_user),
                "RETAINWISE_MAX_ACTIVE_JOBS_PER_USER",
            ),
            (self.request_timeout_secs, "RETAINWISE_REQUEST_TIMEOUT_SECS"),
        ] {
            if value == 0 {
                bail!("{var} must be at least 1, got 0");
            }
        }
        Ok(Config {
            auth,
            jwt_org_claim: self.jwt_org_claim.trim().to_owned(),
            default_quota_rows: self.default_quota_rows,
            retention: Retention {
                upload_days: self.retention_upload_days,
                result_days: self.retention_result_days,
            },
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            high_priority_users: self
                .high_priority_users
                .iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect(),
            rate_limit_per_minute: self.rate_limit_per_minute,
            max_active_jobs_per_user: self.max_active_jobs_per_user,
            webhook_allow_private: self.webhook_allow_private,
            webhook_retry: crate::worker::parse_schedule(&self.webhook_retry_schedule)
                .map_err(|e| anyhow::anyhow!("RETAINWISE_WEBHOOK_RETRY_SCHEDULE: {e}"))?,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            db_connect_timeout: Duration::from_secs(self.db_connect_timeout_secs),
            http: self.http.resolve()?,
            outcome_window_days: self.outcome_window_days,
            database_url,
            storage,
            queue,
            visibility_timeout: Duration::from_secs(self.visibility_timeout_secs),
            max_receives: self.max_receives,
            max_upload_bytes: self.max_upload_bytes,
            max_direct_upload_bytes: self.max_direct_upload_bytes,
            upload_part_bytes: self.upload_part_bytes,
            max_result_bytes,
            chunk_rows: self.chunk_rows,
            training_max_cells: self.training_max_cells,
            training_max_memory_mb: self.training_max_memory_mb,
            training_max_time: Duration::from_secs(self.training_max_seconds),
            thresholds: RiskThresholds {
                high: self.high_risk,
                medium: self.medium_risk,
            },
            model: self.model.clone(),
        })
    }
}

impl Settings {
    fn auth_config(&self) -> anyhow::Result<crate::auth::AuthConfig> {
        use crate::auth::AuthConfig;
        let clerk = self.clerk_frontend_api.as_deref().map(|d| {
            let domain = d
                .trim()
                .trim_start_matches("https://")
                .trim_end_matches('/');
            (
                format!("https://{domain}/.well-known/jwks.json"),
                format!("https://{domain}"),
            )
        });
        let jwks = self
            .jwks_url
            .clone()
            .map(|url| (url, self.jwt_issuer.clone()))
            .or(clerk.map(|(u, i)| (u, Some(i))));
        match (&self.jwt_secret, jwks) {
            (Some(_), Some(_)) => bail!("set either RETAINWISE_JWT_SECRET or a JWKS URL, not both"),
            (Some(secret), None) => Ok(AuthConfig::Secret {
                secret: secret.clone(),
                issuer: self.jwt_issuer.clone(),
                audience: self.jwt_audience.clone(),
            }),
            (None, Some((url, issuer))) => {
                let Some(issuer) = issuer else {
                    bail!("RETAINWISE_JWKS_URL needs RETAINWISE_JWT_ISSUER (the expected `iss` of tokens)");
                };
                if !(url.starts_with("https://")
                    || url.starts_with("http://127.")
                    || url.starts_with("http://localhost"))
                {
                    bail!("the JWKS URL (RETAINWISE_JWKS_URL or CLERK_FRONTEND_API) must use https (plain http only on loopback), got {url}");
                }
                Ok(AuthConfig::Jwks {
                    url,
                    issuer,
                    audience: self.jwt_audience.clone(),
                    max_stale: Duration::from_secs(3600),
                    min_refresh: Duration::from_secs(10),
                })
            }
            (None, None) => Ok(AuthConfig::None),
        }
    }
}

impl std::fmt::Debug for Config {
    /// Secrets stay out: the database password is masked and the JWT secret is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &crate::app::redact(&self.database_url))
            .field("storage", &self.storage)
            .field("queue", &self.queue)
            .field("visibility_timeout", &self.visibility_timeout)
            .field("max_receives", &self.max_receives)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("auth", &self.auth)
            .field("cors_origins", &self.cors_origins)
            .field("high_priority_users", &self.high_priority_users)
            .field("db_connect_timeout", &self.db_connect_timeout)
            .finish_non_exhaustive()
    }
}

/// Parses a storage URL: `file:///abs/path` or a plain folder path.
pub(crate) fn parse_storage_url(url: &str) -> anyhow::Result<StorageLocation> {
    let url = url.trim();
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            bail!("storage URL {url:?}: file URLs need an absolute path, e.g. file:///var/lib/retainwise/objects");
        }
        return Ok(StorageLocation::Local(PathBuf::from(path)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            bail!("storage URL {url:?}: {bucket:?} is not a valid S3 bucket name (3-63 lower-case letters, digits, '-', '.')");
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|seg| seg == ".." || seg == ".") || prefix.contains("//") {
            bail!("storage URL {url:?}: the prefix may not contain '.', '..' or empty segments");
        }
        return Ok(StorageLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
        });
    }
    if let Some((scheme, _)) = url.split_once("://") {
        bail!("storage URL scheme {scheme:?} is not supported by this build; use a folder path or file:///abs/path");
    }
    Ok(StorageLocation::Local(PathBuf::from(url)))
}

/// The file of a `sqlite://PATH[?options]` URL; `None` for other databases.
pub fn sqlite_path(database_url: &str) -> Option<&Path> {
    let rest = database_url.strip_prefix("sqlite://")?;
    Some(Path::new(rest.split('?').next().unwrap_or(rest)))
}

/// Creates the parent folder of a `sqlite://` database so a fresh machine needs no set-up.
pub fn ensure_sqlite_parent(database_url: &str) -> anyhow::Result<()> {
    if let Some(path) = sqlite_path(database_url) {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)
                .with_context(|| format!("creating the database folder {}", parent.display()))?;
        }
    }
    Ok(())
}

/// Creates `dir` and any missing parents readable by the owner only (0700 on Unix): the data
/// folder holds customers' files and the API-key hashes.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The address `serve` and `api` listen on (`RETAINWISE_BIND`, default 127.0.0.1:8080).
#[derive(clap::Args, Debug, Clone)]
pub struct ListenSettings {
    /// Address to listen on.
    #[arg(long, env = "RETAINWISE_BIND", default_value = "127.0.0.1:8080", value_parser = listen_addr)]
    pub bind: SocketAddr,
    /// Serve without sign-in on a non-loopback address (every caller is the one local user).
    #[arg(long)]
    pub insecure_no_auth: bool,
}

impl ListenSettings {
    /// Refuses to expose an unauthenticated server beyond this machine by accident.
    pub fn check(&self, auth_required: bool) -> anyhow::Result<()> {
        if !auth_required && !self.bind.ip().is_loopback() && !self.insecure_no_auth {
            bail!(
                "refusing to listen on {} without sign-in: set RETAINWISE_JWT_SECRET or RETAINWISE_JWKS_URL, \
                 or pass --insecure-no-auth if every caller may act as the single local user",
                self.bind
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls() {
        assert_eq!(
            parse_storage_url("file:///tmp/x").unwrap(),
            StorageLocation::Local("/tmp/x".into())
        );
        assert_eq!(
            parse_storage_url("./objects").unwrap(),
            StorageLocation::Local("./objects".into())
        );
        assert!(parse_storage_url("file://relative").is_err());
        assert!(parse_storage_url("gs://bucket").is_err());
        assert_eq!(
            parse_storage_url("s3://my-bucket/a/b/").unwrap(),
            StorageLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: Some("a/b".into())
            }
        );
        assert_eq!(
            parse_storage_url("s3://my-bucket").unwrap(),
            StorageLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: None
            }
        );
        assert!(parse_storage_url("s3://Bad_Bucket").is_err());
        assert!(parse_storage_url("s3://bucket/../x").is_err());
    }
}
