//! `GET /`: the upload page. Choose or drop a CSV; the script checks its size against the
//! server's limit before sending anything, shows the column-mapping preview (which file column
//! became which model input, with confidence; missing and ignored columns) from
//! `POST /api/csv/preview-mapping`, and only then queues the job with `POST /api/csv`, showing a
//! progress bar while the bytes go up. A file larger than the form's limit or than one part
//! (`RETAINWISE_UPLOAD_PART_BYTES`) goes by the direct upload instead (`POST /api/uploads`, up to
//! `RETAINWISE_MAX_DIRECT_UPLOAD_BYTES`): part by part, with the same progress bar, and after a
//! dropped connection it asks which parts arrived and sends the rest (the upload id is kept in
//! the browser's local storage, so choosing the same file again after a reload resumes it too).
//! On S3 the parts go straight to the bucket, so the page's Content-Security-Policy lets the
//! script connect there (and the bucket's CORS must allow the site's origin to `PUT`). The preview names the model that will score the file,
//! shows each header exactly as written, and has a select per model input to choose its column
//! by hand (or none: scored as missing); the choices are previewed again at once and sent with
//! the upload as its `mapping` field. Without JavaScript the form still posts the file to the
//! API.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::format;
use super::layout::{self, Nav};
use super::members::WebMember;
use super::WebState;
use crate::domain::Role;

/// `GET /`.
///
/// A viewer gets the page without the form: uploading needs the analyst role, and a form that
/// can only be refused on submit wastes the person's time.
pub async fn page(State(state): State<WebState>, WebMember(me): WebMember) -> Response {
    let org = me.org.clone();
    let can_upload = me.role >= Role::Analyst;
    // This month's usage against the quota, when the organisation has one.
    let usage = state
        .app
        .db
        .usage(&org, state.app.config.default_quota_rows)
        .await
        .ok()
        .filter(|u| u.quota.is_some());
    let limit = state.app.config.max_upload_bytes;
    let direct_max = state.app.config.max_direct_upload_bytes;
    // Files above this go part by part (resumable); smaller ones keep the one-request form.
    let direct_from = limit.min(state.app.config.upload_part_bytes);
    let body = html! {
        h1 { "Score a customer file" }
        p { "Upload a CSV with one row per customer. Each customer gets a churn probability, a risk level and the reasons behind it." }
        @if let Some(u) = &usage {
            p.hint #usage {
                "This month (" (u.month) "): " (u.rows_scored) " rows scored"
                @if u.rows_reserved > 0 { ", " (u.rows_reserved) " more in queued files" }
                " of " (u.quota.unwrap_or_default()) "; resets on " (u.resets_on) "."
            }
        }
        @if can_upload {
            form #upload-form.card method="post" action="/api/csv" enctype="multipart/form-data"
                data-max-bytes=(direct_max) data-max-text=(human_bytes(direct_max))
                data-direct-from=(direct_from)
                data-head-bytes=(crate::registry::HEAD_BYTES) {
                div #dropzone.dropzone {
                    label for="file" {
                        span.big { "Drop a CSV file here" }
                        span { " or choose one" }
                    }
                    input #file type="file" name="file" accept=".csv,.tsv,.txt,text/csv" required aria-describedby="file-help";
                    p #file-help.hint { "CSV (comma, semicolon, tab or pipe separated), up to " (human_bytes(direct_max)) ". Files over " (human_bytes(direct_from)) " are sent in parts and pick up where they stopped after a dropped connection." }
                }
                p #file-status.alert role="status" aria-live="polite" hidden {}
                section #preview aria-live="polite" aria-labelledby="preview-h" hidden {
                    h2 #preview-h tabindex="-1" { "How the file will be read" }
                    p #preview-meta {}
                    p #preview-model {}
                    p #preview-problem.alert.error role="alert" hidden {}
                    div.table-wrap {
                        table #mapping {
                            caption.sr-only { "Column mapping" }
                            thead { tr {
                                th scope="col" { "Model input" }
                                th scope="col" { "File column" }
                                th scope="col" { "How matched" }
                                th scope="col" .num { "Confidence" }
                                th scope="col" { "Choose the column" }
                            } }
                            tbody {}
                        }
                    }
                    p #preview-ignored {}
                    // Shown only when the model reads date columns (see app.js).
                    p #reference-box hidden {
                        label for="reference-date" { "Reference date " }
                        input #reference-date type="date" name="reference_date" aria-describedby="reference-help";
                        span #reference-help.hint { " Dates are read as days before this date; leave it empty to use the file's latest date." }
                    }
                }
                div #progress-box hidden {
                    label for="progress" { "Uploading" }
                    progress #progress max="100" value="0" { "0%" }
                }
                div.actions {
                    button #submit type="submit" { "Queue the prediction" }
                }
            }
        } @else {
            section.card #read-only aria-labelledby="read-only-h" {
                h2 #read-only-h { "Your role here is " (me.role.as_str()) }
                p { "You can read predictions, customers and models in this organisation. Scoring a file needs the analyst role or above: an owner of the organisation can change your role on the Members page." }
                p { a href="/predictions" { "See the predictions" } }
            }
        }
        section.card aria-labelledby="samples" {
            h2 #samples { "Sample files" }
            p { "Templates that score as is: "
                a href="/api/csv/sample-csv/telecom" download { "sample-telecom.csv" } " (the built-in Telco model) and "
                a href="/api/csv/sample-csv/saas" download { "sample-saas.csv" } " (subscription customers, scored by a rule-based baseline until you train a model on your own history)." }
            p { "Every column the models read, with types and accepted other names: "
                a href="/api/csv/supported-columns/telecom" { "telecom" } ", "
                a href="/api/csv/supported-columns/saas" { "SaaS" } " (JSON)." }
            p.hint { "Column order does not matter; names are matched ignoring case and punctuation, by known aliases (e.g. mrr for MonthlyCharges) and, for small typos, by similarity." }
        }
    };
    let mut response =
        layout::page("Upload", Nav::Upload, state.app.auth.is_required(), body).into_response();
    if let Ok(Some(s3)) = state.app.storage.direct_origin().await {
        // The parts of a direct upload go to the bucket: allow the script to connect there
        // (the rest of the policy is the site's, `api::SECURITY_HEADERS`).
        let policy = format!(
            "default-src 'self'; connect-src 'self' {s3}; img-src 'self' data:; style-src 'self'; \
             script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        );
        if let Ok(value) = HeaderValue::from_str(&policy) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    response
}

/// `10485760` → `"10 MB"`.
fn human_bytes(n: u64) -> String {
    const MB: u64 = 1024 * 1024;
    const GB: u64 = 1024 * MB;
    if n >= GB && n.is_multiple_of(GB) {
        format!("{} GB", format::int(n / GB))
    } else if n >= MB {
        format!("{} MB", format::int(n.div_ceil(MB)))
    } else {
        format!("{} KB", format::int(n.div_ceil(1024)))
    }
}
