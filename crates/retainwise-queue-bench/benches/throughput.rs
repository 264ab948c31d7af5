//! No-op jobs per second through the queue on Postgres, and enqueue-to-start latency, side by
//! side with graphile_worker 0.14 on the same Postgres in the same run.
//!
//! ```text
//! . scripts/test-services.sh
//! cargo bench -p retainwise-queue-bench --bench throughput -- [--jobs 50000] [--samples 1000]
//! ```
//!
//! Throughput: `--jobs` no-op jobs are inserted first, then one consumer drains them; jobs/s is
//! jobs divided by the time from starting the consumer until the last job is done — for ours,
//! until the database confirmed the last ack (the message row is gone), which is stricter than
//! graphile_worker's count of handler completions. Repeated with 1, 4 and 16 concurrent handlers.
//!
//! Latency: one consumer with one handler waits on an empty queue; `--samples` times, one job
//! is sent from *another* handle (another connection pool, as another process would be, so the
//! wake-up travels through Postgres `NOTIFY`) and the handler's start is timed from the call
//! that sends it (graphile_worker: from `add_raw_job`, as its own latency benchmark does).
//!
//! Settings compared, each contender at two batch sizes so that every ratio can be read at equal
//! batches as well as against graphile_worker's published throughput settings:
//! * ours: one `SqlQueue` handle (pool of 10), two prefetch tasks each claiming up to B
//!   messages per `receive` into a local buffer of B, handlers acking through an
//!   [`AckBatcher`] (5 ms window, up to 1000 receipts per `ack_many`); B = 100 and 250.
//! * graphile_worker, throughput settings: local queue of B, completions batched every 5 ms,
//!   poll interval 10 ms, concurrency = handlers; B = 100 (graphile_worker's published settings) and 250.
//! * graphile_worker, its own benchmark settings (`benches/common` of graphile_worker 0.14:
//!   local queue of 100, poll interval 10 ms), concurrency = handlers.

use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, RawJobSpec, TaskHandler, WorkerContext,
    WorkerOptions,
};
use retainwise_queue::{
    connect, AckBatcher, Delivery, OutgoingMessage, PendingAck, Queue, QueueConfig, SqlQueue,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const URL_VAR: &str = "RETAINWISE_TEST_POSTGRES_URL";
const HANDLERS: [usize; 3] = [1, 4, 16];
/// Messages claimed per `receive` and the size of the local buffer: graphile_worker's local
/// queue size in its throughput settings, and a larger batch.
const BATCHES: [usize; 2] = [100, 250];
const PREFETCHERS: usize = 2;
const ACK_WINDOW: Duration = Duration::from_millis(5);
const ACK_MAX_BATCH: usize = 1000;
const GRAPHILE_SCHEMA: &str = "graphile_worker";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    /// Claims of this many messages.
    Ours(usize),
    /// Throughput settings with a local queue of this many jobs.
    GraphileThroughput(usize),
    GraphileOwnBench,
}

impl Contender {
    const ALL: [Contender; 5] = [
        Contender::Ours(BATCHES[0]),
        Contender::Ours(BATCHES[1]),
        Contender::GraphileThroughput(BATCHES[0]),
        Contender::GraphileThroughput(BATCHES[1]),
        Contender::GraphileOwnBench,
    ];

    fn label(self) -> String {
        match self {
            Contender::Ours(b) => format!("retainwise-queue (claims of {b}, AckBatcher)"),
            Contender::GraphileThroughput(b) => {
                format!("graphile_worker 0.14 (throughput, local queue {b})")
            }
            Contender::GraphileOwnBench => "graphile_worker 0.14 (its own bench settings)".into(),
        }
    }

    fn is_ours(self) -> bool {
        matches!(self, Contender::Ours(_))
    }
}

/// The ratio rows: (numerator, denominator, what the row means).
const RATIOS: [(usize, usize, &str); 4] = [
    (1, 2, "ours 250 / graphile throughput settings"),
    (0, 2, "ours 100 / graphile 100 (equal batches)"),
    (1, 3, "ours 250 / graphile 250 (equal batches)"),
    (0, 4, "ours 100 / graphile own bench settings"),
];

struct Args {
    jobs: usize,
    samples: usize,
    /// `--only ours` or `--only graphile`: a quicker partial run while tuning.
    only: Option<String>,
}

fn args() -> Args {
    let mut out = Args {
        jobs: 50_000,
        samples: 1_000,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a positive whole number"))
        };
        match arg.as_str() {
            "--jobs" => out.jobs = value("--jobs"),
            "--samples" => out.samples = value("--samples"),
            "--only" => out.only = it.next(),
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other:?} (expected --jobs N, --samples N)"),
        }
    }
    out
}

fn main() -> Result<(), BoxError> {
    let args = args();
    let Ok(url) = std::env::var(URL_VAR) else {
        eprintln!(
            "*** SKIPPED: set {URL_VAR} (`. scripts/test-services.sh` starts a throwaway Postgres) ***"
        );
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&url, &args))
}

async fn run(url: &str, args: &Args) -> Result<(), BoxError> {
    println!(
        "queue throughput on Postgres ({} no-op jobs pre-inserted per run, {} cores), latency over {} jobs",
        args.jobs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.samples
    );
    let mut rates = vec![Vec::new(); Contender::ALL.len()];
    // Interleaved, so a change in machine load touches every contender alike.
    let skip = |c: Contender| match args.only.as_deref() {
        Some("ours") => !c.is_ours(),
        Some("graphile") => c.is_ours(),
        _ => false,
    };
    for handlers in HANDLERS {
        for (i, contender) in Contender::ALL.into_iter().enumerate() {
            if skip(contender) {
                rates[i].push(f64::NAN);
                continue;
            }
            let rate = match contender {
                Contender::Ours(batch) => ours_drain(url, args.jobs, handlers, batch).await?,
                _ => graphile_drain(url, args.jobs, handlers, contender).await?,
            };
            eprintln!(
                "  {:<50} {handlers:>2} handlers: {rate:>9.0} jobs/s",
                contender.label()
            );
            rates[i].push(rate);
        }
    }
    let mut latencies = Vec::new();
    for contender in Contender::ALL {
        if skip(contender) {
            latencies.push(Vec::new());
            continue;
        }
        let mut l = match contender {
            Contender::Ours(batch) => ours_latency(url, args.samples, batch).await?,
            _ => graphile_latency(url, args.samples, contender).await?,
        };
        l.sort();
        eprintln!(
            "  {:<50} latency p50 {:.2} ms",
            contender.label(),
            ms(percentile(&l, 0.50))
        );
        latencies.push(l);
    }

    println!();
    println!(
        "| {:<50} | {:>10} | {:>10} | {:>10} | {:>7} | {:>7} |",
        "jobs/s (no-op)", "1 handler", "4", "16", "p50 ms", "p99 ms"
    );
    println!(
        "|{:-<52}|{:->12}|{:->12}|{:->12}|{:->9}|{:->9}|",
        "", "", "", "", "", ""
    );
    for (i, contender) in Contender::ALL.into_iter().enumerate() {
        println!(
            "| {:<50} | {:>10.0} | {:>10.0} | {:>10.0} | {:>7.2} | {:>7.2} |",
            contender.label(),
            rates[i][0],
            rates[i][1],
            rates[i][2],
            ms(percentile(&latencies[i], 0.50)),
            ms(percentile(&latencies[i], 0.99)),
        );
    }
    for (o, g, name) in RATIOS {
        println!(
            "| {name:<50} | {:>9.2}x | {:>9.2}x | {:>9.2}x | {:>6.2}x | {:>6.2}x |",
            rates[o][0] / rates[g][0],
            rates[o][1] / rates[g][1],
            rates[o][2] / rates[g][2],
            ms(percentile(&latencies[o], 0.50)) / ms(percentile(&latencies[g], 0.50)),
            ms(percentile(&latencies[o], 0.99)) / ms(percentile(&latencies[g], 0.99)),
        );
    }
    println!(
        "(throughput ratios > 1: ours is faster; latency ratios < 1: ours starts jobs sooner)"
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------- ours

/// `ANALYZE` the whole database after pre-inserting, for every contender alike. Autovacuum does
/// the same within a minute of a burst; without it, a table filled seconds ago has no planner
/// statistics and Postgres may walk a secondary index over the whole backlog for each
/// primary-key lookup, which measures the missing statistics rather than the queue.
async fn analyze(url: &str) -> Result<(), BoxError> {
    let (pool, _) = connect(url).await?;
    sqlx::query("ANALYZE").execute(&pool).await?;
    pool.close().await;
    Ok(())
}

async fn open_queue(url: &str, name: &str) -> Result<SqlQueue, BoxError> {
    let (pool, dialect) = connect(url).await?;
    let config = QueueConfig {
        name: name.to_owned(),
        visibility_timeout: Duration::from_secs(60),
        max_receives: 3,
        poll_interval: Duration::from_secs(1),
        migrate: true,
    };
    Ok(SqlQueue::new(pool, dialect, config).await?)
}

/// Inserts `jobs` messages through the public API (`send_in`, 500 per transaction, 4 at a time).
async fn preinsert(queue: &SqlQueue, jobs: usize) -> Result<(), BoxError> {
    const PER_TX: usize = 500;
    let chunks: Vec<_> = (0..jobs).step_by(PER_TX).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for lanes in chunks.chunks(chunks.len().div_ceil(4).max(1)) {
        let (queue, lanes) = (queue.clone(), lanes.to_vec());
        tasks.spawn(async move {
            for start in lanes {
                let mut tx = queue.pool().begin().await?;
                for i in start..(start + PER_TX).min(jobs) {
                    queue
                        .send_in(&mut tx, &OutgoingMessage::new(format!("{{\"job\":{i}}}")))
                        .await?;
                }
                tx.commit().await?;
            }
            Ok::<_, BoxError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// A worker as a throughput-minded application would run one: prefetch tasks claim batches
/// into a bounded local buffer, `handlers` tasks run jobs from it, acks go through an
/// [`AckBatcher`]. Every started job's `Instant` goes to `starts` if given.
struct Consumer {
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<Result<(), BoxError>>,
    confirmed: Arc<AtomicUsize>,
    confirmed_changed: Arc<tokio::sync::Notify>,
}

impl Consumer {
    fn start(
        queue: Arc<dyn Queue>,
        handlers: usize,
        batch: usize,
        wait: Duration,
        starts: Option<mpsc::UnboundedSender<Instant>>,
    ) -> Consumer {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        // Bounded: a prefetcher with a full batch in hand waits for room, so at most
        // batch * (PREFETCHERS + 1) messages are leased but not started.
        let (buffer_tx, buffer_rx) = flume::bounded::<Delivery>(batch);
        for _ in 0..PREFETCHERS {
            let (queue, stop, buffer_tx) = (queue.clone(), stop.clone(), buffer_tx.clone());
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for d in queue.receive(batch, wait).await? {
                        if buffer_tx.send_async(d).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            });
        }
        drop(buffer_tx);
        let batcher = Arc::new(AckBatcher::spawn(queue.clone(), ACK_WINDOW, ACK_MAX_BATCH));
        let (pending_tx, mut pending_rx) = mpsc::unbounded_channel::<PendingAck>();
        for _ in 0..handlers {
            let (buffer_rx, batcher, pending_tx, starts) = (
                buffer_rx.clone(),
                batcher.clone(),
                pending_tx.clone(),
                starts.clone(),
            );
            tasks.spawn(async move {
                loop {
                    let Ok(delivery) = buffer_rx.recv_async().await else {
                        return Ok(());
                    };
                    if let Some(starts) = &starts {
                        let _ = starts.send(Instant::now());
                    }
                    // The job: nothing. Then the ack, batched; its result is checked below.
                    let _ = pending_tx.send(batcher.ack(delivery.receipt));
                }
            });
        }
        drop(pending_tx);
        let confirmed = Arc::new(AtomicUsize::new(0));
        let confirmed_changed = Arc::new(tokio::sync::Notify::new());
        {
            let (confirmed, changed) = (confirmed.clone(), confirmed_changed.clone());
            tasks.spawn(async move {
                while let Some(pending) = pending_rx.recv().await {
                    pending.wait().await?;
                    confirmed.fetch_add(1, Ordering::SeqCst);
                    changed.notify_waiters();
                }
                drop(batcher);
                Ok(())
            });
        }
        Consumer {
            stop,
            tasks,
            confirmed,
            confirmed_changed,
        }
    }

    /// Waits until `n` acks were confirmed by the database.
    async fn wait_confirmed(&self, n: usize) {
        loop {
            let changed = self.confirmed_changed.notified();
            if self.confirmed.load(Ordering::SeqCst) >= n {
                return;
            }
            // A bounded wait: notify_waiters does not remember a wake-up between the load
            // and the await.
            let _ = tokio::time::timeout(Duration::from_millis(5), changed).await;
        }
    }

    async fn shutdown(mut self) -> Result<(), BoxError> {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(done) = self.tasks.join_next().await {
            done??;
        }
        Ok(())
    }
}

async fn ours_drain(
    url: &str,
    jobs: usize,
    handlers: usize,
    batch: usize,
) -> Result<f64, BoxError> {
    let name = format!("bench-{}", uuid::Uuid::new_v4());
    let queue = open_queue(url, &name).await?;
    preinsert(&queue, jobs).await?;
    analyze(url).await?;
    let stats = queue.stats().await?;
    assert_eq!(stats.depth, jobs as u64, "pre-insert: {stats:?}");
    let started = Instant::now();
    let consumer = Consumer::start(
        Arc::new(queue.clone()),
        handlers,
        batch,
        Duration::from_millis(100),
        None,
    );
    consumer.wait_confirmed(jobs).await;
    let elapsed = started.elapsed();
    consumer.shutdown().await?;
    let stats = queue.stats().await?;
    assert_eq!(
        (stats.depth, stats.in_flight, stats.dead),
        (0, 0, 0),
        "not drained: {stats:?}"
    );
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

async fn ours_latency(url: &str, samples: usize, batch: usize) -> Result<Vec<Duration>, BoxError> {
    let name = format!("bench-latency-{}", uuid::Uuid::new_v4());
    let receiver = open_queue(url, &name).await?;
    let sender = open_queue(url, &name).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !receiver.is_listening() {
        assert!(
            Instant::now() < deadline,
            "the LISTEN connection did not come up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (starts_tx, mut starts) = mpsc::unbounded_channel();
    let consumer = Consumer::start(
        Arc::new(receiver),
        1,
        batch,
        Duration::from_secs(5),
        Some(starts_tx),
    );
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples + WARMUP {
        let sent = Instant::now();
        sender
            .send(&OutgoingMessage::new(format!("{{\"job\":{i}}}")))
            .await?;
        let started = starts.recv().await.ok_or("consumer ended")?;
        if i >= WARMUP {
            latencies.push(started - sent);
        }
    }
    consumer.wait_confirmed(samples + WARMUP).await;
    consumer.shutdown().await?;
    Ok(latencies)
}

/// Jobs whose latency is not counted (connections warming up).
const WARMUP: usize = 20;

// ---------------------------------------------------------------- graphile_worker

#[derive(serde::Serialize, serde::Deserialize)]
struct Noop {
    job: usize,
}

/// What a graphile_worker job reports to the benchmark (a worker extension).
#[derive(Clone, Debug)]
struct Probe {
    completed: Arc<AtomicUsize>,
    starts: Option<mpsc::UnboundedSender<Instant>>,
}

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = "noop";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        if let Some(probe) = ctx.get_ext::<Probe>() {
            if let Some(starts) = &probe.starts {
                let _ = starts.send(Instant::now());
            }
            probe.completed.fetch_add(1, Ordering::SeqCst);
        }
        Ok::<(), String>(())
    }
}

fn graphile_options(
    url: &str,
    handlers: usize,
    contender: Contender,
    probe: Probe,
) -> WorkerOptions {
    let options = WorkerOptions::default()
        .database_url(url)
        .schema(GRAPHILE_SCHEMA)
        .concurrency(handlers)
        .poll_interval(Duration::from_millis(10))
        .local_queue(LocalQueueConfig::default().with_size(match contender {
            Contender::GraphileThroughput(size) => size,
            _ => 100,
        }))
        .listen_os_shutdown_signals(false)
        .add_extension(probe)
        .define_job::<Noop>();
    match contender {
        Contender::GraphileThroughput(_) => {
            options.complete_job_batch_delay(Duration::from_millis(5))
        }
        _ => options,
    }
}

async fn graphile_drain(
    url: &str,
    jobs: usize,
    handlers: usize,
    contender: Contender,
) -> Result<f64, BoxError> {
    let completed = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        completed: completed.clone(),
        starts: None,
    };
    let worker = Arc::new(
        graphile_options(url, handlers, contender, probe)
            .init()
            .await?,
    );
    let utils = worker.create_utils();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(5_000) {
        let specs: Vec<RawJobSpec> = chunk
            .iter()
            .map(|&job| RawJobSpec {
                identifier: Noop::IDENTIFIER.to_owned(),
                payload: serde_json::to_value(Noop { job }).expect("plain struct"),
                spec: JobSpec::default(),
            })
            .collect();
        utils.add_raw_jobs(&specs).await?;
    }
    analyze(url).await?;
    let started = Instant::now();
    let running = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.run().await })
    };
    while completed.load(Ordering::SeqCst) < jobs {
        if running.is_finished() {
            return Err(format!("graphile_worker stopped: {:?}", running.await?).into());
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let elapsed = started.elapsed();
    worker.request_shutdown();
    running.await??;
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

async fn graphile_latency(
    url: &str,
    samples: usize,
    contender: Contender,
) -> Result<Vec<Duration>, BoxError> {
    let (starts_tx, mut starts) = mpsc::unbounded_channel();
    let probe = Probe {
        completed: Arc::new(AtomicUsize::new(0)),
        starts: Some(starts_tx),
    };
    let worker = Arc::new(graphile_options(url, 1, contender, probe).init().await?);
    let utils = worker.create_utils();
    let running = {
        let worker = worker.clone();
        tokio::spawn(async move { worker.run().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(samples);
    for job in 0..samples + WARMUP {
        let sent = Instant::now();
        utils
            .add_raw_job(Noop::IDENTIFIER, Noop { job }, JobSpec::default())
            .await?;
        let started = starts.recv().await.ok_or("graphile_worker ended")?;
        if job >= WARMUP {
            latencies.push(started - sent);
        }
    }
    worker.request_shutdown();
    running.await??;
    Ok(latencies)
}
