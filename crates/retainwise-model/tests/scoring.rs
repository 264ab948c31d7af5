//! Scoring small synthetic files, made here, with the embedded default (Telco) model.

use retainwise_model::{score_csv, Model, RowIssue, ScoreError, ScoreOptions, ScoreReport};

const HEADER: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges";

/// A valid Telco-shaped row (a high-risk profile) with the given id and TotalCharges.
fn row(id: &str, total: &str) -> String {
    format!("{id},Female,0,Yes,No,5,Yes,No,Fiber optic,No,No,No,No,Yes,Yes,Month-to-month,Yes,Electronic check,85.5,{total}")
}

fn file(rows: &[String]) -> String {
    let mut s = String::from(HEADER);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

fn score(input: &[u8]) -> (Result<ScoreReport, ScoreError>, String) {
    score_with(input, &ScoreOptions::default())
}

fn score_with(input: &[u8], opts: &ScoreOptions) -> (Result<ScoreReport, ScoreError>, String) {
    let mut out = Vec::new();
    let r = score_csv(
        Model::embedded_default(),
        input,
        &mut out,
        opts,
        &mut |_| {},
    );
    (r, String::from_utf8(out).unwrap())
}

/// The output's data rows, split into cells.
fn cells(out: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(
        r.headers().unwrap(),
        vec![
            "customer_id",
            "churn_probability",
            "retention_probability",
            "risk_level",
            "model_version",
            "risk_factors",
            "protective_factors",
            "summary",
            "recommendation",
            "data_quality"
        ]
    );
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn bad_number_rejects_that_row_and_scores_the_rest() {
    let input = file(&[row("A1", "100"), row("0042-ABCD", "abc"), row("A3", "300")]);
    let (r, out) = score(input.as_bytes());
    let r = r.unwrap();
    assert_eq!((r.rows_total, r.rows_scored, r.rows_rejected), (3, 2, 1));
    assert_eq!(
        r.issues,
        vec![RowIssue {
            row: 2,
            customer_id: Some("0042-ABCD".into()),
            column: Some("TotalCharges".into()),
            feature: None,
            value: Some("abc".into()),
            reason: "expected a number".into(),
            used_instead: None,
        }]
    );
    assert_eq!(
        r.issues[0].to_string(),
        "row 2 (customer 0042-ABCD), column TotalCharges, value \"abc\": expected a number"
    );
    let ids: Vec<String> = cells(&out).into_iter().map(|c| c[0].clone()).collect();
    assert_eq!(ids, vec!["A1", "A3"]);
}

#[test]
fn nan_and_infinity_are_rejected() {
    let input = file(&[row("A1", "NaN"), row("A2", "inf"), row("A3", "10")]);
    let r = score(input.as_bytes()).0.unwrap();
    assert_eq!(r.rows_rejected, 2);
    assert!(r.issues[0].reason.contains("NaN"));
    assert_eq!(r.issues[1].value.as_deref(), Some("inf"));
}

#[test]
fn blank_total_charges_is_scored_as_missing() {
    let input = file(&[row("A1", " "), row("A2", ""), row("A3", "NA")]);
    let (r, out) = score(input.as_bytes());
    let r = r.unwrap();
    assert_eq!((r.rows_scored, r.rows_rejected), (3, 0));
    assert!(r.issues.is_empty());
    // Each substituted value is listed, with what was used instead, and flags its row.
    let listed: Vec<(u64, Option<&str>)> = r
        .warnings
        .iter()
        .map(|w| (w.row, w.value.as_deref()))
        .collect();
    assert_eq!(listed, [(1, Some(" ")), (2, Some("")), (3, Some("NA"))]);
    assert!(r.warnings.iter().all(|w| w.used_instead.is_some()));
    assert_eq!(r.validation.warnings_total, 3);
    let rows = cells(&out);
    assert_eq!(rows[0][1], rows[1][1]);
    assert!(rows.iter().all(|c| c[9] == "TotalCharges: missing"));
}

#[test]
fn an_absent_feature_column_is_scored_as_missing_and_too_many_are_named() {
    let header = HEADER.replace(",TotalCharges", "");
    let input = format!("{header}\n{}\n", row("A1", "1").rsplit_once(',').unwrap().0);
    let (r, out) = score(input.as_bytes());
    let r = r.unwrap();
    assert_eq!((r.rows_scored, r.rows_rejected), (1, 0));
    assert_eq!(r.validation.absent_inputs, ["TotalCharges"]);
    assert_eq!(cells(&out)[0][9], "TotalCharges: not in the file");
    // Ten of the nineteen inputs absent: more than half, refused naming them.
    let cols: Vec<&str> = HEADER.split(',').take(10).collect();
    let input = format!(
        "{}\n{}\n",
        cols.join(","),
        row("A1", "1")
            .split(',')
            .take(10)
            .collect::<Vec<_>>()
            .join(",")
    );
    let err = score(input.as_bytes()).0.unwrap_err();
    match &err {
        ScoreError::MissingColumns {
            missing,
            found,
            allowed,
            ..
        } => {
            assert_eq!(missing.len(), 10);
            assert!(missing.contains(&"TotalCharges".to_string()));
            assert_eq!((found.len(), *allowed), (10, 9));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_permanent());
    assert!(err.to_string().contains("at most 9 may be absent"), "{err}");
}

#[test]
fn columns_match_ignoring_case_spaces_and_underscores() {
    let header = HEADER
        .replace("customerID", "Customer_ID")
        .replace("TotalCharges", "total charges")
        .replace("tenure", "TENURE");
    let input = format!("{header},Churn\n{},Yes\n", row("A1", "1"));
    let r = score(input.as_bytes()).0.unwrap();
    assert_eq!(r.rows_scored, 1);
    assert_eq!(r.ignored_columns, vec!["Churn"]);
}

#[test]
fn bom_crlf_and_quoted_newline() {
    let mut input = vec![0xEF, 0xBB, 0xBF];
    input.extend_from_slice(
        format!(
            "{HEADER}\r\n{}\r\n{}\r\n",
            row("\"multi\r\nline\"", "10"),
            row("B2", "20")
        )
        .as_bytes(),
    );
    let (r, out) = score(&input);
    let r = r.unwrap();
    assert_eq!((r.rows_total, r.rows_scored), (2, 2));
    let rows = cells(&out);
    assert_eq!(rows[0][0], "multi\r\nline");
    assert_eq!(rows[1][0], "B2");
}

#[test]
fn more_fields_than_header_is_rejected_with_the_count() {
    let input = file(&[row("A1", "10"), format!("{},extra", row("A2", "10"))]);
    let r = score(input.as_bytes()).0.unwrap();
    assert_eq!((r.rows_scored, r.rows_rejected), (1, 1));
    assert_eq!(r.issues[0].row, 2);
    assert!(
        r.issues[0]
            .reason
            .contains("21 fields but the header has 20"),
        "{}",
        r.issues[0].reason
    );
}

#[test]
fn fewer_fields_reject_only_when_a_feature_is_missing() {
    // A trailing non-feature column may be absent; a feature column may not.
    let input = format!(
        "{HEADER},Notes\n{}\n{},hello\n{}\n",
        row("A1", "10"),
        row("A2", "10"),
        row("A3", "10").rsplit_once(',').unwrap().0
    );
    let r = score(input.as_bytes()).0.unwrap();
    assert_eq!((r.rows_scored, r.rows_rejected), (2, 1));
    assert_eq!(r.issues[0].row, 3);
    assert_eq!(r.issues[0].column.as_deref(), Some("TotalCharges"));
}

#[test]
fn leading_zero_ids_are_kept_raw_and_formulas_escaped_for_spreadsheets() {
    let input = file(&[
        row("0042-ABCD", "10"),
        row("=HYPERLINK(\"http://x\")", "10"),
        row("@SUM(A1)", "10"),
        row("-5", "10"),
    ]);
    let (r, out) = score(input.as_bytes());
    assert_eq!(r.unwrap().rows_scored, 4);
    // The scored output (what the service stores) keeps the ids as given.
    let ids: Vec<String> = cells(&out).into_iter().map(|c| c[0].clone()).collect();
    assert_eq!(
        ids,
        vec!["0042-ABCD", "=HYPERLINK(\"http://x\")", "@SUM(A1)", "-5"]
    );
    // A file for a spreadsheet escapes formulas; a plain number stays a number.
    let safe = retainwise_model::safe_csv::escape_csv(out.as_bytes()).unwrap();
    let ids: Vec<String> = cells(std::str::from_utf8(&safe).unwrap())
        .into_iter()
        .map(|c| c[0].clone())
        .collect();
    assert_eq!(
        ids,
        vec!["0042-ABCD", "'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "-5"]
    );
}

#[test]
fn unseen_category_is_scored_as_missing_with_a_warning() {
    let unseen = row("A1", "10").replace("Month-to-month", "Weekly");
    let input = file(&[unseen, row("A2", "10")]);
    let r = score(input.as_bytes()).0.unwrap();
    assert_eq!((r.rows_scored, r.rows_rejected), (2, 0));
    assert_eq!(r.warnings.len(), 1);
    let w = &r.warnings[0];
    assert_eq!(w.row, 1);
    assert_eq!(w.customer_id.as_deref(), Some("A1"));
    assert_eq!(w.column.as_deref(), Some("Contract"));
    assert_eq!(w.value.as_deref(), Some("Weekly"));
}

#[test]
fn levels_match_ignoring_case_and_whitespace() {
    let odd = row("A1", "10")
        .replace("Fiber optic", " FIBER  optic ")
        .replace("Electronic check", "electronic check");
    let input = file(&[odd, row("A2", "10")]);
    let (r, out) = score(input.as_bytes());
    assert!(r.unwrap().warnings.is_empty());
    let rows = cells(&out);
    assert_eq!(rows[0][1], rows[1][1]);
}

#[test]
fn output_cells_are_consistent() {
    let input = file(&[row("A1", "10"), row("A2", "5000")]);
    let (r, out) = score(input.as_bytes());
    let r = r.unwrap();
    for c in cells(&out) {
        let p: f64 = c[1].parse().unwrap();
        let q: f64 = c[2].parse().unwrap();
        assert_eq!(c[1].split('.').nth(1).unwrap().len(), 6);
        assert!((0.0..=1.0).contains(&p));
        assert!((p + q - 1.0).abs() < 1e-9);
        let expect = if p >= 0.7 {
            "high"
        } else if p >= 0.4 {
            "medium"
        } else {
            "low"
        };
        assert_eq!(c[3], expect);
        assert_eq!(c[4], Model::embedded_default().id());
    }
    let counts = &r.risk_counts;
    assert_eq!(counts.high + counts.medium + counts.low, 2);
    assert!(r.mean_churn_probability > 0.0 && r.mean_churn_probability < 1.0);
}

#[test]
fn thresholds_are_configurable() {
    let mut opts = ScoreOptions::default();
    opts.thresholds.high = 0.0;
    let input = file(&[row("A1", "10"), row("A2", "5000")]);
    let r = score_with(input.as_bytes(), &opts).0.unwrap();
    assert_eq!(r.risk_counts.high, 2);
}

#[test]
fn no_id_column_uses_the_row_number() {
    let header = HEADER.replace("customerID,", "");
    let r1 = row("X", "10");
    let input = format!("{header}\n{}\n{}\n", &r1[2..], &r1[2..]);
    let (r, out) = score(input.as_bytes());
    let r = r.unwrap();
    let ids: Vec<String> = cells(&out).into_iter().map(|c| c[0].clone()).collect();
    assert_eq!(ids, vec!["1", "2"]);
    assert!(r.ignored_columns.is_empty());
}

#[test]
fn whole_file_problems_are_permanent_errors() {
    assert!(matches!(score(b"").0, Err(ScoreError::Empty)));
    let e = score(format!("{HEADER}\n").as_bytes()).0.unwrap_err();
    assert!(matches!(e, ScoreError::NoUsableRows { rows_total: 0, .. }));
    let e = score(b"1,2,3\n4,5,6\n").0.unwrap_err();
    assert!(matches!(e, ScoreError::NoHeader { .. }), "{e:?}");
    assert!(e.is_permanent());
    let all_bad = file(&[row("A1", "x"), row("A2", "y")]);
    let e = score(all_bad.as_bytes()).0.unwrap_err();
    match &e {
        ScoreError::NoUsableRows {
            rows_total,
            first_issues,
            ..
        } => {
            assert_eq!(*rows_total, 2);
            assert_eq!(first_issues.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("row 1 (customer A1)"), "{e}");
}

#[test]
fn issue_lists_are_capped_but_counted() {
    let rows: Vec<String> = (0..30)
        .map(|i| row(&format!("C{i}"), if i % 3 == 0 { "10" } else { "bad" }))
        .collect();
    let opts = ScoreOptions {
        max_issues: 5,
        ..ScoreOptions::default()
    };
    let r = score_with(file(&rows).as_bytes(), &opts).0.unwrap();
    assert_eq!((r.rows_scored, r.rows_rejected), (10, 20));
    assert_eq!(r.issues.len(), 5);
}

#[test]
fn progress_is_reported() {
    let rows: Vec<String> = (0..2500).map(|i| row(&format!("C{i}"), "10")).collect();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let r = score_csv(
        Model::embedded_default(),
        file(&rows).as_bytes(),
        &mut out,
        &ScoreOptions::default(),
        &mut |n| seen.push(n),
    )
    .unwrap();
    assert_eq!(r.rows_scored, 2500);
    assert_eq!(seen, vec![1000, 2000, 2500]);
}

#[test]
fn io_errors_are_transient() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk gone"))
        }
    }
    let mut out = Vec::new();
    let e = score_csv(
        Model::embedded_default(),
        Failing,
        &mut out,
        &ScoreOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(e, ScoreError::Io(_)));
    assert!(!e.is_permanent());
}

#[test]
fn model_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
    assert_send_sync::<ScoreReport>();
}
