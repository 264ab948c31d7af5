//! Small prediction jobs end to end: real `retainwise` processes, a
//! 10-row Telco CSV per job, every figure read from the database the processes share.
//!
//! ```text
//! . scripts/test-services.sh   # Postgres + S3 (SeaweedFS); without them only the embedded setup runs
//! cargo bench -p retainwise --bench prediction_jobs -- [--jobs 500] [--workers 1,3] [--stream 100]
//!     [--rate 10] [--clients 4] [--noop-jobs 5000]
//! ```
//!
//! Setups: (i) the embedded default as the README runs it, `retainwise serve` on SQLite and a
//! local objects folder (uploads are taken by `retainwise api` on the same folder while nothing
//! scores, then `serve` starts); (ii) Postgres + S3 with one `retainwise api` and 1, 3, …
//! `retainwise worker` processes (default concurrency 2 each). For each setup, in one run:
//!
//! - **uploads/s**: `--jobs` uploads through `POST /api/csv` from `--clients` concurrent clients,
//!   nothing scoring;
//! - **drain jobs/s**: then the workers start; `--jobs` ÷ (last `completed_at` − first
//!   `started_at`), the predictions table's own timestamps (worker start-up is reported apart);
//! - **enqueue-to-start and to-completed p50/p99**: `--stream` jobs uploaded one after another
//!   at `--rate` per second while the workers run; `started_at − queued_at` and
//!   `completed_at − queued_at` per job (epoch milliseconds written by the processes, all on this
//!   machine's clock, so 1 ms resolution);
//! - **no-op jobs/s**: `--noop-jobs` empty messages through `retainwise_queue::SqlQueue` on the
//!   same database engine, drained with the worker's own pattern (as many receive loops as the
//!   setup's workers have, each receiving one message and acknowledging it) — the queue's share
//!   of a job, so `drain ÷ no-op` says how much of the end-to-end cost is the queue;
//! - **per-stage time per job** (download, score — which includes decoding and mapping —,
//!   upload, and the rest: database writes, model lookup, acknowledgement), from the workers'
//!   `retainwise_job_stage_seconds` and `retainwise_job_duration_seconds` histograms at
//!   `GET /metrics` (`serve`'s API port; `RETAINWISE_METRICS_BIND` for a worker process).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use retainwise_queue::{OutgoingMessage, Queue, QueueConfig, SqlQueue};
use sqlx::AnyPool;

/// Receive loops per worker process (`retainwise worker`'s default concurrency).
const CONCURRENCY: usize = 2;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[path = "support/procs.rs"]
mod procs;
use procs::{free_port, load, Proc};

struct Args {
    jobs: usize,
    workers: Vec<usize>,
    stream: usize,
    rate: f64,
    clients: usize,
    noop_jobs: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        jobs: 500,
        workers: vec![1, 3],
        stream: 100,
        rate: 10.0,
        clients: 4,
        noop_jobs: 5000,
    };
    let mut args = std::env::args().skip(1);
    let num = |v: Option<String>, flag: &str| -> usize {
        v.unwrap_or_default()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{flag} N"))
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--jobs" => a.jobs = num(args.next(), "--jobs"),
            "--stream" => a.stream = num(args.next(), "--stream"),
            "--clients" => a.clients = num(args.next(), "--clients").max(1),
            "--noop-jobs" => a.noop_jobs = num(args.next(), "--noop-jobs"),
            "--rate" => {
                a.rate = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|r: &f64| *r > 0.0)
                    .expect("--rate JOBS_PER_SECOND")
            }
            "--workers" => {
                a.workers = args
                    .next()
                    .expect("--workers 1,3")
                    .split(',')
                    .map(|n| n.trim().parse().expect("--workers 1,3"))
                    .collect()
            }
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn main() {
    let args = parse_args();
    let csv = ten_rows();
    println!("load before: {}", load());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let mut rows = vec![embedded(&args, &csv).await.expect("embedded setup")];
        match std::env::var("RETAINWISE_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .zip(
                std::env::var("RETAINWISE_TEST_S3_BUCKET")
                    .ok()
                    .filter(|b| !b.is_empty()),
            ) {
            Some((pg, bucket)) => {
                for &n in &args.workers {
                    rows.push(scaled_out(&args, &csv, &pg, &bucket, n).await.expect("Postgres + S3 setup"));
                }
            }
            None => println!(
                "\n*** SKIPPED Postgres + S3: RETAINWISE_TEST_POSTGRES_URL / RETAINWISE_TEST_S3_BUCKET not set \
                 (`. scripts/test-services.sh` starts them) ***\n"
            ),
        }
        rows
    });
    println!("load after:  {}", load());
    print_tables(&args, &rows);
}

/// The 10-row input: the first ten customers of the Telco sample data, or, when it is absent,
/// the built-in 5-row template twice (said loudly).
fn ten_rows() -> String {
    let telco = std::env::var_os("RETAINWISE_TELCO_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/telco-customer-churn.csv")
        });
    match std::fs::read_to_string(&telco) {
        Ok(text) => text.lines().take(11).map(|l| format!("{l}\n")).collect(),
        Err(_) => {
            println!(
                "*** {} absent: using the built-in 5-row Telco template twice as the 10-row file ***",
                telco.display()
            );
            let sample = include_str!("../assets/sample-telecom.csv");
            let mut lines = sample.lines();
            let header = lines.next().unwrap();
            let body: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
            let mut out = format!("{header}\n");
            for i in 0..10 {
                out.push_str(&format!("b{i}-{}\n", body[i % body.len()]));
            }
            out
        }
    }
}

// ---------------------------------------------------------------- one setup's figures

/// Everything measured for one setup.
struct Row {
    setup: String,
    loops: usize,
    uploads_per_s: f64,
    drain_per_s: f64,
    startup: Duration,
    noop_per_s: f64,
    start_ms: Vec<i64>,
    done_ms: Vec<i64>,
    stages: Option<Stages>,
}

/// Mean seconds per job of each stage, from the Prometheus histograms' `_sum` / `_count`.
#[derive(Default)]
struct Stages {
    sums: BTreeMap<String, f64>,
    counts: BTreeMap<String, f64>,
}

impl Stages {
    /// Adds one `/metrics` exposition (several worker processes sum up).
    fn add(&mut self, text: &str) {
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let key = |name: &str| -> Option<String> {
                if let Some(rest) = name.strip_prefix("retainwise_job_stage_seconds") {
                    let stage = rest.split("stage=\"").nth(1)?.split('"').next()?;
                    Some(stage.to_owned())
                } else if name.starts_with("retainwise_job_duration_seconds") {
                    Some("job".to_owned())
                } else {
                    None
                }
            };
            let base = name.split('{').next().unwrap_or(name);
            if base.ends_with("_sum") {
                if let Some(k) = key(name) {
                    *self.sums.entry(k).or_default() += value;
                }
            } else if base.ends_with("_count") {
                if let Some(k) = key(name) {
                    *self.counts.entry(k).or_default() += value;
                }
            }
        }
    }

    /// Mean milliseconds per job of `stage`.
    fn mean_ms(&self, stage: &str) -> Option<f64> {
        let n = *self.counts.get(stage)?;
        (n > 0.0).then(|| self.sums.get(stage).copied().unwrap_or(0.0) / n * 1000.0)
    }
}

// ---------------------------------------------------------------- the measurements

/// `n` uploads from `clients` concurrent clients; uploads per second.
async fn upload_many(base: &str, csv: &str, n: usize, clients: usize) -> Result<f64, BoxError> {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, next, base, csv) = (
            client.clone(),
            next.clone(),
            base.to_owned(),
            csv.to_owned(),
        );
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                upload(&client, &base, &csv).await?;
            }
            Ok::<_, BoxError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// One `POST /api/csv`; the prediction id.
async fn upload(client: &reqwest::Client, base: &str, csv: &str) -> Result<String, BoxError> {
    let part = reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("customers.csv");
    let r = client
        .post(format!("{base}/api/csv"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await?;
    let status = r.status();
    let body: serde_json::Value = r.json().await?;
    if status != 202 {
        return Err(format!("upload answered {status}: {body}").into());
    }
    Ok(body["prediction_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// `n` uploads one after another, the i-th sent at `i / rate` seconds.
async fn stream(base: &str, csv: &str, n: usize, rate: f64) -> Result<Vec<String>, BoxError> {
    let client = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
        ids.push(upload(&client, base, csv).await?);
    }
    Ok(ids)
}

/// Waits until `n` predictions are COMPLETED (any FAILED one is an error).
async fn wait_completed(pool: &AnyPool, n: usize) -> Result<(), BoxError> {
    let start = Instant::now();
    loop {
        let (done, failed): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END), 0) FROM predictions",
        )
        .fetch_one(pool)
        .await?;
        if failed > 0 {
            let (error,): (Option<String>,) = sqlx::query_as(
                "SELECT error_message FROM predictions WHERE status = 'FAILED' LIMIT 1",
            )
            .fetch_one(pool)
            .await?;
            return Err(format!("{failed} prediction(s) FAILED, e.g. {error:?}").into());
        }
        if done as usize >= n {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(
                format!("only {done} of {n} predictions COMPLETED after 10 minutes").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (queued_at, started_at, completed_at) in epoch ms of every completed prediction.
async fn times(pool: &AnyPool) -> Result<BTreeMap<String, (i64, i64, i64)>, BoxError> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, queued_at, started_at, completed_at FROM predictions WHERE status = 'COMPLETED'",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, q, s, c)| (id, (q, s, c)))
        .collect())
}

/// Drain rate from the database's own timestamps: jobs ÷ (last completed − first started).
fn drain_rate(times: &BTreeMap<String, (i64, i64, i64)>) -> f64 {
    let first = times.values().map(|t| t.1).min().unwrap_or(0);
    let last = times.values().map(|t| t.2).max().unwrap_or(0);
    times.len() as f64 / ((last - first).max(1) as f64 / 1000.0)
}

/// Enqueue-to-start and enqueue-to-completed, in ms, of the predictions `ids`.
fn latencies(times: &BTreeMap<String, (i64, i64, i64)>, ids: &[String]) -> (Vec<i64>, Vec<i64>) {
    let mut start = Vec::new();
    let mut done = Vec::new();
    for id in ids {
        if let Some((q, s, c)) = times.get(id) {
            start.push(s - q);
            done.push(c - q);
        }
    }
    start.sort_unstable();
    done.sort_unstable();
    (start, done)
}

async fn scrape(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// No-op jobs/s through the queue on `url`: `jobs` empty messages pre-inserted, then `loops`
/// receive loops each taking one message and acknowledging it, as the worker does.
async fn noop_drain(url: &str, jobs: usize, loops: usize) -> Result<f64, BoxError> {
    let (pool, dialect) = retainwise_queue::connect(url).await?;
    let config = QueueConfig {
        name: format!("bench-noop-{}", uuid::Uuid::new_v4().simple()),
        visibility_timeout: Duration::from_secs(60),
        max_receives: 3,
        poll_interval: Duration::from_millis(500),
        migrate: true,
    };
    let queue = Arc::new(SqlQueue::new(pool.clone(), dialect, config).await?);
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(500) {
        let mut tx = pool.begin().await?;
        for i in chunk {
            queue
                .send_in(&mut tx, &OutgoingMessage::new(format!("{{\"job\":{i}}}")))
                .await?;
        }
        tx.commit().await?;
    }
    if url.starts_with("postgres") {
        // As the queue bench does: statistics for the freshly filled table (autovacuum would
        // within a minute).
        sqlx::query("ANALYZE").execute(&pool).await?;
    }
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..loops {
        let (queue, done) = (queue.clone(), done.clone());
        tasks.spawn(async move {
            while done.load(Ordering::Relaxed) < jobs {
                for d in queue.receive(1, Duration::from_millis(200)).await? {
                    queue.ack(&d.receipt).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, BoxError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(rate)
}

// ---------------------------------------------------------------- the setups

/// (i) The embedded default: SQLite + a local objects folder, `retainwise serve`.
async fn embedded(args: &Args, csv: &str) -> Result<Row, BoxError> {
    println!("== embedded default (SQLite + local files, `retainwise serve`)");
    let dir = tempfile::tempdir()?;
    let db_url = format!(
        "sqlite://{}",
        dir.path().join("data/retainwise.db").display()
    );
    // Uploads while nothing scores: `api` alone on the same data folder.
    let api = Proc::spawn(
        "api",
        "api",
        dir.path(),
        &[("RETAINWISE_BIND".into(), "127.0.0.1:0".into())],
    );
    let base = api.listening().await;
    let uploads_per_s = upload_many(&base, csv, args.jobs, args.clients).await?;
    api.stop();
    let spawned = Instant::now();
    let serve = Proc::spawn(
        "serve",
        "serve",
        dir.path(),
        &[("RETAINWISE_BIND".into(), "127.0.0.1:0".into())],
    );
    let (pool, _) = retainwise_queue::connect(&db_url).await?;
    let base = serve.listening().await;
    wait_completed(&pool, args.jobs).await?;
    let drained = times(&pool).await?;
    let startup = startup_of(&drained, spawned);
    let drain_per_s = drain_rate(&drained);
    let ids = stream(&base, csv, args.stream, args.rate).await?;
    wait_completed(&pool, args.jobs + args.stream).await?;
    let (start_ms, done_ms) = latencies(&times(&pool).await?, &ids);
    let mut stages = Stages::default();
    stages.add(&scrape(&format!("{base}/metrics")).await);
    serve.stop();
    pool.close().await;
    let noop_url = format!("sqlite://{}", dir.path().join("noop.db").display());
    let noop_per_s = noop_drain(&noop_url, args.noop_jobs, CONCURRENCY).await?;
    Ok(Row {
        setup: "embedded: `serve`, SQLite + files".to_owned(),
        loops: CONCURRENCY,
        uploads_per_s,
        drain_per_s,
        startup,
        noop_per_s,
        start_ms,
        done_ms,
        stages: Some(stages),
    })
}

/// Time from spawning the workers to the first job started (process start-up: connect,
/// migrations, model load), from the database's `started_at`.
fn startup_of(times: &BTreeMap<String, (i64, i64, i64)>, spawned: Instant) -> Duration {
    let spawned_ms = retainwise::time::now_ms() - spawned.elapsed().as_millis() as i64;
    let first = times.values().map(|t| t.1).min().unwrap_or(spawned_ms);
    Duration::from_millis((first - spawned_ms).max(0) as u64)
}

/// (ii) Postgres + S3: one `retainwise api`, `workers` `retainwise worker` processes, a fresh
/// database and S3 prefix of their own.
async fn scaled_out(
    args: &Args,
    csv: &str,
    pg_url: &str,
    bucket: &str,
    workers: usize,
) -> Result<Row, BoxError> {
    println!("== Postgres + S3, {workers} worker process(es)");
    let dir = tempfile::tempdir()?;
    let name = format!("rwbench_{}", uuid::Uuid::new_v4().simple());
    let (admin, _) = retainwise_queue::connect(pg_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let db_url = match pg_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => return Err(format!("no database name in {pg_url}").into()),
    };
    let env = vec![
        ("RETAINWISE_DATABASE_URL".to_owned(), db_url.clone()),
        (
            "RETAINWISE_STORAGE_URL".to_owned(),
            format!("s3://{bucket}/{name}"),
        ),
    ];
    let mut api_env = env.clone();
    api_env.push(("RETAINWISE_BIND".into(), "127.0.0.1:0".into()));
    let api = Proc::spawn("api", "api", dir.path(), &api_env);
    let base = api.listening().await;
    let uploads_per_s = upload_many(&base, csv, args.jobs, args.clients).await?;
    let (pool, _) = retainwise_queue::connect(&db_url).await?;

    let spawned = Instant::now();
    let mut procs = Vec::new();
    let mut metrics = Vec::new();
    for i in 0..workers {
        let port = free_port();
        let mut env = env.clone();
        env.push((
            "RETAINWISE_METRICS_BIND".into(),
            format!("127.0.0.1:{port}"),
        ));
        procs.push(Proc::spawn(
            "worker",
            &format!("worker{i}"),
            dir.path(),
            &env,
        ));
        metrics.push(format!("http://127.0.0.1:{port}/metrics"));
    }
    wait_completed(&pool, args.jobs).await?;
    let drained = times(&pool).await?;
    let startup = startup_of(&drained, spawned);
    let drain_per_s = drain_rate(&drained);
    let ids = stream(&base, csv, args.stream, args.rate).await?;
    wait_completed(&pool, args.jobs + args.stream).await?;
    let (start_ms, done_ms) = latencies(&times(&pool).await?, &ids);
    let mut stages = Stages::default();
    for url in &metrics {
        stages.add(&scrape(url).await);
    }
    for p in procs {
        p.stop();
    }
    api.stop();
    pool.close().await;
    let loops = workers * CONCURRENCY;
    let noop_per_s = noop_drain(&db_url, args.noop_jobs, loops).await?;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(Row {
        setup: format!("Postgres + S3: {workers} worker process(es)"),
        loops,
        uploads_per_s,
        drain_per_s,
        startup,
        noop_per_s,
        start_ms,
        done_ms,
        stages: (!stages.counts.is_empty()).then_some(stages),
    })
}

// ---------------------------------------------------------------- the report

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn print_tables(args: &Args, rows: &[Row]) {
    println!(
        "\n{} jobs of a 10-row Telco CSV per setup (uploads from {} clients, then drained); {} more \
         uploaded one at a time at {}/s for latencies; no-op drain of {} messages",
        args.jobs, args.clients, args.stream, args.rate, args.noop_jobs
    );
    println!(
        "\n| setup | receive loops | uploads/s | drain jobs/s | worker start-up | no-op jobs/s (same loops) | **drain / no-op** | start p50 | start p99 | completed p50 | completed p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} s | {:.0} | **{:.3}×** | {} ms | {} ms | {} ms | {} ms |",
            r.setup,
            r.loops,
            r.uploads_per_s,
            r.drain_per_s,
            r.startup.as_secs_f64(),
            r.noop_per_s,
            r.drain_per_s / r.noop_per_s,
            percentile(&r.start_ms, 0.50),
            percentile(&r.start_ms, 0.99),
            percentile(&r.done_ms, 0.50),
            percentile(&r.done_ms, 0.99),
        );
    }
    println!(
        "\nmean time per job in the worker, from its /metrics histograms (all jobs of the setup):"
    );
    println!("\n| setup | download | score (decode, map, score, explain) | upload | rest (database, model lookup, ack) | whole job |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        let Some(s) = &r.stages else {
            println!("| {} | no /metrics | | | | |", r.setup);
            continue;
        };
        let ms = |stage: &str| s.mean_ms(stage);
        let staged: f64 = ["download", "score", "upload"]
            .iter()
            .filter_map(|st| ms(st))
            .sum();
        let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} ms"));
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.setup,
            fmt(ms("download")),
            fmt(ms("score")),
            fmt(ms("upload")),
            fmt(ms("job").map(|j| j - staged)),
            fmt(ms("job")),
        );
    }
    println!(
        "\n(drain / no-op: the end-to-end job rate as a fraction of the queue alone with the same number of \
         receive loops on the same engine in this run; start = started_at − queued_at, completed = \
         completed_at − queued_at, 1 ms resolution)"
    );
}
