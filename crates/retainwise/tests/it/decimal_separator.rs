//! How a file's numbers are read, through `retainwise predict`: the decimal separator comes
//! from the numbers in the file (`29.85` or `29,85`) whatever the delimiter, cells such as
//! `1,516` in a file whose numbers do not tell are flagged rather than guessed, and rows of
//! nothing but missing markers (Excel's formula ghost rows) are skipped like empty rows; random
//! bytes are refused as not a CSV.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;
use crate::mapping::{predict, telco_row as row};

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// `csv` with its `,` delimiters replaced by `d` and then each `#` by `,` (the cells here
/// write a comma in a number as `#`, and quote nothing).
fn delimited(csv: &str, d: &str) -> String {
    csv.replace(',', d).replace('#', ",")
}

/// `retainwise predict` of the raw bytes `input`: (success, results, report, stderr).
fn predict_bytes(dir: &Path, input: &[u8]) -> (bool, String, Value, String) {
    let (i, o, r) = (dir.join("in.txt"), dir.join("out.csv"), dir.join("r.json"));
    std::fs::write(&i, input).unwrap();
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&i)
        .arg("-o")
        .arg(&o)
        .arg("--report")
        .arg(&r)
        .output()
        .unwrap();
    (
        run.status.success(),
        std::fs::read_to_string(&o).unwrap_or_default(),
        serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap(),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// Churn probability by customer id.
fn probabilities(results: &str) -> Vec<(String, String)> {
    let (header, rows) = parse_csv(results);
    let p = column(&header, "churn_probability");
    rows.iter().map(|r| (r[0].clone(), r[p].clone())).collect()
}

/// The `;`-separated rows of `over` (id, overrides), header first.
fn file(rows: &[(&str, &[(&str, &str)])]) -> String {
    let mut csv = format!("{TELCO_HEADER}\n");
    for (id, over) in rows {
        csv.push_str(&row(id, over));
        csv.push('\n');
    }
    csv
}

/// A `;` file that writes decimal points reads `1,516` as 1516 (listed as a respelling),
/// never as 1.516, and its report says no decimal comma was used.
#[test]
fn a_semicolon_file_with_decimal_points_reads_1_516_as_thousands() {
    let dir = tempfile::tempdir().unwrap();
    let csv = delimited(
        &file(&[
            ("P1", &[("MonthlyCharges", "29.85")]),
            ("P2", &[("TotalCharges", "1#516")]),
        ]),
        ";",
    );
    let (ok, results, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let v = &report["validation"];
    assert_eq!(v["delimiter"], ";", "{v}");
    assert_eq!(v["decimal_comma"], false, "{v}");
    assert_eq!(v["rows_scored"], 2, "{v}");
    let w = v["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| w["row"] == 2
            && w["column"] == "TotalCharges"
            && w["value"] == "1,516"
            && w["used_instead"] == "1516"),
        "{v}"
    );
    let plain = file(&[
        ("P1", &[("MonthlyCharges", "29.85")]),
        ("P2", &[("TotalCharges", "1516")]),
    ]);
    let (ok, want, _, stderr) = predict(dir.path(), &plain);
    assert!(ok, "{stderr}");
    assert_eq!(probabilities(&results), probabilities(&want));
}

/// Decimal commas score the same as decimal points in `;`, tab and `|` files, and in Excel's
/// "Unicode Text" export (UTF-16LE with a byte-order mark, tab-separated); the report says a
/// decimal comma was read.
#[test]
fn decimal_commas_score_in_semicolon_tab_and_pipe_files() {
    let dir = tempfile::tempdir().unwrap();
    let points = file(&[
        ("C1", &[]),
        (
            "C2",
            &[("MonthlyCharges", "29.85"), ("TotalCharges", "1516.5")],
        ),
    ]);
    let (ok, want, _, stderr) = predict(dir.path(), &points);
    assert!(ok, "{stderr}");
    let commas = file(&[
        (
            "C1",
            &[("MonthlyCharges", "85#5"), ("TotalCharges", "420#3")],
        ),
        (
            "C2",
            &[("MonthlyCharges", "29#85"), ("TotalCharges", "1516#5")],
        ),
    ]);
    for d in [";", "\t", "|"] {
        let text = delimited(&commas, d);
        let mut inputs = vec![text.clone().into_bytes()];
        if d == "\t" {
            let mut utf16 = vec![0xFF, 0xFE];
            utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            inputs.push(utf16);
        }
        for input in inputs {
            let (ok, results, report, stderr) = predict_bytes(dir.path(), &input);
            assert!(ok, "{d:?}: {stderr}");
            let v = &report["validation"];
            assert_eq!(v["decimal_comma"], true, "{d:?}: {v}");
            assert_eq!(v["rows_scored"], 2, "{d:?}: {v}");
            assert_eq!(probabilities(&results), probabilities(&want), "{d:?}");
        }
    }
}

/// In a file whose numbers do not show the decimal separator (integers, and cells that read
/// both ways), `1,516` and `1.234` are scored as missing and flagged, each listed with its row,
/// never guessed.
#[test]
fn cells_that_read_both_ways_in_a_file_that_does_not_tell_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let csv = delimited(
        &file(&[
            ("U1", &[("MonthlyCharges", "85"), ("TotalCharges", "420")]),
            ("U2", &[("MonthlyCharges", "85"), ("TotalCharges", "1#516")]),
            ("U3", &[("MonthlyCharges", "85"), ("TotalCharges", "1.234")]),
        ]),
        ";",
    );
    let (ok, results, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let v = &report["validation"];
    assert_eq!(v["decimal_comma"], false, "{v}");
    assert_eq!(v["rows_scored"], 3, "{v}");
    for (row, raw) in [(2, "1,516"), (3, "1.234")] {
        assert!(
            v["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w["row"] == row
                    && w["column"] == "TotalCharges"
                    && w["value"] == raw
                    && w["reason"].as_str().unwrap().contains("reads two ways")),
            "{raw}: {v}"
        );
    }
    let (header, rows) = parse_csv(&results);
    let q = column(&header, "data_quality");
    let flags: Vec<&str> = rows.iter().map(|r| r[q].as_str()).collect();
    assert_eq!(
        flags,
        [
            "",
            "TotalCharges: ambiguous number",
            "TotalCharges: ambiguous number"
        ]
    );
}

/// Rows whose every cell is a missing marker or an Excel error value (a formula copied below
/// the data) hold no customer: skipped like empty rows and counted, not rejected.
#[test]
fn rows_of_only_missing_markers_are_skipped_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let ghosts = ["#N/A", "NA", "-", "#VALUE!", "", " ", "#DIV/0!"];
    let ghost = |k: usize| {
        (0..20)
            .map(|i| ghosts[(i + k) % ghosts.len()])
            .collect::<Vec<_>>()
            .join(",")
    };
    let csv = format!(
        "{TELCO_HEADER}\n{}\n{}\n{}\n{}\n",
        row("G1", &[]),
        ghost(0),
        ghost(3),
        row("G4", &[])
    );
    let (ok, _, report, stderr) = predict(dir.path(), &csv);
    assert!(ok, "{stderr}");
    let v = &report["validation"];
    assert_eq!(v["rows_skipped_empty"], 2, "{v}");
    assert_eq!(v["rows_rejected"], 0, "{v}");
    assert_eq!(
        v["balance"], "4 rows read = 2 scored + 0 rejected + 2 skipped as empty",
        "{v}"
    );
}

/// Random bytes (no known file signature) are refused as not a CSV, naming what to do, instead
/// of a column error listing garbage headers.
#[test]
fn random_bytes_are_refused_as_not_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let junk: Vec<u8> = (0..20_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let input = dir.path().join("junk.csv");
    std::fs::write(&input, &junk).unwrap();
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("binary data, not a CSV") && stderr.contains("save it as CSV"),
        "{stderr}"
    );
}
