//! How fast the customers table answers on a large result: the one-off index build, then pages
//! (default order, a risk-level filter deep in the list, a customer-id search, the last page in
//! ascending order) and one customer's explanation, each read from a real local object store.
//!
//! ```text
//! cargo bench -p retainwise --bench customers_page -- [--rows N] [--input CUSTOMERS.csv] [--results SCORED.csv]
//! ```
//!
//! Without `--results`, a customer file of N rows (default 1,000,000; `--input` to give one,
//! e.g. from `../shared/bench/python/make_big.py`) is scored first with the built-in model,
//! exactly as the worker would. The figures are medians of 20 runs after one warm-up.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use retainwise::config::StorageLocation;
use retainwise::domain::{ObjectKey, OrgId, PredictionId};
use retainwise::storage::Storage;
use retainwise::web::index::{Filter, IndexCache, Level};
use retainwise_model::{score_csv, Model, ScoreOptions};

const PER_PAGE: usize = 50;
const RUNS: usize = 20;

fn main() {
    let mut rows = 1_000_000usize;
    let mut input: Option<PathBuf> = None;
    let mut results: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--rows" => {
                rows = args
                    .next()
                    .expect("--rows N")
                    .replace('_', "")
                    .parse()
                    .expect("--rows N")
            }
            "--input" => input = Some(args.next().expect("--input FILE").into()),
            "--results" => results = Some(args.next().expect("--results FILE").into()),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let results = results.unwrap_or_else(|| {
        let input = input.unwrap_or_else(|| make_input(&dir.path().join("customers.csv"), rows));
        let out = dir.path().join("scored.csv");
        let started = Instant::now();
        let report = score_csv(
            Model::embedded_default(),
            std::fs::File::open(&input).unwrap(),
            BufWriter::new(std::fs::File::create(&out).unwrap()),
            &ScoreOptions::default(),
            &mut |_| {},
        )
        .expect("scoring");
        println!(
            "scored {} rows in {:.1} s (setup, not measured below)",
            report.rows_scored,
            started.elapsed().as_secs_f64()
        );
        out
    });
    let size = std::fs::metadata(&results).unwrap().len();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let storage = Storage::open(&StorageLocation::Local(dir.path().join("objects"))).unwrap();
        let key = ObjectKey::result(&OrgId::local(), PredictionId::new());
        storage.put_file(&key, &results).await.unwrap();
        let cache = IndexCache::new(4);

        let rss_before = rss_kb();
        let started = Instant::now();
        let index = cache.get(&storage, &key, 0).await.unwrap();
        let build = started.elapsed();
        let rss_after = rss_kb();
        println!(
            "results object: {} rows, {:.0} MB",
            index.len(),
            size as f64 / 1e6
        );
        println!(
            "index build (first view): {:.2} s, resident memory +{:.0} MB",
            build.as_secs_f64(),
            (rss_after.saturating_sub(rss_before)) as f64 / 1024.0
        );

        let high = index.counts[0] as usize;
        let views: Vec<(String, Filter, usize)> = vec![
            ("page 1, highest churn first".into(), Filter::default(), 0),
            (
                format!("high risk, page {}", (high / PER_PAGE / 2).max(1)),
                Filter {
                    level: Some(Level::High),
                    ..Filter::default()
                },
                (high / PER_PAGE / 2).max(1) - 1,
            ),
            (
                "search customer id \"C00012345\"".into(),
                Filter {
                    search: Some("C00012345".into()),
                    ..Filter::default()
                },
                0,
            ),
            (
                "last page, lowest churn first".into(),
                Filter {
                    ascending: true,
                    ..Filter::default()
                },
                index.len().div_ceil(PER_PAGE).saturating_sub(1),
            ),
        ];
        println!(
            "{:<40} {:>12} {:>12} {:>10}",
            "view (50 rows per page)", "filter ms", "page ms", "matches"
        );
        for (name, filter, page) in &views {
            let mut filter_times = Vec::new();
            let mut page_times = Vec::new();
            let mut total = 0;
            for run in 0..=RUNS {
                let cache_started = Instant::now();
                let index = cache.get(&storage, &key, 0).await.unwrap();
                let (n, entries) = index.page(filter, *page, PER_PAGE);
                let filtered = cache_started.elapsed();
                let rows = index.read(&storage, &key, &entries).await.unwrap();
                let whole = cache_started.elapsed();
                assert_eq!(rows.len(), entries.len());
                total = n;
                if run > 0 {
                    filter_times.push(filtered);
                    page_times.push(whole);
                }
            }
            println!(
                "{:<40} {:>12.2} {:>12.2} {:>10}",
                name,
                ms(median(&mut filter_times)),
                ms(median(&mut page_times)),
                total
            );
        }
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let index = cache.get(&storage, &key, 0).await.unwrap();
            let entry = *index.by_row((index.len() / 2) as u32).unwrap();
            let c = index.read(&storage, &key, &[entry]).await.unwrap();
            assert_eq!(c.len(), 1);
            times.push(started.elapsed());
        }
        println!(
            "{:<40} {:>12} {:>12.2}",
            "one customer's explanation",
            "",
            ms(median(&mut times))
        );
    });
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Resident set size of this process in KiB (Linux `/proc/self/status`), 0 elsewhere.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The make_big.py recipe in Rust: Telco rows repeated to `rows`, ids `C000000000…`, the Churn
/// column dropped.
fn make_input(path: &std::path::Path, rows: usize) -> PathBuf {
    let telco = std::env::var_os("RETAINWISE_TELCO_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/telco-customer-churn.csv")
        });
    let file = std::fs::File::open(&telco).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set RETAINWISE_TELCO_CSV or pass --input/--results)",
            telco.display()
        )
    });
    let mut lines = BufReader::new(file).lines().map(Result::unwrap);
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let churn = header.iter().position(|h| h == "Churn").unwrap();
    let body: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    let keep = |cells: &[String]| -> String {
        cells
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != churn)
            .map(|(_, c)| c.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    writeln!(out, "{}", keep(&header)).unwrap();
    for i in 0..rows {
        let mut cells = body[i % body.len()].clone();
        cells[0] = format!("C{i:09}");
        writeln!(out, "{}", keep(&cells)).unwrap();
    }
    out.flush().unwrap();
    path.to_owned()
}
