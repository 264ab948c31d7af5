//! Processes of the built `retainwise` binary for the failure drills — one `api` and several
//! `worker`s on the same Postgres and S3, each logging JSON to its own file — and a private
//! PostgreSQL cluster that a drill may stop and start without disturbing other tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::loud;

pub const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// One child process and the file its stderr (JSON log lines) goes to.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    fn spawn(bin: &str, role: &str, name: &str, dir: &Path, env: &[(String, String)]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin);
        cmd.arg(role)
            .env("RETAINWISE_DATA_DIR", dir.join("data"))
            .env("RETAINWISE_LOG", "info,sqlx=warn")
            .env("RETAINWISE_LOG_FORMAT", "json")
            .env_remove("DATABASE_URL")
            .env_remove("S3_BUCKET")
            .env_remove("PREDICTIONS_BUCKET")
            .env_remove("RETAINWISE_QUEUE_URL")
            .env_remove("PREDICTIONS_QUEUE_URL")
            .env_remove("ENABLE_SQS")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start retainwise");
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log events whose message is `message`, as their `fields` objects.
    pub fn events(&self, message: &str) -> Vec<Value> {
        events(&self.log_text(), message)
    }

    /// Prediction ids this process started and has not finished (completed, failed, retried).
    pub fn in_hand(&self) -> BTreeSet<String> {
        let text = self.log_text();
        let mut open = BTreeSet::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let f = &v["fields"];
            let Some(id) = f["prediction_id"].as_str() else {
                continue;
            };
            match f["message"].as_str() {
                Some("prediction_processing_started") => {
                    open.insert(id.to_owned());
                }
                Some("prediction_processing_completed")
                | Some("prediction_processing_failed")
                | Some("message_processing_failed") => {
                    open.remove(id);
                }
                _ => {}
            }
        }
        open
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} {}", self.name);
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failing test must not leave processes behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `fields` of every JSON log line in `text` whose message is `message`.
pub fn events(text: &str, message: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["fields"].clone())
        .filter(|f| f["message"] == message)
        .collect()
}

/// An API process and workers sharing one environment.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    pub api: Proc,
    pub base: String,
    pub workers: Vec<Proc>,
    client: reqwest::Client,
}

impl Fleet {
    /// Starts `retainwise api` with `env` (plus a free port, no rate limits) and waits until
    /// it listens.
    pub async fn start_api(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push(("RETAINWISE_RATE_LIMIT_PER_MINUTE".into(), "1000000".into()));
        env.push((
            "RETAINWISE_MAX_ACTIVE_JOBS_PER_USER".into(),
            "100000".into(),
        ));
        let mut api_env = env.clone();
        api_env.push(("RETAINWISE_BIND".into(), "127.0.0.1:0".into()));
        let api = Proc::spawn(BIN, "api", "api", dir.path(), &api_env);
        let start = Instant::now();
        let base = loop {
            let text = api.log_text();
            if let Some(line) = text
                .lines()
                .find_map(|l| l.strip_prefix("retainwise listening on "))
            {
                break line.trim().to_owned();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "api did not start:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self {
            dir,
            env,
            api,
            base,
            workers: Vec::new(),
            client: reqwest::Client::new(),
        }
    }

    /// Starts one more `retainwise worker` with `concurrency` receive loops.
    pub fn add_worker(&mut self, concurrency: u16) -> usize {
        let n = self.workers.len();
        let mut env = self.env.clone();
        env.push((
            "RETAINWISE_WORKER_CONCURRENCY".into(),
            concurrency.to_string(),
        ));
        self.workers.push(Proc::spawn(
            BIN,
            "worker",
            &format!("worker{n}"),
            self.dir.path(),
            &env,
        ));
        n
    }

    /// Uploads `bytes` through the API process; the prediction id.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> String {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new().part("file", part);
        let r = self
            .client
            .post(format!("{}/api/csv", self.base))
            .multipart(form)
            .send()
            .await
            .expect("upload request");
        let code = r.status();
        let body: Value = r.json().await.expect("upload answer");
        assert_eq!(code, 202, "upload refused: {body}");
        body["prediction_id"].as_str().unwrap().to_owned()
    }

    /// Every worker's log, concatenated.
    pub fn worker_logs(&self) -> String {
        self.workers.iter().map(Proc::log_text).collect()
    }

    /// How many times each prediction was recorded COMPLETED, over every worker's log.
    pub fn completions(&self) -> BTreeMap<String, u32> {
        let mut n = BTreeMap::new();
        for e in events(&self.worker_logs(), "prediction_status_updated") {
            if e["status"] == "COMPLETED" {
                *n.entry(e["prediction_id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        n
    }

    /// Runs `retainwise ARGS…` once with the fleet's environment; (success, stdout + stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(BIN)
            .args(args)
            .env("RETAINWISE_DATA_DIR", self.dir.path().join("data"))
            .env_remove("DATABASE_URL")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run retainwise");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Fleet {
    /// With `RETAINWISE_DRILL_LOGS=DIR`, the processes' logs are kept in `DIR/<fleet folder>/`
    /// for a person to read after the run.
    fn drop(&mut self) {
        let Some(keep) = std::env::var_os("RETAINWISE_DRILL_LOGS") else {
            return;
        };
        let to = PathBuf::from(keep).join(self.dir.path().file_name().unwrap());
        let _ = std::fs::create_dir_all(&to);
        for p in self.workers.iter().chain(std::iter::once(&self.api)) {
            let _ = std::fs::copy(&p.log, to.join(p.log.file_name().unwrap()));
        }
    }
}

/// A PostgreSQL cluster of its own (initdb + pg_ctl, like `scripts/test-services.sh`), so a
/// drill can stop and start it while other tests use the shared one.
pub struct PrivatePostgres {
    pub url: String,
    pg_ctl: PathBuf,
    data: PathBuf,
    log: PathBuf,
    options: String,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// Starts one, or `None` with a loud note when the services are not provisioned
    /// (`RETAINWISE_TEST_POSTGRES_URL` unset) or PostgreSQL's programs are not installed.
    pub fn start() -> Option<Self> {
        if std::env::var("RETAINWISE_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .is_none()
        {
            loud("*** SKIPPED: RETAINWISE_TEST_POSTGRES_URL not set (scripts/test-services.sh starts Postgres) ***");
            return None;
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("pg_ctl").exists())
            .max_by_key(|b| {
                b.parent()
                    .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
                    .unwrap_or(0)
            });
        let Some(bin) = bin else {
            loud("*** SKIPPED: no PostgreSQL programs under /usr/lib/postgresql/*/bin ***");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let data = root.join("db");
        if is_root() {
            assert!(Command::new("chown")
                .args(["postgres", root.to_str().unwrap()])
                .status()
                .unwrap()
                .success());
        }
        let initdb = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .output()
            .expect("initdb");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off",
            root.display()
        );
        let pg = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            pg_ctl: bin.join("pg_ctl"),
            log: root.join("server.log"),
            data,
            options,
            _dir: dir,
        };
        pg.start_again();
        Some(pg)
    }

    /// `pg_ctl stop -m fast`: sessions are cut at once, as in a crash or a failover.
    pub fn stop(&self) {
        let out = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .expect("pg_ctl stop");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl start` on the same port and data.
    pub fn start_again(&self) {
        let out = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "start", "-o", &self.options])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// PostgreSQL refuses to run as root; as root, run its programs as `postgres`.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
