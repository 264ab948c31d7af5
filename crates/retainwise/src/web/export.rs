//! `GET /predictions/{id}/export.xlsx`: the results as an Excel workbook — a summary sheet (the
//! dashboard's figures) and a customers sheet (every scored row). The CSV export is the API's
//! `GET /api/predictions/{id}/results`, which escapes the stored raw results on the way out.
//!
//! Text cells of the workbook go through the same [`escape_cell`] as the CSV download (the
//! stored results are raw), so a customer id such as `=HYPERLINK(…)` reads as text everywhere,
//! also after a copy-paste or a re-save as CSV.
//! The workbook is written in rust_xlsxwriter's constant-memory mode to an anonymous temporary
//! file, row by row while the results stream in, then streamed out: memory stays flat whatever
//! the number of rows.

use std::io::{Seek, SeekFrom};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use retainwise_model::safe_csv::escape_cell;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde_json::Value;

use super::customers::results_key;
use super::error::WebError;
use super::index::ChannelReader;
use super::predictions::find;
use super::WebState;
use crate::db::PredictionRow;

/// Rows of one Excel sheet, header included (Excel's limit).
pub const EXCEL_MAX_ROWS: u64 = 1_048_576;

/// Columns written as numbers (shown as percentages), not text.
const PROBABILITY_COLUMNS: &[&str] = &["churn_probability", "retention_probability"];

/// Workbooks one user may have in preparation at once. Each holds a blocking thread and a
/// temporary file for seconds on a large result, so without a bound one user's parallel
/// requests could occupy every blocking thread and fill the disk.
pub const EXPORTS_PER_USER: usize = 2;

/// Workbooks being prepared, per user.
#[derive(Debug, Default)]
pub struct ExportSlots {
    busy: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl ExportSlots {
    /// A slot for one more of `user`'s exports, or `None` when they already have
    /// [`EXPORTS_PER_USER`] in preparation. The slot is given back when dropped.
    pub fn take(self: &std::sync::Arc<Self>, user: &crate::domain::OrgId) -> Option<ExportSlot> {
        let mut busy = self.busy.lock().expect("export slots lock");
        let n = busy.entry(user.as_str().to_owned()).or_insert(0);
        if *n >= EXPORTS_PER_USER {
            return None;
        }
        *n += 1;
        Some(ExportSlot {
            slots: self.clone(),
            user: user.as_str().to_owned(),
        })
    }
}

/// One export in preparation; see [`ExportSlots::take`].
pub struct ExportSlot {
    slots: std::sync::Arc<ExportSlots>,
    user: String,
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut busy = self.slots.busy.lock().expect("export slots lock");
        if let Some(n) = busy.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.user);
            }
        }
    }
}

/// `GET /predictions/{id}/export.xlsx?mask=none|partial|full`: the personal columns masked as
/// asked (viewers: masked only, `full` by default; see [`crate::privacy::mask`]). At most [`EXPORTS_PER_USER`] of a user's workbooks are
/// prepared at once; another answers 429.
pub async fn xlsx(
    State(state): State<WebState>,
    super::members::WebMember(member): super::members::WebMember,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    Path(id): Path<String>,
    query: Result<
        axum::extract::Query<crate::privacy::mask::MaskQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, WebError> {
    let user = member.org.clone();
    let route = "GET /predictions/{id}/export.xlsx";
    let pool = state.app.db.pool();
    let mask =
        crate::privacy::mask::MaskQuery::decide_audited(query, member.role, pool, &actor, route)
            .await?;
    let row = find(&state, &user, &id).await?;
    // Held by the thread that writes the workbook, so a client that gives up does not free it
    // before that work ends.
    let slot = state.exports.take(&user).ok_or_else(|| {
        WebError::from(crate::http::ApiError::TooManyRequests {
            retry_after: std::time::Duration::from_secs(10),
            what: "Excel exports at once: two of yours are being prepared; wait for them",
        })
    })?;
    let key = results_key(&row, &user)?;
    let salt = crate::privacy::Salt::of(&state.app.db, &user)
        .await
        .map_err(crate::http::ApiError::from)?;
    let masker = crate::privacy::mask::Masker::new(mask, salt);
    let action = crate::audit::Action::ExportExcel;
    crate::audit::prediction_export(state.app.db.pool(), &actor, action, &id, mask)
        .await
        .map_err(crate::http::ApiError::from)?;
    let rows = row.rows_processed.max(0) as u64;
    if rows >= EXCEL_MAX_ROWS {
        return Err(WebError::conflict(format!(
            "This prediction has {rows} customers, more than an Excel sheet holds ({} rows); download the CSV instead.",
            EXCEL_MAX_ROWS - 1
        )));
    }
    let mut stream = state.app.storage.get_stream(&key).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let thresholds = state.app.config.thresholds.clone();
    let meta = row.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        write_workbook(
            &meta,
            &thresholds,
            &masker,
            ChannelReader {
                rx,
                current: Bytes::new(),
            },
        )
    });
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    let file = writer
        .await
        .map_err(|e| WebError::from(crate::http::ApiError::Internal(e.into())))?
        .map_err(|e| {
            WebError::from(crate::http::ApiError::Internal(
                e.context("writing the workbook"),
            ))
        })?;
    let stem = row
        .filename
        .trim_end_matches(".csv")
        .trim_end_matches(".CSV");
    let name = format!(
        "{}_predictions.xlsx",
        crate::http::attachment::ascii_filename(stem)
    );
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::from_std(file),
    ));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Builds the workbook from the results CSV `input` into an anonymous temporary file, rewound;
/// the customers sheet's personal columns go through `masker`.
fn write_workbook(
    row: &PredictionRow,
    thresholds: &retainwise_model::RiskThresholds,
    masker: &crate::privacy::mask::Masker,
    input: impl std::io::Read,
) -> anyhow::Result<std::fs::File> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.0%");
    let money = Format::new().set_num_format("#,##0.00");
    let summary: Value = row
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    {
        let sheet = workbook.add_worksheet();
        sheet.set_name("Summary")?;
        write_summary(sheet, row, &summary, thresholds, &bold, &percent, &money)?;
    }
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name("Customers")?;
    let mut reader = csv::ReaderBuilder::new().from_reader(input);
    let header = reader.headers()?.clone();
    let numeric: Vec<bool> = header
        .iter()
        .map(|h| PROBABILITY_COLUMNS.contains(&h))
        .collect();
    let personal = if masker.mask() == crate::privacy::Mask::None {
        Vec::new()
    } else {
        masker.columns(header.iter())
    };
    for (c, h) in header.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, escape_cell(h), &bold)?;
        let width = match h {
            "summary" | "recommendation" => 60.0,
            "data_quality" => 30.0,
            "risk_factors" | "protective_factors" => 40.0,
            _ => 18.0,
        };
        sheet.set_column_width(c as u16, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    let mut record = csv::StringRecord::new();
    let mut r: u32 = 0;
    while reader.read_record(&mut record)? {
        r += 1;
        for (c, cell) in record.iter().enumerate() {
            let col = c as u16;
            match (numeric.get(c), cell.parse::<f64>()) {
                (Some(true), Ok(x)) => sheet.write_number_with_format(r, col, x, &percent)?,
                _ if personal.contains(&c) => {
                    sheet.write_string(r, col, escape_cell(&masker.apply(cell)))?
                }
                _ => sheet.write_string(r, col, escape_cell(cell))?,
            };
        }
    }
    if r > 0 {
        sheet.autofilter(0, 0, r, (header.len().max(1) - 1) as u16)?;
    }
    let mut file = tempfile::tempfile()?;
    workbook.save_to_writer(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

#[allow(clippy::too_many_arguments)]
fn write_summary(
    sheet: &mut Worksheet,
    row: &PredictionRow,
    s: &Value,
    thresholds: &retainwise_model::RiskThresholds,
    bold: &Format,
    percent: &Format,
    money: &Format,
) -> Result<(), XlsxError> {
    let n = |v: &Value| v.as_f64().unwrap_or(0.0);
    let total = n(&s["rows_scored"]);
    let share = |x: f64| if total > 0.0 { x / total } else { 0.0 };
    sheet.set_column_width(0, 34.0)?;
    sheet.set_column_width(1, 22.0)?;
    sheet.set_column_width(2, 14.0)?;
    sheet.set_column_width(3, 18.0)?;
    sheet.write_string_with_format(0, 0, "retainwise churn prediction", bold)?;
    let text_rows: [(&str, String); 4] = [
        ("File", row.filename.clone()),
        ("Prediction", row.id.clone()),
        ("Model", row.model_id.clone()),
        ("Created (UTC)", crate::time::rfc3339(row.queued_at)),
    ];
    let mut r = 2u32;
    for (label, value) in &text_rows {
        sheet.write_string(r, 0, *label)?;
        sheet.write_string(r, 1, escape_cell(value))?;
        r += 1;
    }
    r += 1;
    sheet.write_string(r, 0, "Customers scored")?;
    sheet.write_number(r, 1, total)?;
    r += 1;
    sheet.write_string(r, 0, "Rows rejected")?;
    sheet.write_number(r, 1, n(&s["rows_rejected"]))?;
    r += 2;
    sheet.write_string_with_format(r, 0, "Risk level", bold)?;
    sheet.write_string_with_format(r, 1, "Customers", bold)?;
    sheet.write_string_with_format(r, 2, "Share", bold)?;
    r += 1;
    let counts: retainwise_model::RiskCounts =
        serde_json::from_value(s["risk_counts"].clone()).unwrap_or_default();
    for level in retainwise_model::RiskLevel::ALL {
        let label = match level {
            retainwise_model::RiskLevel::High => {
                format!("High (churn ≥ {:.0}%)", thresholds.high * 100.0)
            }
            retainwise_model::RiskLevel::Medium => {
                format!("Medium (≥ {:.0}%)", thresholds.medium * 100.0)
            }
            retainwise_model::RiskLevel::Low => {
                format!("Low (< {:.0}%)", thresholds.medium * 100.0)
            }
        };
        let count = counts.get(level) as f64;
        sheet.write_string(r, 0, label)?;
        sheet.write_number(r, 1, count)?;
        sheet.write_number_with_format(r, 2, share(count), percent)?;
        r += 1;
    }
    r += 1;
    let mean = n(&s["mean_churn_probability"]);
    sheet.write_string(r, 0, "Average churn probability")?;
    sheet.write_number_with_format(r, 1, mean, percent)?;
    r += 1;
    sheet.write_string(r, 0, "Average retention probability")?;
    sheet.write_number_with_format(r, 1, 1.0 - mean, percent)?;
    r += 1;
    let p = &s["portfolio"];
    if let Some(column) = p["revenue_column"]
        .as_str()
        .filter(|_| n(&p["revenue_customers"]) > 0.0)
    {
        sheet.write_string(r, 0, "Revenue at risk per month")?;
        sheet.write_number_with_format(r, 1, n(&p["revenue_at_risk"]), money)?;
        sheet.write_string(
            r,
            2,
            escape_cell(&format!("Σ {column} × churn probability")),
        )?;
        r += 1;
        sheet.write_string(r, 0, "Monthly revenue")?;
        sheet.write_number_with_format(r, 1, n(&p["monthly_revenue"]), money)?;
        r += 1;
        // How revenue was read and which customers were left out of the sums.
        if let Some(note) = p["revenue_note"].as_str() {
            sheet.write_string(r, 0, "Revenue note")?;
            sheet.write_string(r, 2, escape_cell(note))?;
            r += 1;
        }
    }
    if let Some(drivers) = p["top_drivers"].as_array().filter(|d| !d.is_empty()) {
        r += 1;
        sheet.write_string_with_format(r, 0, "Top risk driver", bold)?;
        sheet.write_string_with_format(r, 1, "Customers", bold)?;
        sheet.write_string_with_format(r, 2, "Share", bold)?;
        sheet.write_string_with_format(r, 3, "Average effect (pts)", bold)?;
        r += 1;
        for d in drivers {
            sheet.write_string(r, 0, escape_cell(d["feature"].as_str().unwrap_or("")))?;
            sheet.write_number(r, 1, n(&d["customers"]))?;
            sheet.write_number_with_format(r, 2, share(n(&d["customers"])), percent)?;
            sheet.write_number(r, 3, n(&d["mean_impact"]))?;
            r += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_both_sheets_with_safe_text() {
        let results = "customer_id,churn_probability,retention_probability,risk_level,summary\n\
            =HYPERLINK(\"x\"),0.900000,0.100000,high,@SUM(A1)\n\
            A-2,0.100000,0.900000,low,-1 fine\n";
        let row = PredictionRow {
            id: "00000000-0000-0000-0000-000000000000".into(),
            user_id: "local".into(),
            upload_id: "u".into(),
            filename: "=evil.csv".into(),
            status: crate::db::JobStatus::Completed,
            attempt: 1,
            queue_message_id: None,
            queued_at: 0,
            started_at: None,
            completed_at: None,
            rows_total: Some(2),
            rows_processed: 2,
            rows_rejected: 0,
            summary: Some(r#"{"rows_scored":2,"risk_counts":{"high":1,"medium":0,"low":1},"mean_churn_probability":0.5}"#.into()),
            result_key: None,
            report_key: None,
            error_message: None,
            model_id: "m".into(),
            reference_date: None,
            column_mapping: None,
            explanation: None,
            chunks_total: None,
            chunks_done: 0,
            erased_customers: 0,
            dead_lettered_at: None,
            updated_at: 0,
            deletion_id: None,
            deleted_at: None,
            deleted_by: None,
            upload_deleted_at: None,
            upload_retention_days: None,
            results_deleted_at: None,
            results_retention_days: None,
        };
        let file = write_workbook(
            &row,
            &Default::default(),
            &crate::privacy::mask::Masker::new(
                crate::privacy::Mask::None,
                crate::privacy::Salt::from_bytes(vec![0; 32]),
            ),
            results.as_bytes(),
        )
        .unwrap();
        let mut zip = zip::ZipArchive::new(file).expect("an xlsx is a zip");
        let mut sheets = Vec::new();
        for name in ["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"] {
            let mut xml = String::new();
            std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut xml).unwrap();
            assert!(!xml.contains("<f>"), "no formula cells in {name}");
            sheets.push(xml);
        }
        let names = {
            let mut xml = String::new();
            std::io::Read::read_to_string(&mut zip.by_name("xl/workbook.xml").unwrap(), &mut xml)
                .unwrap();
            xml
        };
        assert!(names.contains("name=\"Summary\"") && names.contains("name=\"Customers\""));
        let shared = match zip.by_name("xl/sharedStrings.xml") {
            Ok(mut f) => {
                let mut xml = String::new();
                std::io::Read::read_to_string(&mut f, &mut xml).unwrap();
                xml
            }
            Err(_) => String::new(),
        };
        let all = format!("{}{}{shared}", sheets[0], sheets[1]);
        assert!(
            all.contains("'=evil.csv"),
            "the file name is escaped on the summary"
        );
        assert!(
            all.contains("'@SUM(A1)") && all.contains("'-1 fine"),
            "text cells are escaped"
        );
        assert!(
            all.contains("'=HYPERLINK") && !all.contains("''="),
            "a raw stored id is escaped once"
        );
        assert!(
            sheets[1].contains("<v>0.9</v>"),
            "probabilities are numbers: {}",
            &sheets[1][..400.min(sheets[1].len())]
        );
    }
}
