//! One big file end to end, scored in pieces by a fleet: real `retainwise` processes on
//! Postgres + S3 (`scripts/test-services.sh` starts both), the file sent by `retainwise upload`
//! (the direct upload API), every stage timed from the database the processes share.
//!
//! ```text
//! . scripts/test-services.sh
//! cargo bench --workspace --bench big_file -- [--rows 5000000] [--input FILE.csv]
//!     [--workers 1,3] [--chunk-rows 1000000] [--python PYTHON]
//! ```
//!
//! Without `--input` the file is made by `../shared/bench/python/make_big.py` (pandas; `--python`
//! names an interpreter that has it) from the Telco sample. For each fleet size, on a fresh
//! database and S3 prefix: one `retainwise api` and `N` `retainwise worker` processes
//! (concurrency 2 each) waiting on the queue, then the upload. Printed per run:
//!
//! - **stages**, from the rows' own epoch-millisecond timestamps: *queue + cut* (the upload
//!   completed → the coordinator's transaction that queued the pieces: receive, download,
//!   the quote-aware scan), *pieces* (pieces queued → the last piece recorded), *merge* (the last
//!   piece recorded → COMPLETED), and the mean time of one piece;
//! - **peak RSS of every process** (`VmHWM`), the API's included;
//! - the end-to-end **rows/s** (upload completed → COMPLETED).
//!
//! Then, from the one-worker run's measured stage rates, the expected wall time of a file of
//! `--project-rows` (default 50,000,000) rows on 1, 10 and 100 workers, each stage with what
//! bounds it. A projection, not a measurement: this machine has two cores, so more worker
//! processes here share them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::AnyPool;

#[path = "support/procs.rs"]
mod procs;
use procs::{load, Proc};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Receive loops per worker process (`retainwise worker`'s default concurrency).
const CONCURRENCY: f64 = 2.0;

struct Args {
    rows: u64,
    input: Option<PathBuf>,
    workers: Vec<usize>,
    chunk_rows: u64,
    python: String,
    project_rows: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        rows: 5_000_000,
        input: None,
        workers: vec![1, 3],
        chunk_rows: 1_000_000,
        python: "python3".to_owned(),
        project_rows: 50_000_000,
    };
    let mut args = std::env::args().skip(1);
    let num = |v: Option<String>, flag: &str| -> u64 {
        v.unwrap_or_default()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{flag} N"))
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--rows" => a.rows = num(args.next(), "--rows"),
            "--chunk-rows" => a.chunk_rows = num(args.next(), "--chunk-rows"),
            "--project-rows" => a.project_rows = num(args.next(), "--project-rows"),
            "--input" => a.input = Some(args.next().expect("--input FILE").into()),
            "--python" => a.python = args.next().expect("--python PYTHON"),
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
    let (Some(pg), Some(bucket)) = (
        service("RETAINWISE_TEST_POSTGRES_URL"),
        service("RETAINWISE_TEST_S3_BUCKET"),
    ) else {
        println!(
            "\n*** SKIPPED: RETAINWISE_TEST_POSTGRES_URL / RETAINWISE_TEST_S3_BUCKET not set \
             (`. scripts/test-services.sh` starts them) ***\n"
        );
        return;
    };
    let work = tempfile::tempdir().expect("temp dir");
    let file = match &args.input {
        Some(f) => f.clone(),
        None => make_file(&args, work.path()),
    };
    let bytes = std::fs::metadata(&file).expect("the input file").len();
    let rows = count_records(&file);
    println!(
        "input: {} ({rows} data rows, {:.0} MB); pieces of {} rows",
        file.display(),
        bytes as f64 / 1e6,
        args.chunk_rows
    );
    println!("load before: {}", load());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runs = Vec::new();
    for &n in &args.workers {
        let run = runtime
            .block_on(one_run(&args, &file, rows, &pg, &bucket, n))
            .unwrap_or_else(|e| panic!("{n} worker(s): {e}"));
        run.print(rows);
        runs.push(run);
    }
    println!("load after:  {}", load());
    if let Some(one) = runs.iter().find(|r| r.workers == 1) {
        project(one, rows, bytes, &args);
    } else {
        println!("(no 1-worker run: no projection)");
    }
}

fn service(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `--rows` Telco-schema rows by the anchor's own generator.
fn make_file(args: &Args, dir: &Path) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = here.join("../../../shared");
    let telco = std::env::var_os("RETAINWISE_TELCO_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared.join("data/telco-customer-churn.csv"));
    let script = shared.join("bench/python/make_big.py");
    assert!(
        telco.exists() && script.exists(),
        "*** {} or {} is absent: pass --input FILE.csv ***",
        telco.display(),
        script.display()
    );
    let out = dir.join(format!("telco-{}.csv", args.rows));
    let started = Instant::now();
    let status = Command::new(&args.python)
        .arg(&script)
        .arg(&telco)
        .arg(args.rows.to_string())
        .arg(&out)
        .status()
        .expect("run make_big.py (--python names an interpreter with pandas)");
    assert!(status.success(), "make_big.py failed: {status}");
    println!(
        "made {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    out
}

/// Data records of `file` by its lines (the generator writes no quoted newlines).
fn count_records(file: &Path) -> u64 {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(std::fs::File::open(file).expect("open the input"));
    reader.split(b'\n').count().saturating_sub(1) as u64
}

/// What one fleet size measured.
struct Run {
    workers: usize,
    pieces: u64,
    upload_s: f64,
    cut_s: f64,
    pieces_s: f64,
    merge_s: f64,
    /// Mean seconds of one piece, start to record.
    piece_mean_s: f64,
    total_s: f64,
    rss: Vec<(String, f64)>,
}

impl Run {
    fn print(&self, rows: u64) {
        println!(
            "\n== {} worker process(es), {} receive loops: {} pieces",
            self.workers,
            self.workers * 2,
            self.pieces
        );
        println!("| stage | seconds |");
        println!("|---|---:|");
        println!(
            "| upload (`retainwise upload`, client side) | {:.1} |",
            self.upload_s
        );
        println!(
            "| queue + cut (receive, download, boundary scan, pieces queued) | {:.1} |",
            self.cut_s
        );
        println!("| pieces (queued → last recorded) | {:.1} |", self.pieces_s);
        println!("| one piece, mean | {:.1} |", self.piece_mean_s);
        println!("| merge (last piece → COMPLETED) | {:.1} |", self.merge_s);
        println!(
            "| **upload completed → COMPLETED** | **{:.1}** ({:.0} rows/s) |",
            self.total_s,
            rows as f64 / self.total_s
        );
        println!("peak RSS: {}", {
            let parts: Vec<String> = self
                .rss
                .iter()
                .map(|(name, mib)| format!("{name} {mib:.0} MiB"))
                .collect();
            parts.join(", ")
        });
    }
}

async fn one_run(
    args: &Args,
    file: &Path,
    rows: u64,
    pg_url: &str,
    bucket: &str,
    workers: usize,
) -> Result<Run, BoxError> {
    let dir = tempfile::tempdir()?;
    let name = format!("rwbig_{}", uuid::Uuid::new_v4().simple());
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
        (
            "RETAINWISE_CHUNK_ROWS".to_owned(),
            args.chunk_rows.to_string(),
        ),
    ];
    let mut api_env = env.clone();
    api_env.push(("RETAINWISE_BIND".into(), "127.0.0.1:0".into()));
    let api = Proc::spawn("api", "api", dir.path(), &api_env);
    let base = api.listening().await;
    // The workers wait on the queue before the file arrives, so their start-up is not a stage.
    let mut procs = Vec::new();
    for i in 0..workers {
        procs.push(Proc::spawn(
            "worker",
            &format!("worker{i}"),
            dir.path(),
            &env,
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_retainwise"))
        .args(["upload", "--server", &base])
        .arg(file)
        .env("RETAINWISE_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .output()?;
    let upload_s = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prediction = stdout
        .lines()
        .map(str::trim)
        .find(|l| uuid::Uuid::parse_str(l).is_ok())
        .ok_or_else(|| format!("`retainwise upload` printed no prediction id: {stdout}"))?
        .to_owned();

    let (pool, _) = retainwise_queue::connect(&db_url).await?;
    wait_completed(&pool, &prediction, rows).await?;
    let mut rss: Vec<(String, f64)> =
        vec![("api".to_owned(), api.peak_rss_mib().unwrap_or(f64::NAN))];
    for (i, p) in procs.iter().enumerate() {
        rss.push((format!("worker{i}"), p.peak_rss_mib().unwrap_or(f64::NAN)));
    }
    let (queued, completed): (i64, i64) =
        sqlx::query_as("SELECT queued_at, completed_at FROM predictions WHERE id = $1")
            .bind(&prediction)
            .fetch_one(&pool)
            .await?;
    let (pieces, cut, last, piece_ms): (i64, i64, i64, f64) = sqlx::query_as(
        "SELECT COUNT(*), MIN(queued_at), MAX(completed_at), \
         CAST(AVG(completed_at - started_at) AS DOUBLE PRECISION) \
         FROM prediction_chunks WHERE prediction_id = $1",
    )
    .bind(&prediction)
    .fetch_one(&pool)
    .await?;
    for p in procs {
        p.stop();
    }
    api.stop();
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let s = |ms: i64| ms as f64 / 1000.0;
    Ok(Run {
        workers,
        pieces: pieces as u64,
        upload_s,
        cut_s: s(cut - queued),
        pieces_s: s(last - cut),
        merge_s: s(completed - last),
        piece_mean_s: piece_ms / 1000.0,
        total_s: s(completed - queued),
        rss,
    })
}

/// Waits until `prediction` is COMPLETED with `rows` rows accounted for; FAILED is an error.
async fn wait_completed(pool: &AnyPool, prediction: &str, rows: u64) -> Result<(), BoxError> {
    let start = Instant::now();
    loop {
        let (status, total, rejected, error): (String, Option<i64>, i64, Option<String>) =
            sqlx::query_as(
                "SELECT status, rows_total, rows_rejected, error_message FROM predictions WHERE id = $1",
            )
            .bind(prediction)
            .fetch_one(pool)
            .await?;
        match status.as_str() {
            "COMPLETED" => {
                let total = total.unwrap_or(0) as u64;
                if total != rows {
                    return Err(format!(
                        "COMPLETED with {total} rows of {rows} ({rejected} rejected)"
                    )
                    .into());
                }
                return Ok(());
            }
            "FAILED" | "CANCELLED" => return Err(format!("{status}: {error:?}").into()),
            _ => {}
        }
        if start.elapsed() > Duration::from_secs(3600) {
            return Err("not COMPLETED after an hour".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The expected wall time of `--project-rows` rows on 1, 10 and 100 workers, from the
/// one-worker run's stage rates. Each stage scales as it is built: the cut is one process
/// reading the whole file (bytes/s measured); pieces run `2 × workers` at a time, so their
/// wall time is the number of rounds times one piece's measured time; the merge is one process
/// streaming every piece's result into one object (rows/s measured).
fn project(one: &Run, rows: u64, bytes: u64, args: &Args) {
    let target = args.project_rows as f64;
    let scale = target / rows as f64;
    let cut_rate = bytes as f64 / one.cut_s.max(1e-3);
    let merge_rate = rows as f64 / one.merge_s.max(1e-3);
    // One piece on one receive loop of a worker that had both loops busy, as a fleet's would.
    let piece_s =
        one.piece_mean_s * args.chunk_rows as f64 / (rows as f64 / one.pieces.max(1) as f64);
    let pieces = (target / args.chunk_rows as f64).ceil();
    println!(
        "\n== projection: {} rows ({:.1} GB) in pieces of {} rows = {pieces} pieces",
        args.project_rows,
        bytes as f64 * scale / 1e9,
        args.chunk_rows
    );
    println!(
        "measured on 1 worker: cut {:.0} MB/s, one piece of {} rows {:.1} s, merge {:.0} rows/s",
        cut_rate / 1e6,
        args.chunk_rows,
        piece_s,
        merge_rate
    );
    println!("| workers | cut | pieces | merge | total | bound by |");
    println!("|---:|---:|---:|---:|---:|---|");
    for w in [1.0_f64, 10.0, 100.0] {
        let cut = bytes as f64 * scale / cut_rate;
        let rounds = (pieces / (w * CONCURRENCY)).ceil();
        let pieces_s = rounds * piece_s;
        let merge = target / merge_rate;
        let total = cut + pieces_s + merge;
        let bound = if pieces_s >= cut.max(merge) {
            if rounds <= 1.0 {
                "one piece's time (fewer pieces than receive loops: smaller pieces would help)"
            } else {
                "scoring: the pieces"
            }
        } else if cut >= merge {
            "the coordinator's scan of the whole file"
        } else {
            "the merge streaming the whole result through one process"
        };
        println!(
            "| {w:.0} | {cut:.0} s | {pieces_s:.0} s | {merge:.0} s | **{:.1} min** | {bound} |",
            total / 60.0
        );
    }
    println!(
        "S3 request rates do not bound it: a piece makes a handful of requests and the merge one \
         request per part of its multipart upload, far below the 3,500 PUT and 5,500 GET requests per second per \
         prefix S3 supports (AWS S3 User Guide, \"Best practices design patterns: optimizing \
         Amazon S3 performance\")."
    );
}
