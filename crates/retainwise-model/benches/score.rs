//! Scoring benchmark with exact explanations, side by side with the Python anchor.
//!
//! ```text
//! cargo bench -p retainwise-model --bench score -- [--rows N] [--input FILE]
//!     [--telco TELCO.csv] [--python PYTHON] [--no-anchor] [--keep]
//! ```
//!
//! 1. Makes an N-row Telco-schema file (default 1,000,000) with unique customer ids: with
//!    `../shared/bench/python/make_big.py` when `--python` (default `$RETAINWISE_ANCHOR_PYTHON`,
//!    else `/tmp/anchor/bin/python`) has pandas, else the same recipe in Rust (Telco rows
//!    repeated, ids `C000000000…`, MonthlyCharges jittered ±10 %). `--input` skips this.
//! 2. Stages, each timed: read + decode + encode every row (the scorer's sequential part);
//!    probabilities + TreeSHAP + formatting of the first 100,000 encoded rows on every core;
//!    then the whole `score_csv` end to end, with its peak RSS (`VmHWM`, reset before the run
//!    through `/proc/self/clear_refs`) and CPU time.
//! 3. Unless `--no-anchor`, runs `score.py` (pandas + XGBoost 300 trees + TreeSHAP) on the same
//!    file under `/usr/bin/time` and prints the ratio of rows/s.
//!
//! Figures depend on the machine and on what else runs on it: compare within one run.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use retainwise_model::batch::{Batch, BATCH_ROWS};
use retainwise_model::intake::Intake;
use retainwise_model::{score_csv, InputLimits, Model, ScoreOptions};

struct Args {
    rows: usize,
    input: Option<PathBuf>,
    telco: PathBuf,
    python: PathBuf,
    anchor: bool,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        rows: 1_000_000,
        input: None,
        telco: std::env::var_os("RETAINWISE_TELCO_CSV")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/data/telco-customer-churn.csv")
            }),
        python: std::env::var_os("RETAINWISE_ANCHOR_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/anchor/bin/python")),
        anchor: true,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value().replace('_', "").parse().expect("--rows N"),
            "--input" => a.input = Some(value().into()),
            "--telco" => a.telco = value().into(),
            "--python" => a.python = value().into(),
            "--no-anchor" => a.anchor = false,
            "--keep" => a.keep = true,
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/python")
}

fn python_has_pandas(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import pandas, xgboost"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The make_big.py recipe in Rust: Telco rows repeated to `n`, unique ids, MonthlyCharges
/// jittered by a uniform factor in [0.9, 1.1] (a fixed-seed LCG), no Churn column.
fn make_big_in_rust(telco: &Path, n: usize, out: &Path) {
    let mut reader = csv::Reader::from_path(telco).expect("reading the Telco file");
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "Churn")
        .collect();
    let id_at = header.iter().position(|h| h == "customerID").unwrap();
    let charges_at = header.iter().position(|h| h == "MonthlyCharges").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let mut w = csv::Writer::from_writer(BufWriter::new(File::create(out).unwrap()));
    w.write_record(keep.iter().map(|&i| &header[i])).unwrap();
    let mut s: u64 = 7;
    let mut cells: Vec<String> = Vec::new();
    for i in 0..n {
        let r = &rows[i % rows.len()];
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = (s >> 11) as f64 / (1u64 << 53) as f64;
        cells.clear();
        for &j in &keep {
            cells.push(if j == id_at {
                format!("C{i:09}")
            } else if j == charges_at {
                let v: f64 = r[j].parse().unwrap();
                format!("{}", (v * (0.9 + 0.2 * u) * 100.0).round() / 100.0)
            } else {
                r[j].to_string()
            });
        }
        w.write_record(&cells).unwrap();
    }
    w.flush().unwrap();
}

/// `VmHWM` (peak resident set) of this process, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process so far (from `/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the file (utime, stime) are the 12th and 13th after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let a = args();
    let model = Model::embedded_default();
    let threads = rayon::current_num_threads();
    let dir = std::env::temp_dir().join(format!("retainwise-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let input = match &a.input {
        Some(p) => p.clone(),
        None => {
            let out = dir.join(format!("telco-{}.csv", a.rows));
            let t = Instant::now();
            let how = if python_has_pandas(&a.python) {
                let ok = Command::new(&a.python)
                    .arg(bench_dir().join("make_big.py"))
                    .arg(&a.telco)
                    .arg(a.rows.to_string())
                    .arg(&out)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "make_big.py failed");
                "make_big.py"
            } else {
                make_big_in_rust(&a.telco, a.rows, &out);
                "the Rust recipe"
            };
            println!(
                "made {} ({} rows) with {how} in {:.1} s",
                out.display(),
                a.rows,
                t.elapsed().as_secs_f64()
            );
            out
        }
    };
    let rows = BufReader::new(File::open(&input).unwrap()).lines().count() - 1;
    println!("model {}  threads {threads}  rows {rows}", model.id());

    // Stage 1: read + decode + encode, sequential (as in the scorer).
    let t = Instant::now();
    let mut intake = Intake::open(
        model,
        BufReader::with_capacity(1 << 20, File::open(&input).unwrap()),
        &InputLimits::default(),
    )
    .unwrap();
    let sample = 100_000.min(rows).max(1);
    let mut batches: Vec<Batch> = Vec::new();
    let mut current = Batch::new(model.encoder().n_features());
    let mut encoded = 0usize;
    let mut scratch = vec![0.0; model.encoder().n_features()];
    loop {
        let keep = encoded < sample;
        let buf = if keep {
            current.next_features()
        } else {
            &mut scratch[..]
        };
        let Some(read) = intake.next_row(buf).unwrap() else {
            break;
        };
        if read.rejected.is_none() {
            encoded += 1;
            if keep {
                current.push(read.row, read.customer_id, read.flags);
                if current.len() == BATCH_ROWS {
                    batches.push(std::mem::replace(
                        &mut current,
                        Batch::new(model.encoder().n_features()),
                    ));
                }
            }
        }
    }
    if !current.is_empty() {
        batches.push(current);
    }
    let read_s = t.elapsed().as_secs_f64();

    // Stage 2: probability + TreeSHAP + explanation + formatting, every core.
    let opts = ScoreOptions::default();
    let t = Instant::now();
    let mut bytes = 0usize;
    for b in &batches {
        bytes += b
            .score(model, &opts.thresholds, None, opts.explain)
            .bytes
            .len();
    }
    let explain_s = t.elapsed().as_secs_f64();
    let explained: usize = batches.iter().map(Batch::len).sum();
    drop(batches);
    std::hint::black_box(bytes);

    // Stage 3: the whole scorer, end to end.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let out_path = dir.join("scored.csv");
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let report = score_csv(
        model,
        BufReader::with_capacity(1 << 20, File::open(&input).unwrap()),
        BufWriter::with_capacity(1 << 20, File::create(&out_path).unwrap()),
        &opts,
        &mut |_| {},
    )
    .unwrap();
    let total_s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let peak = peak_rss_mb();
    let ours = report.rows_scored as f64 / total_s;

    println!(
        "stage read+decode+encode (1 thread): {read_s:.2} s for {rows} rows ({:.0} rows/s)",
        rows as f64 / read_s
    );
    println!(
        "stage predict+TreeSHAP+format ({threads} threads): {explain_s:.2} s for {explained} rows ({:.0} rows/s)",
        explained as f64 / explain_s
    );
    println!(
        "score_csv end to end: {} rows in {total_s:.2} s = {ours:.0} rows/s; CPU {cpu:.1} s ({:.1} µs/row); peak RSS {peak:.1} MB",
        report.rows_scored,
        cpu * 1e6 / report.rows_scored as f64
    );

    if a.anchor {
        if python_has_pandas(&a.python) {
            let anchor_out = dir.join("anchor.csv");
            let t = Instant::now();
            let o = Command::new("/usr/bin/time")
                .args(["-f", "maxrss_kb=%M"])
                .arg(&a.python)
                .arg(bench_dir().join("score.py"))
                .arg(&a.telco)
                .arg(&input)
                .arg(&anchor_out)
                .output()
                .expect("running the anchor");
            let wall = t.elapsed().as_secs_f64();
            let stdout = String::from_utf8_lossy(&o.stdout);
            let stderr = String::from_utf8_lossy(&o.stderr);
            let line = stdout.lines().last().unwrap_or("").to_string();
            let rate = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("rows_per_s="))
                .and_then(|v| v.replace(',', "").parse::<f64>().ok());
            let rss = stderr
                .lines()
                .find_map(|l| l.strip_prefix("maxrss_kb="))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0);
            println!(
                "anchor score.py: {line} (wall {wall:.1} s incl. training; peak RSS {rss:.0} MB)"
            );
            match rate {
                Some(r) => println!("ratio: {:.1}x the anchor's rows/s", ours / r),
                None => println!("anchor output not understood: {stderr}"),
            }
            let _ = std::fs::remove_file(anchor_out);
        } else {
            println!(
                "anchor SKIPPED: {} lacks pandas/xgboost (python3 -m venv /tmp/anchor && /tmp/anchor/bin/pip install pandas xgboost shap scikit-learn lightgbm)",
                a.python.display()
            );
        }
    }
    if a.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
