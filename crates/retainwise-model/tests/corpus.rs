//! Every file of the unusual-input corpus (`tests/data/`, written by `tests/data/make_corpus.py`)
//! scored with the embedded Telco model, its outcome checked against `tests/data/expected.json`.
//! Plus a fixed-seed fuzz loop: the decoder, dialect detection, mapper and scorer never panic on
//! arbitrary bytes.

use std::path::PathBuf;

use retainwise_model::{
    preview, score_csv, InputLimits, Model, ScoreError, ScoreOptions, ScoreReport,
};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn kind(e: &ScoreError) -> &'static str {
    match e {
        ScoreError::Empty => "Empty",
        ScoreError::NotCsv { .. } => "NotCsv",
        ScoreError::NoHeader { .. } => "NoHeader",
        ScoreError::MissingColumns { .. } => "MissingColumns",
        ScoreError::DuplicateColumns { .. } => "DuplicateColumns",
        ScoreError::BadMapping { .. } => "BadMapping",
        ScoreError::ReferenceDateWithObservationDates { .. } => "ReferenceDateWithObservationDates",
        ScoreError::NoUsableRows { .. } => "NoUsableRows",
        ScoreError::TooManyColumns { .. } => "TooManyColumns",
        ScoreError::FieldTooLong { .. } => "FieldTooLong",
        ScoreError::TooManyRows { .. } => "TooManyRows",
        ScoreError::Malformed { .. } => "Malformed",
        ScoreError::Io(_) => "Io",
    }
}

fn options(entry: &Value) -> ScoreOptions {
    let mut limits = InputLimits::default();
    if let Some(l) = entry.get("limits") {
        let get = |k: &str| l.get(k).and_then(Value::as_u64);
        if let Some(v) = get("max_field_bytes") {
            limits.max_field_bytes = v as usize;
        }
        if let Some(v) = get("max_columns") {
            limits.max_columns = v as usize;
        }
        if let Some(v) = get("max_rows") {
            limits.max_rows = v;
        }
    }
    ScoreOptions {
        limits,
        ..ScoreOptions::default()
    }
}

/// Everything a person reads about the outcome: the error message, or the issues and warnings.
fn words(r: &Result<ScoreReport, ScoreError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(r) => r
            .issues
            .iter()
            .chain(&r.warnings)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Checks one manifest entry; returns what does not match.
fn check(entry: &Value) -> Vec<String> {
    let name = entry["file"].as_str().unwrap();
    let bytes = std::fs::read(data_dir().join(name)).unwrap();
    let mut out = Vec::new();
    let result = score_csv(
        Model::embedded_default(),
        &bytes[..],
        &mut out,
        &options(entry),
        &mut |_| {},
    );
    let mut wrong = Vec::new();
    let mut expect = |what: &str, ok: bool, got: String| {
        if !ok {
            wrong.push(format!("{name}: {what}: got {got}"));
        }
    };
    let text = words(&result);
    for w in entry
        .get("contains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let w = w.as_str().unwrap();
        expect(&format!("words {w:?}"), text.contains(w), text.clone());
    }
    match (&result, entry.get("error").and_then(Value::as_str)) {
        (Err(e), Some(k)) => expect("error kind", kind(e) == k, format!("{e:?}")),
        (Err(e), None) => expect("success", false, format!("{e}")),
        (Ok(r), Some(k)) => expect(&format!("error {k}"), false, format!("{r:?}")),
        (Ok(r), None) => {
            let num = |k: &str| entry.get(k).and_then(Value::as_u64);
            let v = &r.validation;
            let pairs = [
                ("rows_scored", r.rows_scored),
                ("rows_rejected", r.rows_rejected),
                ("rows_total", r.rows_total),
                ("rows_skipped_empty", r.rows_skipped_empty),
                ("warnings", v.warnings_total),
            ];
            for (k, got) in pairs {
                if let Some(want) = num(k) {
                    expect(k, want == got, got.to_string());
                }
            }
            expect(
                "totals add up",
                r.rows_total == r.rows_scored + r.rows_rejected + r.rows_skipped_empty
                    && v.rows_scored == r.rows_scored
                    && v.rows_rejected == r.rows_rejected
                    && v.rows_total == r.rows_total,
                format!("{r:?}"),
            );
            if let Some(want) = entry.get("encoding").and_then(Value::as_str) {
                expect("encoding", v.encoding == want, v.encoding.clone());
            }
            if let Some(want) = entry.get("delimiter").and_then(Value::as_str) {
                expect("delimiter", v.delimiter == want, v.delimiter.clone());
            }
            if let Some(want) = entry.get("issue_rows").and_then(Value::as_array) {
                let got: Vec<u64> = v.rejected_rows.iter().map(|i| i.row).collect();
                let want: Vec<u64> = want.iter().filter_map(Value::as_u64).collect();
                expect("issue rows", got == want, format!("{got:?}"));
            }
            if let Some(want) = entry.get("ignored").and_then(Value::as_array) {
                let want: Vec<&str> = want.iter().filter_map(Value::as_str).collect();
                expect(
                    "ignored columns",
                    r.ignored_columns == want,
                    format!("{:?}", r.ignored_columns),
                );
            }
            for (field, key) in [
                ("column_missing", 0),
                ("column_invalid", 1),
                ("column_unseen", 2),
            ] {
                for (col, want) in entry
                    .get(field)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let stats = v.columns.iter().find(|c| &c.feature == col).unwrap();
                    let got = [stats.missing, stats.invalid, stats.unseen][key];
                    expect(field, want.as_u64() == Some(got), got.to_string());
                }
            }
            if let Some(want) = entry.get("first_id").and_then(Value::as_str) {
                let mut rd = csv::Reader::from_reader(&out[..]);
                let got = rd
                    .records()
                    .next()
                    .map(|r| r.unwrap()[0].to_string())
                    .unwrap_or_default();
                expect("first output id", got == want, format!("{got:?}"));
            }
            if let Some(want) = entry.get("first_id_escaped").and_then(Value::as_str) {
                let safe = retainwise_model::safe_csv::escape_csv(&out).unwrap();
                let mut rd = csv::Reader::from_reader(&safe[..]);
                let got = rd
                    .records()
                    .next()
                    .map(|r| r.unwrap()[0].to_string())
                    .unwrap_or_default();
                expect("first escaped id", got == want, format!("{got:?}"));
            }
            // The report serialises (it is stored as JSON with the prediction).
            let json = serde_json::to_string(r).unwrap();
            expect("report JSON", !json.contains('\0'), json);
        }
    }
    wrong
}

#[test]
fn corpus_outcomes_match_the_manifest() {
    let manifest: Vec<Value> =
        serde_json::from_slice(&std::fs::read(data_dir().join("expected.json")).unwrap()).unwrap();
    assert!(
        manifest.len() >= 40,
        "the corpus has {} files",
        manifest.len()
    );
    let mut wrong = Vec::new();
    for entry in &manifest {
        wrong.extend(check(entry));
        // Every file also previews without panicking; text files preview successfully
        // whenever they score.
        let bytes = std::fs::read(data_dir().join(entry["file"].as_str().unwrap())).unwrap();
        let p = preview(Model::embedded_default(), &bytes[..], 5);
        if entry.get("error").is_none() && entry.get("limits").is_none() {
            assert!(p.is_ok(), "{}: {:?}", entry["file"], p.err());
        }
    }
    // Every file in the folder is in the manifest.
    for f in std::fs::read_dir(data_dir()).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        if name != "expected.json" && name != "make_corpus.py" && name != "README.md" {
            assert!(
                manifest.iter().any(|e| e["file"] == name.as_str()),
                "{name} is not in expected.json"
            );
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// xorshift64*: a fixed-seed generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that are likely to reach deep paths: corpus files mutated, and random mixes of CSV
/// syntax, BOMs, UTF-16 and invalid UTF-8.
#[test]
fn fuzz_decoder_mapper_and_scorer_never_panic() {
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|f| std::fs::read(f.unwrap().path()).unwrap())
        .collect();
    const ATOMS: &[&[u8]] = &[
        b",",
        b";",
        b"\t",
        b"|",
        b"\"",
        b"\"\"",
        b"\n",
        b"\r\n",
        b"\r",
        b"\xEF\xBB\xBF",
        b"\xFF\xFE",
        b"\xFE\xFF",
        b"\0",
        b"\xE9",
        b"\xC3",
        b"customerID",
        b"tenure",
        b"TotalCharges",
        b"1,049.34",
        b"NaN",
        b"1e999",
        b"-",
        b"sep=;",
        b"PK\x03\x04",
        b"Yes",
        b"Month-to-month",
        b" ",
        b"\xF0\x9F\x98",
        b"mrr",
        b"account_age_days",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let model = Model::embedded_default();
    let opts = ScoreOptions {
        limits: InputLimits {
            max_field_bytes: 512,
            ..InputLimits::default()
        },
        ..ScoreOptions::default()
    };
    let rounds: u32 = std::env::var("RETAINWISE_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    for round in 0..rounds {
        let mut input = if round % 2 == 0 {
            let mut s = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(8) {
                if s.is_empty() {
                    break;
                }
                let at = rng.below(s.len());
                match rng.below(3) {
                    0 => s[at] = rng.next() as u8,
                    1 => {
                        s.remove(at);
                    }
                    _ => s
                        .splice(at..at, ATOMS[rng.below(ATOMS.len())].iter().copied())
                        .for_each(drop),
                }
            }
            s
        } else {
            let mut s = Vec::new();
            for _ in 0..rng.below(60) {
                if rng.below(4) == 0 {
                    s.push(rng.next() as u8);
                } else {
                    s.extend_from_slice(ATOMS[rng.below(ATOMS.len())]);
                }
            }
            s
        };
        if round % 7 == 0 {
            input.truncate(rng.below(input.len() + 1));
        }
        let mut out = Vec::new();
        let r = score_csv(model, &input[..], &mut out, &opts, &mut |_| {});
        if let Ok(r) = &r {
            assert_eq!(
                r.rows_total,
                r.rows_scored + r.rows_rejected + r.rows_skipped_empty
            );
        }
        if let Err(e) = &r {
            assert!(e.is_permanent(), "{e:?}");
        }
        // Never a NUL in a column name (ids and values are kept as given, NULs included).
        let mapping = match &r {
            Ok(r) => r.validation.mapping.as_ref(),
            Err(e) => e.mapping(),
        };
        if let Some(m) = mapping {
            let names = m
                .features
                .iter()
                .filter_map(|f| f.column.as_deref())
                .chain(m.unmapped.iter().map(String::as_str));
            for n in names {
                assert!(!n.contains('\0'), "{n:?}");
            }
        }
        let _ = preview(model, &input[..], 3);
    }
}
