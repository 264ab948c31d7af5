//! `TestApp`: the real server on port 0 over a fresh data folder, plus fixtures.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use retainwise::app::App;
use retainwise::config::{Config, QueueBackend, StorageLocation};
use retainwise::worker::{Outcome, Worker, WorkerOptions};
use retainwise_model::RiskThresholds;
use serde_json::Value;
use tempfile::TempDir;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app: App,
    pub worker: Worker,
    pub dir: TempDir,
}

/// The configuration of a test: a fresh folder, short timeouts.
pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        database_url: format!("sqlite://{}", dir.join("retainwise.db").display()),
        storage: StorageLocation::Local(dir.join("objects")),
        queue: QueueBackend::Database,
        visibility_timeout: Duration::from_secs(2),
        max_receives: 3,
        max_upload_bytes: 10 * 1024 * 1024,
        max_direct_upload_bytes: 5 * 1024 * 1024 * 1024,
        upload_part_bytes: 16 * 1024 * 1024,
        max_result_bytes: 160 * 1024 * 1024,
        chunk_rows: 0,
        training_max_cells: 2_000_000,
        training_max_memory_mb: 1024,
        training_max_time: Duration::from_secs(1_800),
        thresholds: RiskThresholds {
            high: 0.70,
            medium: 0.40,
        },
        model: None,
        auth: retainwise::auth::AuthConfig::None,
        jwt_org_claim: retainwise::auth::DEFAULT_ORG_CLAIM.to_owned(),
        default_quota_rows: None,
        retention: Default::default(),
        cors_origins: Vec::new(),
        high_priority_users: Vec::new(),
        rate_limit_per_minute: 10_000,
        max_active_jobs_per_user: 1_000,
        webhook_allow_private: false,
        webhook_retry: retainwise::worker::parse_schedule(retainwise::worker::WEBHOOK_SCHEDULE)
            .unwrap(),
        request_timeout: Duration::from_secs(60),
        db_connect_timeout: Duration::from_secs(10),
        http: Default::default(),
        outcome_window_days: 90,
    }
}

/// Worker options that keep tests fast: short waits and retry delays.
pub fn fast_worker_options() -> WorkerOptions {
    WorkerOptions {
        concurrency: 1,
        receive_wait: Duration::from_millis(500),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        sweep_interval: Duration::from_millis(200),
        failure_points: Default::default(),
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let app = App::open(config).await.expect("app opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = retainwise::http::router(app.clone());
        let limits = retainwise::server::ConnectionLimits::effective(&app.config.http);
        let never = tokio_util::sync::CancellationToken::new();
        tokio::spawn(retainwise::server::serve(listener, router, limits, never));
        let worker = Worker::new(app.clone(), fast_worker_options());
        Self {
            base,
            client: reqwest::Client::new(),
            app,
            worker,
            dir,
        }
    }

    /// The same app on a fresh database of the Postgres at `RETAINWISE_TEST_POSTGRES_URL`
    /// (`scripts/test-services.sh` starts one), or `None` with a loud note.
    pub async fn spawn_postgres() -> Option<Self> {
        Self::spawn_postgres_with(|_| {}).await
    }

    /// [`TestApp::spawn_postgres`] with the configuration adjusted by `adjust` first.
    pub async fn spawn_postgres_with(adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let url = fresh_postgres_database("rw").await?;
        Some(
            Self::spawn_with(|c| {
                adjust(c);
                c.database_url = url;
            })
            .await,
        )
    }

    /// The app on a fresh Postgres database and a fresh prefix of the S3 bucket that
    /// `scripts/test-services.sh` starts (SeaweedFS), or `None` with a loud note.
    pub async fn spawn_postgres_s3() -> Option<Self> {
        Self::spawn_postgres_s3_with(|_| {}).await
    }

    /// [`TestApp::spawn_postgres_s3`] with the configuration adjusted by `adjust` first.
    pub async fn spawn_postgres_s3_with(adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let Some(bucket) = std::env::var("RETAINWISE_TEST_S3_BUCKET")
            .ok()
            .filter(|b| !b.is_empty())
        else {
            loud("*** SKIPPED: RETAINWISE_TEST_S3_BUCKET not set (scripts/test-services.sh starts an S3 server) ***");
            return None;
        };
        let pg = Self::spawn_postgres().await?;
        let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let url = pg.app.config.database_url.clone();
        Some(
            Self::spawn_with(move |c| {
                adjust(c);
                c.database_url = url;
                c.storage = StorageLocation::S3 {
                    bucket,
                    prefix: Some(prefix),
                };
            })
            .await,
        )
    }

    /// The app on Postgres + S3 with an SQS queue on the moto server `scripts/test-services.sh`
    /// starts (a fresh queue and dead-letter queue per test), or `None` with a loud note.
    pub async fn spawn_postgres_s3_sqs() -> Option<Self> {
        Self::spawn_postgres_s3_sqs_with(|_| {}).await
    }

    /// [`TestApp::spawn_postgres_s3_sqs`] with the configuration adjusted by `adjust` first.
    pub async fn spawn_postgres_s3_sqs_with(
        adjust: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Option<Self> {
        let Some(endpoint) = std::env::var("RETAINWISE_TEST_SQS_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        else {
            loud("*** SKIPPED: RETAINWISE_TEST_SQS_ENDPOINT not set (scripts/test-services.sh starts moto) ***");
            return None;
        };
        let base = Self::spawn_postgres_s3().await?;
        let client = retainwise_queue::sqs::client(Some(&endpoint), Some("us-east-1")).await;
        let name = format!("rw-{}", uuid::Uuid::new_v4().simple());
        let urls = retainwise_queue::sqs::setup(&client, &name, Duration::from_secs(2), 3)
            .await
            .expect("queue setup");
        let (url, storage) = (
            base.app.config.database_url.clone(),
            base.app.config.storage.clone(),
        );
        Some(
            Self::spawn_with(move |c| {
                c.database_url = url;
                c.storage = storage;
                c.queue = QueueBackend::Sqs(urls.queue_url);
                adjust(c);
            })
            .await,
        )
    }

    pub async fn upload(&self, filename: &str, bytes: Vec<u8>) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned());
        let form = reqwest::multipart::Form::new().part("file", part);
        self.client
            .post(format!("{}/api/csv", self.base))
            .multipart(form)
            .send()
            .await
            .expect("upload request")
    }

    /// Uploads `bytes` as `filename` for the holder of `bearer` (an API key or a token).
    pub async fn upload_as(
        &self,
        bearer: &str,
        filename: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned());
        self.client
            .post(format!("{}/api/csv", self.base))
            .bearer_auth(bearer)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .expect("upload request")
    }

    /// Runs `worker` until no message arrives within 2 s; returns the outcomes in order.
    /// Panics past `most` outcomes: the queue never drained.
    pub async fn drain(worker: &Worker, most: usize) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        while let Some(outcome) = worker
            .run_once(Duration::from_secs(2))
            .await
            .expect("queue reachable")
        {
            outcomes.push(outcome);
            assert!(
                outcomes.len() <= most,
                "the queue never drained: {outcomes:?}"
            );
        }
        outcomes
    }

    /// Uploads and returns the prediction id, asserting 202.
    pub async fn upload_ok(&self, filename: &str, bytes: Vec<u8>) -> String {
        let response = self.upload(filename, bytes).await;
        assert_eq!(
            response.status(),
            202,
            "upload refused: {}",
            response.text().await.unwrap()
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["prediction_status"], "QUEUED");
        body["prediction_id"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    pub async fn prediction(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/predictions/{id}")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["prediction"].clone()
    }

    pub async fn results(&self, id: &str) -> String {
        let response = self.get(&format!("/api/predictions/{id}/results")).await;
        assert_eq!(
            response.status(),
            200,
            "results: {}",
            response.text().await.unwrap()
        );
        response.text().await.unwrap()
    }

    /// One step of the worker; panics when no message arrives within 2 s.
    pub async fn work_once(&self) -> Outcome {
        self.worker
            .run_once(Duration::from_secs(2))
            .await
            .expect("queue reachable")
            .expect("a message was waiting")
    }

    /// Polls until the prediction leaves QUEUED/RUNNING or `timeout` passes.
    pub async fn wait_finished(&self, id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let p = self.prediction(id).await;
            if p["status"] == "COMPLETED" || p["status"] == "FAILED" || start.elapsed() > timeout {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The Telco data from `../shared`, or `None` with a loud note (CI always has it).
pub fn telco_csv() -> Option<PathBuf> {
    let path = std::env::var_os("RETAINWISE_TELCO_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/telco-customer-churn.csv")
        });
    if path.exists() {
        Some(path)
    } else {
        loud(&format!(
            "*** SKIPPED: Telco data not found at {} (set RETAINWISE_TELCO_CSV) ***",
            path.display()
        ));
        None
    }
}

pub const TELCO_HEADER: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges";

/// `n` synthetic customers in the Telco schema (no Churn column), deterministic.
pub fn synthetic_telco(n: usize) -> String {
    let mut out = String::with_capacity(n * 160);
    out.push_str(TELCO_HEADER);
    out.push('\n');
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |k: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % k
    };
    let yes_no = ["Yes", "No"];
    let service = ["Yes", "No", "No internet service"];
    let contracts = ["Month-to-month", "One year", "Two year"];
    let payments = [
        "Electronic check",
        "Mailed check",
        "Bank transfer (automatic)",
        "Credit card (automatic)",
    ];
    let internet = ["DSL", "Fiber optic", "No"];
    for i in 0..n {
        let tenure = next(73);
        let monthly = 18.25 + next(10_000) as f64 / 100.0;
        let total = if tenure == 0 {
            String::new()
        } else {
            format!("{:.2}", monthly * tenure as f64)
        };
        out.push_str(&format!(
            "{:04}-SYNT,{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.2},{}\n",
            i,
            ["Female", "Male"][next(2) as usize],
            next(2),
            yes_no[next(2) as usize],
            yes_no[next(2) as usize],
            tenure,
            yes_no[next(2) as usize],
            ["Yes", "No", "No phone service"][next(3) as usize],
            internet[next(3) as usize],
            service[next(3) as usize],
            service[next(3) as usize],
            service[next(3) as usize],
            service[next(3) as usize],
            service[next(3) as usize],
            service[next(3) as usize],
            contracts[next(3) as usize],
            yes_no[next(2) as usize],
            payments[next(4) as usize],
            monthly,
            total
        ));
    }
    out
}

/// Parses a scored CSV into (header, rows).
pub fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

pub fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// Writes straight to the process's stderr, which the test harness does not capture, so a
/// skipped check is visible in every run, not only with `--nocapture`.
/// The URL of a new, empty database named `{prefix}_{uuid}` on the Postgres at
/// `RETAINWISE_TEST_POSTGRES_URL` (`scripts/test-services.sh` starts one), or `None` with a loud
/// note when that is not set.
pub async fn fresh_postgres_database(prefix: &str) -> Option<String> {
    let Some(admin) = std::env::var("RETAINWISE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        loud("*** SKIPPED: RETAINWISE_TEST_POSTGRES_URL not set (scripts/test-services.sh starts Postgres) ***");
        return None;
    };
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let (pool, _) = retainwise_queue::connect(&admin)
        .await
        .expect("admin connection");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let (base, _) = admin.rsplit_once('/').expect("URL with a database name");
    Some(format!("{base}/{name}"))
}

pub fn loud(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n{line}\n");
}

/// Makes `cmd` run `retainwise serve` on the embedded default (SQLite + local files) in `data`,
/// on a free loopback port, logging at info, whatever the test environment exports for the
/// fleet. The rate limit is far above a person's: the tests poll every few milliseconds.
pub fn embedded_serve(cmd: &mut std::process::Command, data: &std::path::Path) {
    cmd.arg("serve")
        .env("RETAINWISE_DATA_DIR", data)
        .env("RETAINWISE_BIND", "127.0.0.1:0")
        .env("RETAINWISE_LOG", "info")
        .env("RETAINWISE_RATE_LIMIT_PER_MINUTE", "1000000")
        .env_remove("DATABASE_URL")
        .env_remove("RETAINWISE_DATABASE_URL")
        .env_remove("RETAINWISE_STORAGE_URL")
        .env_remove("RETAINWISE_QUEUE_URL");
}
