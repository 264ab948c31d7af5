//! Processes of the built `retainwise` binary for the benchmarks that run real processes
//! (`prediction_jobs`, `big_file`), and the machine's load for their records.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// A `retainwise` process of the built binary, its stderr in `{dir}/{name}.log`; killed when
/// dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Its log.
    pub log: PathBuf,
}

impl Proc {
    /// Starts `retainwise {role}` on the data folder `{dir}/data` with `env` on top of the
    /// defaults a benchmark wants (warn-level logs, no rate limits, no inherited service URLs).
    pub fn spawn(role: &str, name: &str, dir: &Path, env: &[(String, String)]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(BIN);
        cmd.arg(role)
            .env("RETAINWISE_DATA_DIR", dir.join("data"))
            .env("RETAINWISE_LOG", "warn")
            .env("RETAINWISE_RATE_LIMIT_PER_MINUTE", "100000000")
            .env("RETAINWISE_MAX_ACTIVE_JOBS_PER_USER", "100000000")
            .env_remove("DATABASE_URL")
            .env_remove("S3_BUCKET")
            .env_remove("PREDICTIONS_BUCKET")
            .env_remove("RETAINWISE_QUEUE_URL")
            .env_remove("PREDICTIONS_QUEUE_URL")
            .env_remove("ENABLE_SQS")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().expect("start retainwise"),
            log,
        }
    }

    /// Waits for `retainwise listening on URL` in the log; the base URL.
    pub async fn listening(&self) -> String {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(url) = text
                .lines()
                .find_map(|l| l.strip_prefix("retainwise listening on "))
            {
                return url.trim().to_owned();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "retainwise did not start listening:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits for the exit (the worker finishes what it holds).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/proc/loadavg`'s three figures, for the record of how busy the machine was.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().take(3).collect();
            format!("load average {}", f.join(", "))
        })
        .unwrap_or_else(|_| "load average unknown".to_owned())
}

impl Proc {
    /// The process's peak resident set so far (`VmHWM` of `/proc/PID/status`), in MiB; `None`
    /// once it has exited or off Linux.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}
