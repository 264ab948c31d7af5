//! How a file's columns become the model's inputs, through `retainwise predict`, HTTP and the
//! upload page in Chromium: headers reported as written (a trimmed or recased match is never
//! "exact"), problems known at upload refused at upload, inputs absent from the file scored as
//! missing (flagged) up to a limit, columns chosen by hand (the `mapping` field, the preview's
//! selects) and honoured by the worker, and only plausible columns suggested.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use retainwise::worker::Outcome;
use serde_json::{json, Value};

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// One Telco row with customer id `id` and the given overrides (`column = raw text`), in
/// [`TELCO_HEADER`] order.
pub(crate) fn telco_row(id: &str, over: &[(&str, &str)]) -> String {
    let base = [
        ("customerID", id),
        ("gender", "Female"),
        ("SeniorCitizen", "0"),
        ("Partner", "Yes"),
        ("Dependents", "No"),
        ("tenure", "5"),
        ("PhoneService", "Yes"),
        ("MultipleLines", "No"),
        ("InternetService", "Fiber optic"),
        ("OnlineSecurity", "No"),
        ("OnlineBackup", "No"),
        ("DeviceProtection", "No"),
        ("TechSupport", "No"),
        ("StreamingTV", "Yes"),
        ("StreamingMovies", "Yes"),
        ("Contract", "Month-to-month"),
        ("PaperlessBilling", "Yes"),
        ("PaymentMethod", "Electronic check"),
        ("MonthlyCharges", "85.5"),
        ("TotalCharges", "420.3"),
    ];
    base.iter()
        .map(|(k, v)| {
            over.iter()
                .find(|(o, _)| o == k)
                .map_or(*v, |(_, o)| *o)
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `csv` without the columns named in `drop` (by their name in the header line).
pub(crate) fn without_columns(csv: &str, drop: &[&str]) -> String {
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !drop.contains(&header[i]))
        .collect();
    csv.lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",") + "\n"
        })
        .collect()
}

/// Runs `retainwise predict FILE -o OUT --report REPORT` on `csv` in `dir`; returns (success,
/// results CSV, report JSON, stderr).
pub(crate) fn predict(dir: &Path, csv: &str) -> (bool, String, Value, String) {
    let input = dir.join("in.csv");
    let output = dir.join("out.csv");
    let report = dir.join("report.json");
    let _ = std::fs::remove_file(&output);
    std::fs::write(&input, csv).unwrap();
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let results = std::fs::read_to_string(&output).unwrap_or_default();
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (
        run.status.success(),
        results,
        report,
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

/// `POST /api/csv/preview-mapping` of `csv`, with a `mapping` field when given.
pub(crate) async fn preview(t: &TestApp, csv: &str, mapping: Option<Value>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    if let Some(m) = mapping {
        form = form.text("mapping", m.to_string());
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("f.csv"),
    );
    let r = t
        .client
        .post(format!("{}/api/csv/preview-mapping", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `POST /api/csv` of `csv` with a `mapping` field after the file.
async fn upload_mapped(t: &TestApp, csv: &str, mapping: &Value) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("mapped.csv"),
        )
        .text("mapping", mapping.to_string());
    t.client
        .post(format!("{}/api/csv", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The mapping entry of input `feature` in a serialised mapping.
pub(crate) fn entry<'a>(mapping: &'a Value, feature: &str) -> &'a Value {
    mapping["features"]
        .as_array()
        .unwrap()
        .iter()
        .chain(mapping["id"].as_object().map(|_| &mapping["id"]))
        .find(|f| f["feature"] == feature)
        .unwrap_or_else(|| panic!("{feature} in {mapping}"))
}

/// Each header is reported exactly as written (its spaces kept), and a match
/// found only after trimming or recasing is called `normalised` with what differed, never
/// `exact` — in the preview, the validation report of `predict` and the stored report.
#[tokio::test]
async fn headers_are_reported_as_written_and_a_trimmed_match_is_not_exact() {
    let header = TELCO_HEADER
        .replace("tenure", " tenure ")
        .replace("MonthlyCharges", "MONTHLYCHARGES");
    let csv = format!(
        "{header}\n{}\n{}\n",
        telco_row("A1", &[]),
        telco_row("A2", &[])
    );
    let check = |mapping: &Value, what: &str| {
        let tenure = entry(mapping, "tenure");
        assert_eq!(tenure["column"], " tenure ", "{what}: {tenure}");
        assert_eq!(tenure["method"], "normalised", "{what}: {tenure}");
        assert!(
            tenure["note"]
                .as_str()
                .unwrap()
                .contains("spaces around it"),
            "{what}: {tenure}"
        );
        let monthly = entry(mapping, "MonthlyCharges");
        assert_eq!(monthly["column"], "MONTHLYCHARGES");
        assert_eq!(monthly["method"], "normalised", "{what}: {monthly}");
        assert!(
            monthly["note"].as_str().unwrap().contains("letter case"),
            "{what}: {monthly}"
        );
        assert_eq!(entry(mapping, "gender")["method"], "exact");
    };

    let dir = tempfile::tempdir().unwrap();
    let (ok, _, report, err) = predict(dir.path(), &csv);
    assert!(ok, "{err}");
    check(&report["validation"]["mapping"], "predict report");

    let t = TestApp::spawn().await;
    let (status, body) = preview(&t, &csv, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["preview"]["header"][5], " tenure ");
    check(&body["preview"]["mapping"], "preview");
    let id = t.upload_ok("spaces.csv", csv.into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let stored: Value = t
        .get(&format!("/api/predictions/{id}/report"))
        .await
        .json()
        .await
        .unwrap();
    let stored = stored.get("report").unwrap_or(&stored);
    check(&stored["validation"]["mapping"], "stored report");
}

/// What is knowable from the start of a file is answered at upload (400
/// with the scorer's sentence), never 202 then FAILED, and `predict` fails with the same
/// sentence: a header and no rows, binary junk, too few columns the model can map, and two
/// columns for one input (named with both positions).
#[tokio::test]
async fn problems_known_at_upload_are_refused_at_upload_as_predict_refuses_them() {
    let mut dupes = format!("{TELCO_HEADER},Tenure\n");
    dupes.push_str(&format!("{},5\n", telco_row("A1", &[])));
    let too_few = without_columns(
        &synthetic_telco(3),
        &[
            "MultipleLines",
            "InternetService",
            "OnlineSecurity",
            "OnlineBackup",
            "DeviceProtection",
            "TechSupport",
            "StreamingTV",
            "StreamingMovies",
            "PaymentMethod",
            "TotalCharges",
        ],
    );
    let mut junk = b"customerID,tenure\n".to_vec();
    junk.extend((0..3000u32).map(|i| (i % 5) as u8));
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "header-only.csv",
            format!("{TELCO_HEADER}\n").into_bytes(),
            vec!["no customer rows"],
        ),
        ("junk.csv", junk, vec!["not a CSV"]),
        (
            "too-few.csv",
            too_few.into_bytes(),
            vec![
                "lacks 10 of the model's 19 inputs",
                "at most 9 may be absent",
            ],
        ),
        (
            "dupes.csv",
            dupes.into_bytes(),
            vec!["\"tenure\" (column 6)", "\"Tenure\" (column 21)"],
        ),
    ];
    let t = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, words) in cases {
        let r = t.upload(name, bytes.clone()).await;
        assert_eq!(r.status(), 400, "{name}");
        let body: Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        let input = dir.path().join(name);
        std::fs::write(&input, &bytes).unwrap();
        let run = Command::new(BIN)
            .arg("predict")
            .arg(&input)
            .arg("-o")
            .arg(dir.path().join("out.csv"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{name}: predict succeeded");
        for w in words {
            assert!(detail.contains(w), "{name}: upload said {detail}");
            assert!(stderr.contains(w), "{name}: predict said {stderr}");
        }
    }
    let list: Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 0, "nothing was queued");
}

/// Inputs the file lacks (up to half of them) are scored as missing, with a
/// warning and the `not in the file` flag on every row, through `predict` and HTTP; more than
/// half absent is refused, saying the limit.
#[tokio::test]
async fn absent_inputs_are_scored_as_missing_with_a_warning_and_a_flag() {
    let csv = without_columns(&synthetic_telco(20), &["MonthlyCharges", "TotalCharges"]);
    let flag = "MonthlyCharges: not in the file; TotalCharges: not in the file";
    let dir = tempfile::tempdir().unwrap();
    let (ok, results, report, err) = predict(dir.path(), &csv);
    assert!(ok, "{err}");
    assert!(
        err.contains("no column for MonthlyCharges, TotalCharges"),
        "{err}"
    );
    assert_eq!(
        report["validation"]["absent_inputs"],
        json!(["MonthlyCharges", "TotalCharges"])
    );
    let (header, rows) = parse_csv(&results);
    let q = column(&header, "data_quality");
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r[q] == flag), "{results}");

    let t = TestApp::spawn().await;
    let (_, body) = preview(&t, &csv, None).await;
    assert_eq!(body["preview"]["ready"], true, "{body}");
    let id = t.upload_ok("absent.csv", csv.into_bytes()).await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let (header, rows) = parse_csv(&t.results(&id).await);
    let q = column(&header, "data_quality");
    assert!(rows.iter().all(|r| r[q] == flag));
    assert_eq!(t.prediction(&id).await["rows_processed"], 20);
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("The file has no column for MonthlyCharges, TotalCharges"),
        "the dashboard says so"
    );
}

/// A person's column choices (`mapping`: input → header as written, or
/// `null` for none) are previewed, checked at upload and honoured by the worker: the scores
/// equal those of the same file with the model's own column names.
#[tokio::test]
async fn columns_chosen_by_hand_are_honoured_by_the_worker() {
    chosen_columns(&TestApp::spawn().await).await;
}

/// The same on Postgres (the choices are stored with the prediction).
#[tokio::test]
async fn columns_chosen_by_hand_are_honoured_on_postgres() {
    if let Some(t) = TestApp::spawn_postgres().await {
        chosen_columns(&t).await;
    }
}

async fn chosen_columns(t: &TestApp) {
    let canonical = synthetic_telco(15);
    // Names no automatic tier maps: `Months with us` for tenure, `Bill` for MonthlyCharges.
    let renamed = {
        let mut lines = canonical.lines();
        let header = lines
            .next()
            .unwrap()
            .replace(",tenure,", ", Months with us,")
            .replace("MonthlyCharges", "Bill");
        std::iter::once(header)
            .chain(lines.map(str::to_owned))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let mapping =
        json!({ "tenure": " Months with us", "MonthlyCharges": "Bill", "TotalCharges": null });
    let (status, body) = preview(t, &renamed, Some(mapping.clone())).await;
    assert_eq!(status, 200, "{body}");
    let m = &body["preview"]["mapping"];
    assert_eq!(entry(m, "tenure")["method"], "manual", "{m}");
    assert_eq!(entry(m, "tenure")["column"], " Months with us");
    assert_eq!(entry(m, "MonthlyCharges")["column"], "Bill");
    assert_eq!(m["missing"][0]["feature"], "TotalCharges");
    assert_eq!(m["missing"][0]["by_choice"], true);

    // Sent as the browser sends it, after the file; longer than the other settings may be
    // (a wide model's choices): padded past 1 KiB here.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(renamed.as_bytes().to_vec()).file_name("mapped.csv"),
        )
        .text("mapping", format!("{}{mapping}", " ".repeat(2000)));
    let r = t
        .client
        .post(format!("{}/api/csv", t.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, Outcome::Completed);
    let (header, mapped) = parse_csv(&t.results(&id).await);

    let id = t
        .upload_ok(
            "canonical.csv",
            without_columns(&canonical, &["TotalCharges"]).into_bytes(),
        )
        .await;
    assert_eq!(t.work_once().await, Outcome::Completed);
    let (_, plain) = parse_csv(&t.results(&id).await);
    let p = column(&header, "churn_probability");
    let q = column(&header, "data_quality");
    assert_eq!(mapped.len(), 15);
    for (a, b) in mapped.iter().zip(&plain) {
        assert_eq!(a[p], b[p], "the same scores as with the model's own names");
        assert_eq!(a[q], "TotalCharges: not in the file");
    }

    // A choice naming a header the file lacks, or an input the model lacks, is refused at
    // upload naming it; nothing is queued for it.
    for (bad, word) in [
        (json!({ "tenure": "Months" }), "\"Months\""),
        (json!({ "tenure_months": "Bill" }), "\"tenure_months\""),
        (
            json!({ "tenure": "Bill", "MonthlyCharges": "Bill" }),
            "both",
        ),
    ] {
        let r = upload_mapped(t, &renamed, &bad).await;
        assert_eq!(r.status(), 422, "a choice that cannot be applied");
        let detail = r.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(detail.contains(word), "{bad}: {detail}");
    }
    let list: Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 2);
}

/// A missing input is offered only columns that could hold it: similar
/// names whose values it can read, never a column of words for a number nor a column the
/// alias table knows as another input.
#[tokio::test]
async fn only_plausible_columns_are_suggested_for_a_missing_input() {
    let base = without_columns(&synthetic_telco(5), &["TotalCharges"]);
    let mut csv = String::new();
    for (i, line) in base.lines().enumerate() {
        let extra = if i == 0 {
            // `monthly_charge` is as similar to TotalCharges as `Total amt`, and numeric, but
            // the alias table knows it as MonthlyCharges.
            "Total notes,Total amt,monthly_charge".to_owned()
        } else {
            format!("call back,{}.5,70.5", 100 + i)
        };
        csv.push_str(&format!("{line},{extra}\n"));
    }
    let t = TestApp::spawn().await;
    let (status, body) = preview(&t, &csv, None).await;
    assert_eq!(status, 200, "{body}");
    let missing = &body["preview"]["mapping"]["missing"];
    assert_eq!(missing[0]["feature"], "TotalCharges", "{missing}");
    let offered: Vec<&str> = missing[0]["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["column"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["Total amt"], "{missing}");
}

/// In the browser: the preview has a select per model input; choosing a
/// column there previews again at once with the choice (`manual`), and the upload carries it to
/// the worker.
#[tokio::test]
async fn browser_columns_chosen_in_the_preview_are_scored() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = crate::web::browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn().await;
    let csv = synthetic_telco(12).replacen(",tenure,", ",Months with us,", 1);
    let path = downloads.path().join("renamed.csv");
    std::fs::write(&path, &csv).unwrap();

    c.goto(&format!("{}/", t.base)).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(fantoccini::Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    let problem = crate::web::text_of(&c, "#preview-problem:not([hidden])").await;
    assert!(
        problem.contains("No column for tenure") && problem.contains("scored as missing"),
        "{problem}"
    );
    let model = crate::web::text_of(&c, "#preview-model").await;
    assert!(model.contains("built-in model"), "{model}");
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(fantoccini::Locator::Css("select[data-feature='tenure']"))
        .await
        .unwrap()
        .select_by_value("Months with us")
        .await
        .unwrap();
    // The preview is asked again with the choice; the tenure row then says "manual".
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mapping = crate::web::text_of(&c, "#mapping").await;
        if mapping.contains("manual") {
            assert!(mapping.contains("\"Months with us\""), "{mapping}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no manual row: {mapping}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    crate::web::screenshots(&c, "7-upload-manual-mapping").await;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(fantoccini::Locator::Css("#submit:not([disabled])"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page moves to the prediction once queued.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut url = c.current_url().await.unwrap();
    while !url.path().starts_with("/predictions/") {
        assert!(std::time::Instant::now() < deadline, "still on {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        url = c.current_url().await.unwrap();
    }
    let id = url.path().trim_start_matches("/predictions/").to_owned();
    c.close().await.unwrap();
    assert_eq!(t.work_once().await, Outcome::Completed);
    let (header, rows) = parse_csv(&t.results(&id).await);
    let q = column(&header, "data_quality");
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter().all(|r| !r[q].contains("tenure")),
        "tenure was read from the chosen column"
    );
}

/// `csv` with header names replaced (`from` → `to`, whole names only).
fn renamed(csv: &str, names: &[(&str, &str)]) -> String {
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|h| {
            names
                .iter()
                .find(|(f, _)| *f == h)
                .map_or(h.to_owned(), |(_, t)| (*t).to_owned())
        })
        .collect();
    std::iter::once(header.join(","))
        .chain(lines.map(str::to_owned))
        .map(|l| l + "\n")
        .collect()
}

/// A header that is an input's name plus a word or unit letter (`tenure_year`,
/// `TotalChargesPrev`, `MonthlyCharges (k)`) may be another quantity or unit: it is never read
/// as the input (scored as absent and suggested), while a typo within the words
/// (`MonthlyChrages`) still maps; `predict` prints every non-exact match with its note.
#[tokio::test]
async fn a_name_with_an_extra_word_is_suggested_never_read_as_the_input() {
    let csv = renamed(
        &synthetic_telco(6),
        &[
            ("tenure", "tenure_year"),
            ("MonthlyCharges", "MonthlyChrages"),
            ("TotalCharges", "TotalChargesPrev"),
            ("gender", "GENDER"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, report, err) = predict(dir.path(), &csv);
    assert!(ok, "{err}");
    assert_eq!(
        report["validation"]["absent_inputs"],
        json!(["tenure", "TotalCharges"]),
        "{err}"
    );
    let m = &report["validation"]["mapping"];
    assert_eq!(entry(m, "MonthlyCharges")["method"], "fuzzy");
    assert!(
        err.contains("mapped: \"MonthlyChrages\" -> MonthlyCharges (fuzzy: probably a typo"),
        "{err}"
    );
    assert!(
        err.contains("mapped: \"GENDER\" -> gender (normalised"),
        "{err}"
    );
    assert!(
        err.contains("not mapped automatically: tenure (closest columns: \"tenure_year\""),
        "{err}"
    );

    let t = TestApp::spawn().await;
    let (status, body) = preview(&t, &csv, None).await;
    assert_eq!(status, 200, "{body}");
    let m = &body["preview"]["mapping"];
    assert_eq!(entry(m, "tenure")["column"], Value::Null, "{m}");
    let missing = m["missing"].as_array().unwrap();
    for (input, column) in [
        ("tenure", "tenure_year"),
        ("TotalCharges", "TotalChargesPrev"),
    ] {
        let x = missing.iter().find(|x| x["feature"] == input).unwrap();
        assert_eq!(x["suggestions"][0]["column"], column, "{x}");
    }
}

/// A BankChurners-style export: `Customer_Age` is the person's age, never their
/// tenure; `Months_on_book` is the tenure.
#[tokio::test]
async fn a_customers_age_is_ignored_and_months_on_book_is_the_tenure() {
    let csv = renamed(
        &synthetic_telco(4),
        &[("tenure", "Customer_Age,Months_on_book")],
    )
    .lines()
    .enumerate()
    .map(|(i, l)| {
        if i == 0 {
            format!("{l}\n")
        } else {
            // One more cell after the tenure: the age in years.
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.insert(5, "47");
            format!("{}\n", cells.join(","))
        }
    })
    .collect::<String>();
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, report, err) = predict(dir.path(), &csv);
    assert!(ok, "{err}");
    let tenure = entry(&report["validation"]["mapping"], "tenure");
    assert_eq!(tenure["column"], "Months_on_book", "{tenure}");
    assert_eq!(
        report["validation"]["mapping"]["unmapped"],
        json!(["Customer_Age"])
    );

    let t = TestApp::spawn().await;
    let (status, body) = preview(&t, &csv, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        entry(&body["preview"]["mapping"], "tenure")["method"],
        "alias"
    );
    assert_eq!(
        body["preview"]["mapping"]["unmapped"],
        json!(["Customer_Age"])
    );
}

/// A hand choice that takes a column the automatic mapping gave to another
/// input would leave that input silently absent: the upload refuses it (422), naming both
/// inputs and the column and saying to map the other input too; the preview shows the same
/// sentence (200, not ready).
#[tokio::test]
async fn a_choice_taking_another_inputs_column_is_refused_naming_both() {
    let csv = synthetic_telco(5);
    let t = TestApp::spawn().await;
    for (bad, words) in [
        (
            json!({ "tenure": "MonthlyCharges" }),
            ["tenure", "MonthlyCharges", "Map MonthlyCharges too"],
        ),
        (
            json!({ "customerID": "gender" }),
            ["customerID", "\"gender\"", "Map gender too"],
        ),
    ] {
        let r = upload_mapped(&t, &csv, &bad).await;
        assert_eq!(r.status(), 422, "{bad}");
        let detail = r.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, body) = preview(&t, &csv, Some(bad.clone())).await;
        assert_eq!(status, 200, "{bad}: {body}");
        assert_eq!(body["ready"], false, "{body}");
        let problems = body["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{body}");
        assert!(
            detail.ends_with(&format!(": {}", problems[0].as_str().unwrap())),
            "{detail} / {body}"
        );
        for w in words {
            assert!(detail.contains(w), "{bad}: {detail}");
        }
    }
    // Saying where the other input goes is a choice the worker honours.
    let ok = json!({ "tenure": "MonthlyCharges", "MonthlyCharges": null });
    assert_eq!(upload_mapped(&t, &csv, &ok).await.status(), 202);
    let list: Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
}

/// Suggestions for a missing input are plausible (never the label, a yes/no
/// column for a number, or a one-letter header), and the upload's 400 sentence names exactly
/// the preview's `missing[].suggestions`.
#[tokio::test]
async fn the_refusal_and_the_preview_suggest_the_same_plausible_columns() {
    let csv = "customerID,gender,Churn,t,tenure_ok,tenure_year\n\
               C1,Female,Yes,3,Yes,2\nC2,Male,No,4,No,1\n";
    let t = TestApp::spawn().await;
    let (status, body) = preview(&t, csv, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["preview"]["ready"], false);
    let tenure = body["preview"]["mapping"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["feature"] == "tenure")
        .unwrap()
        .clone();
    let offered: Vec<&str> = tenure["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["column"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["tenure_year"], "{tenure}");
    let problem = body["preview"]["problem"].as_str().unwrap().to_owned();
    assert!(
        problem.contains("tenure (closest: tenure_year)"),
        "{problem}"
    );
    let r = upload_mapped(&t, csv, &json!({})).await;
    assert_eq!(r.status(), 400);
    let detail = r.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.ends_with(&problem), "{detail}\n{problem}");
    // Every missing input's suggestions, in the sentence exactly as in the structure.
    for x in body["preview"]["mapping"]["missing"].as_array().unwrap() {
        let feature = x["feature"].as_str().unwrap();
        let offered: Vec<&str> = x["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["column"].as_str().unwrap())
            .collect();
        assert!(
            !offered.iter().any(|c| ["Churn", "t"].contains(c)),
            "{feature}: {offered:?}"
        );
        if offered.is_empty() {
            assert!(
                !problem.contains(&format!("{feature} (closest")),
                "{problem}"
            );
        } else {
            let said = format!("{feature} (closest: {})", offered.join(", "));
            assert!(problem.contains(&said), "{said}: {problem}");
        }
    }
}
