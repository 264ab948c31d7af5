//! Scoring benchmark, side by side with the Python anchor and with this machine's
//! parse-and-write limit.
//!
//! ```text
//! cargo bench --workspace --bench score -- [--rows N] [--input FILE]
//!     [--telco TELCO.csv] [--python PYTHON] [--no-anchor] [--keep]
//! ```
//!
//! 1. Makes an N-row Telco-schema file (default 1,000,000) with unique customer ids: with
//!    `../shared/bench/python/make_big.py` when `--python` (default `$RETAINWISE_ANCHOR_PYTHON`,
//!    else `/tmp/anchor/bin/python`) has pandas, else the same recipe in Rust (Telco rows
//!    repeated, ids `C000000000…`, MonthlyCharges jittered ±10 %). `--input` skips this.
//! 2. Stages, each timed: read + decode + encode every row (the scorer's sequential part);
//!    probabilities + TreeSHAP + formatting of the first 100,000 encoded rows on every core.
//! 3. `score_csv` end to end with each explanation setting (`--explain top`, the default; `none`;
//!    `all`), each in a fresh child process of this bench, so each peak RSS (`VmHWM`) is that
//!    run's own: rows/s, CPU µs per row, peak RSS, output bytes per row.
//! 4. The parse-and-write limit, measured here on the same file: a minimal loop on every core
//!    (the file split at line ends) that parses each record with the `csv` crate, parses its
//!    numbers and writes as many bytes per row as the default run wrote, to a file. Ours is
//!    printed as a fraction of it.
//! 5. Unless `--no-anchor`, runs `score.py` (pandas + XGBoost 300 trees + TreeSHAP top 3) on the
//!    same file under `/usr/bin/time` and prints the ratios of rows/s, also against its rate
//!    without the SHAP stage.
//!
//! Figures depend on the machine and on what else runs on it: compare within one run.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use retainwise_model::batch::{Batch, BATCH_ROWS};
use retainwise_model::intake::Intake;
use retainwise_model::{score_csv, Explain, InputLimits, Model, ScoreOptions};

struct Args {
    rows: usize,
    input: Option<PathBuf>,
    telco: PathBuf,
    python: PathBuf,
    anchor: bool,
    keep: bool,
    /// A child run: `--one MODE INPUT OUTPUT` scores once and prints its figures.
    one: Option<(String, PathBuf, PathBuf)>,
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
        one: None,
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
            "--one" => {
                let mode = value();
                let input = value();
                a.one = Some((mode, input.into(), value().into()));
            }
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

/// One end-to-end run's figures, as a child prints them.
struct Run {
    rows: u64,
    secs: f64,
    cpu: f64,
    peak_mb: f64,
    out_bytes: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.secs
    }
}

/// The child side of [`run_child`]: scores `input` once with `mode` and prints one line.
fn one_run(model: &Model, mode: &str, input: &Path, output: &Path) {
    let opts = ScoreOptions {
        explain: mode.parse::<Explain>().expect("--one MODE"),
        ..ScoreOptions::default()
    };
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let report = score_csv(
        model,
        BufReader::with_capacity(1 << 20, File::open(input).unwrap()),
        BufWriter::with_capacity(1 << 20, File::create(output).unwrap()),
        &opts,
        &mut |_| {},
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let out_bytes = std::fs::metadata(output).map_or(0, |m| m.len());
    println!(
        "rows={} secs={secs} cpu={cpu} peak_mb={} out_bytes={out_bytes}",
        report.rows_scored,
        peak_rss_mb()
    );
}

/// Runs this bench again as `--one MODE` in a fresh process and reads its figures.
fn run_child(mode: &str, input: &Path, output: &Path) -> Run {
    let o = Command::new(std::env::current_exe().unwrap())
        .arg("--one")
        .arg(mode)
        .arg(input)
        .arg(output)
        .output()
        .expect("running the scoring child");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "the {mode} run failed: {text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = text.lines().last().unwrap_or_default();
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    Run {
        rows: field("rows") as u64,
        secs: field("secs"),
        cpu: field("cpu"),
        peak_mb: field("peak_mb"),
        out_bytes: field("out_bytes") as u64,
    }
}

/// The parse-and-write limit: `threads` threads, each reading its share of `input` (split at
/// line ends; the caller checks that no quoted field spans lines), parsing every record with
/// the `csv` crate, parsing its number-like fields as `f64` (the encoding's arithmetic part) and
/// writing `bytes_per_row` bytes per record (the id, then filler) to its own file in `dir`.
/// Returns (records, seconds).
fn parse_and_write_limit(
    input: &Path,
    dir: &Path,
    threads: usize,
    bytes_per_row: usize,
) -> (u64, f64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let len = std::fs::metadata(input).unwrap().len();
    // The header's end, then cut points moved forward to the next line start.
    let boundary = |at: u64| -> u64 {
        let mut f = File::open(input).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        let mut r = BufReader::new(f);
        let mut skipped = Vec::new();
        r.read_until(b'\n', &mut skipped).unwrap();
        (at + skipped.len() as u64).min(len)
    };
    let start = boundary(0);
    let mut cuts: Vec<u64> = (0..threads)
        .map(|k| {
            if k == 0 {
                start
            } else {
                boundary(start + (len - start) * k as u64 / threads as u64 - 1)
            }
        })
        .collect();
    cuts.push(len);
    let t = Instant::now();
    let rows: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let (from, to) = (cuts[k], cuts[k + 1]);
                let out = dir.join(format!("limit-{k}.csv"));
                scope.spawn(move || {
                    let mut f = File::open(input).unwrap();
                    f.seek(SeekFrom::Start(from)).unwrap();
                    let mut reader = csv::ReaderBuilder::new()
                        .has_headers(false)
                        .from_reader(BufReader::with_capacity(1 << 20, f.take(to - from)));
                    let mut w = BufWriter::with_capacity(1 << 20, File::create(&out).unwrap());
                    let filler = vec![b'x'; bytes_per_row];
                    let mut record = csv::ByteRecord::new();
                    let (mut n, mut sum) = (0u64, 0.0f64);
                    while reader.read_byte_record(&mut record).unwrap() {
                        for field in record.iter().skip(1) {
                            if let Some(x) = std::str::from_utf8(field)
                                .ok()
                                .and_then(|t| t.trim().parse::<f64>().ok())
                            {
                                sum += x;
                            }
                        }
                        let id = &record[0];
                        w.write_all(id).unwrap();
                        let rest = bytes_per_row.saturating_sub(id.len() + 1);
                        w.write_all(&filler[..rest]).unwrap();
                        w.write_all(b"\n").unwrap();
                        n += 1;
                    }
                    w.flush().unwrap();
                    std::hint::black_box(sum);
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = t.elapsed().as_secs_f64();
    for k in 0..threads {
        let _ = std::fs::remove_file(dir.join(format!("limit-{k}.csv")));
    }
    (rows, secs)
}

fn main() {
    let a = args();
    let model = Model::embedded_default();
    if let Some((mode, input, output)) = &a.one {
        one_run(model, mode, input, output);
        return;
    }
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

    // Stage 3: the whole scorer, end to end, once per explanation setting.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average (1, 5, 15 min) before the runs: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out_path = dir.join("scored.csv");
    let runs: Vec<(&str, Run)> = ["top", "none", "all"]
        .into_iter()
        .map(|mode| (mode, run_child(mode, &input, &out_path)))
        .collect();
    let _ = std::fs::remove_file(&out_path);

    println!(
        "stage read+decode+encode (1 thread): {read_s:.2} s for {rows} rows ({:.0} rows/s)",
        rows as f64 / read_s
    );
    println!(
        "stage predict+TreeSHAP+format ({threads} threads): {explain_s:.2} s for {explained} rows ({:.0} rows/s)",
        explained as f64 / explain_s
    );
    for (mode, r) in &runs {
        println!(
            "ours --explain {mode:<4}: {} rows in {:.2} s = {:.0} rows/s; CPU {:.2} µs/row; peak RSS {:.1} MB; {:.0} output bytes/row",
            r.rows,
            r.secs,
            r.rate(),
            r.cpu * 1e6 / r.rows as f64,
            r.peak_mb,
            r.out_bytes as f64 / r.rows as f64
        );
    }
    let top = &runs[0].1;

    // Stage 4: the parse-and-write limit, on the same file, writing as many bytes as ours.
    let quoted = {
        let mut f = BufReader::new(File::open(&input).unwrap());
        let mut buf = Vec::new();
        let mut any = false;
        while f.read_until(b'\n', &mut buf).unwrap() > 0 {
            any |= buf.contains(&b'"');
            buf.clear();
        }
        any
    };
    let limit_threads = if quoted { 1 } else { threads };
    let bytes_per_row = (top.out_bytes / top.rows.max(1)) as usize;
    let (limit_rows, limit_s) = parse_and_write_limit(&input, &dir, limit_threads, bytes_per_row);
    let limit = limit_rows as f64 / limit_s;
    println!(
        "parse-and-write limit ({limit_threads} threads, csv parse + numbers + {bytes_per_row} bytes written per row): {limit_rows} rows in {limit_s:.2} s = {limit:.0} rows/s"
    );
    for (mode, r) in &runs {
        println!(
            "ours --explain {mode:<4} as a fraction of the limit: {:.2}",
            r.rate() / limit
        );
    }

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
            let stage = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.trim_end_matches('s').replace(',', "").parse::<f64>().ok())
            };
            let rss = stderr
                .lines()
                .find_map(|l| l.strip_prefix("maxrss_kb="))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb / 1024.0);
            println!(
                "anchor score.py: {line} (wall {wall:.1} s incl. training; peak RSS {rss:.0} MB)"
            );
            match (
                stage("rows_per_s"),
                stage("total"),
                stage("shap"),
                stage("rows"),
            ) {
                (Some(rate), Some(total), Some(shap), Some(n)) => {
                    let without = n / (total - shap);
                    println!(
                        "anchor without its SHAP stage: {without:.0} rows/s (its other stages' time)"
                    );
                    println!(
                        "ratios: ours --explain top / anchor {:.1}x; --explain none / anchor without SHAP {:.1}x; --explain all / anchor {:.1}x; peak RSS anchor / ours (top) {:.0}x",
                        runs[0].1.rate() / rate,
                        runs[1].1.rate() / without,
                        runs[2].1.rate() / rate,
                        rss / top.peak_mb
                    );
                }
                _ => println!("anchor output not understood: {stdout}{stderr}"),
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
