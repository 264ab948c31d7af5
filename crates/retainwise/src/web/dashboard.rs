//! `GET /predictions/{id}`: the dashboard of a completed prediction — customers, counts and
//! shares per risk level, average churn and retention probability, revenue at risk, the risk
//! distribution, a churn-probability histogram and the top drivers — or, until it completes,
//! its live status (`GET /predictions/{id}/status` is polled and the page reloads when the job
//! finishes).
//!
//! Every figure comes from the summary the worker stored with the prediction (the scorer's
//! [`ScoreReport`](retainwise_model::score::ScoreReport), portfolio included), so the page
//! costs one database row whatever the file size.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::charts::{self, Bar};
use super::error::WebError;
use super::format;
use super::layout::{self, Nav};
use super::predictions::{downloads, find, status};
use super::{WebState, WebUser};
use crate::db::{PredictionRow, PredictionStatus};

use retainwise_model::portfolio::Portfolio;
use retainwise_model::{RiskLevel, ScoreReport};

/// `GET /predictions/{id}`.
pub async fn page(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let row = find(&state, &user, &id).await?;
    let title = row.filename.clone();
    let (days, _) =
        crate::retention::of(state.app.db.pool(), &user, state.app.config.retention).await?;
    let gone = row.results_gone();
    let changes = match row.status() {
        PredictionStatus::Completed if gone.is_none() => {
            Some(super::history::changes_panel(&state, &user, &row).await)
        }
        _ => None,
    };
    // Erasures that removed a row from it, or whose customer it holds again.
    let erasures = crate::erasure::notes(state.app.db.pool(), &user, &row.id)
        .await
        .map_err(crate::http::ApiError::from)?;
    let body = html! {
        p.crumbs { a href="/predictions" { "Predictions" } " / " (row.filename) }
        h1 { (row.filename) }
        (facts(&row, days))
        @for note in &erasures { p.card.note { (note) } }
        @if let Some(gone) = &gone {
            section.card #gone { h2 { "Deleted" } p { (gone) "." } }
        } @else if row.status() == PredictionStatus::Completed {
            (dashboard(&state, &row))
            @if let Some(changes) = changes { (changes) }
        } @else {
            (status_box(&row))
        }
    };
    Ok(layout::page(&title, Nav::Predictions, state.app.auth.is_required(), body).into_response())
}

/// `GET /predictions/{id}/status`: the live status box alone.
pub async fn status_fragment(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let row = find(&state, &user, &id).await?;
    Ok(status_box(&row).into_response())
}

fn facts(row: &PredictionRow, days: crate::config::Retention) -> Markup {
    use crate::retention::{notice, File};
    let finished = row.finished_at().filter(|_| row.deleted_at.is_none());
    let upload = notice(
        File::Upload,
        finished,
        row.upload_deleted_at,
        row.upload_retention_days,
        days.upload_days,
    );
    let results = notice(
        File::Results,
        finished,
        row.results_deleted_at,
        row.results_retention_days,
        days.result_days,
    )
    .filter(|_| row.status() == PredictionStatus::Completed);
    html! {
        dl.facts {
            div { dt { "Created" } dd { (format::time(row.queued_at)) } }
            div { dt { "Model" } dd { a href=(format!("/models/{}", row.model_id)) title="Its accuracy, trained and live" { code.model { (row.model_id) } } } }
            @if let Some(done) = row.completed_at {
                div { dt { "Finished" } dd { (format::time(done)) } }
            }
            div { dt { "Downloads" } dd { (downloads(row)) } }
            @if upload.is_some() || results.is_some() {
                div #retention { dt { "Kept until" } dd {
                    @if let Some(u) = &upload { span.upload-retention { (capitalised(u)) "." } " " }
                    @if let Some(r) = &results { span.results-retention { (capitalised(r)) "." } }
                } }
            }
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

fn status_box(row: &PredictionRow) -> Markup {
    let s = row.status();
    html! {
        section.card.status #status data-live=(format!("/predictions/{}/status", row.id))
            data-active=(!s.is_terminal()) data-reload-on=(if s == PredictionStatus::Completed { "done" } else { "" })
            aria-live="polite" {
            h2 { "Status" }
            p { (status(row)) }
            @match s {
                PredictionStatus::Queued => p.hint { "The file is stored and waits for a worker. This page updates by itself." },
                PredictionStatus::Running => p.hint { "Scoring. This page updates by itself and shows the dashboard when the job completes." },
                PredictionStatus::Completed => p { "Done. " a href=(format!("/predictions/{}", row.id)) { "Show the dashboard" } },
                PredictionStatus::Failed => p.hint { "Nothing was scored. Fix the file as the message says and upload it again; the "
                    a href=(format!("/api/predictions/{}/report", row.id)) { "validation report" } " has the details." },
                PredictionStatus::Cancelled => p.hint { "Cancelled: nothing was scored. Upload the file again to score it." },
            }
        }
    }
}

/// The file compared with the model's training data: the flagged features by name, then every
/// feature's PSI, missing and unseen shares ([`retainwise_model::drift`]).
fn drift_section(d: &retainwise_model::drift::DriftReport) -> Markup {
    use retainwise_model::drift::{DriftLevel, PSI_ACT, PSI_WATCH};
    html! {
        section #drift-section aria-labelledby="drift" {
            h2 #drift { "Drift from the training data" }
            @if !d.measured {
                p.hint { (d.note.as_deref().unwrap_or("Not measured for this prediction: it was scored before drift was measured.")) }
            } @else {
                p #drift-flags data-level=(d.level().as_str()) {
                    @if d.act.is_empty() && d.watch.is_empty() {
                        "No feature has moved from training beyond PSI " (PSI_WATCH) "."
                    }
                    @if !d.act.is_empty() {
                        strong { "Act: " } (d.act.join(", ")) " (PSI above " (PSI_ACT) ": the file differs significantly from what the model learnt; check the data, consider retraining). "
                    }
                    @if !d.watch.is_empty() {
                        strong { "Watch: " } (d.watch.join(", ")) " (PSI " (PSI_WATCH) "–" (PSI_ACT) ")."
                    }
                    @if let Some(p) = d.score_psi {
                        " Churn probabilities vs training out-of-fold predictions: PSI " (format!("{p:.3}")) " (" (d.score_level.as_str()) ")."
                    }
                }
                @if let Some(n) = &d.note { p.hint { (n) } }
                div.table-wrap {
                    table #drift-table {
                        caption.sr-only { "Drift per feature" }
                        thead { tr { th scope="col" { "Feature" } th scope="col" .num { "PSI" } th scope="col" { "Level" } th scope="col" .num { "Missing (training)" } th scope="col" .num { "Unseen categories" } } }
                        tbody {
                            @for f in &d.features {
                                tr data-level=(f.level.as_str()) {
                                    th scope="row" { (f.feature) }
                                    td.num { (format!("{:.3}", f.psi)) }
                                    td { @if f.level == DriftLevel::Stable { "stable" } @else { strong { (f.level.as_str()) } } }
                                    td.num { (format!("{:.1}% ({:.1}%)", f.missing_share * 100.0, f.training_missing_share * 100.0)) }
                                    td.num { (format!("{:.1}%", f.unseen_share * 100.0)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn dashboard(state: &WebState, row: &PredictionRow) -> Markup {
    // The summary is the stored `ScoreReport`; one stored before a part existed reads with
    // that part empty, and the page says so.
    let summary: ScoreReport = row
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let portfolio = Some(&summary.portfolio).filter(|p| !p.is_empty());
    let c = &summary.risk_counts;
    let total = summary.rows_scored;
    let mean = summary.mean_churn_probability;
    let t = &state.app.config.thresholds;
    let customers = format!("/predictions/{}/customers", row.id);
    html! {
        section aria-labelledby="figures" {
            h2 #figures { "Summary" }
            div.cards {
                (card("Customers scored", &format::int(total), &format!("{} rows rejected", format::int(summary.rows_rejected))))
                @for level in RiskLevel::ALL {
                    @let n = c.get(level);
                    @let share = format!("{} of customers", format::share(n, total));
                    @let (title, note) = match level {
                        RiskLevel::High => ("High risk", format!("{share} · churn ≥ {}", format::percent(t.high))),
                        RiskLevel::Medium => ("Medium risk", share),
                        RiskLevel::Low => ("Low risk", format!("{share} · churn < {}", format::percent(t.medium))),
                    };
                    (card_link(title, &format::int(n), &note, &format!("{customers}?level={level}"), level.as_str()))
                }
                (card("Average churn probability", &format::percent(mean), "mean over scored customers"))
                (card("Average retention probability", &format::retention_percent(mean), "1 − churn"))
                (revenue_card(portfolio))
            }
            p { a.button href=(customers) { "Open the customers table" } }
        }
        section.charts aria-labelledby="distribution" {
            div.chart-box {
                h2 #distribution { "Risk distribution" }
                (charts::bars("risk", "Customers per risk level",
                    &format!("High {}, medium {}, low {} of {} customers.", format::int(c.high), format::int(c.medium), format::int(c.low), format::int(total)),
                    &[
                        Bar { label: "High", value: c.high as f64, text: format!("{} ({})", format::int(c.high), format::share(c.high, total)), colour: charts::HIGH },
                        Bar { label: "Medium", value: c.medium as f64, text: format!("{} ({})", format::int(c.medium), format::share(c.medium, total)), colour: charts::MEDIUM },
                        Bar { label: "Low", value: c.low as f64, text: format!("{} ({})", format::int(c.low), format::share(c.low, total)), colour: charts::LOW },
                    ], 0.0))
            }
            div.chart-box {
                h2 { "Churn probability" }
                @match portfolio {
                    Some(p) => (charts::histogram("hist", &p.probability_histogram, t.medium, t.high)),
                    None => p.hint { "The histogram is not available for this prediction: it was scored before the figure existed. Upload the file again to see it." },
                }
            }
        }
        section aria-labelledby="drivers" {
            h2 #drivers { "Top risk drivers" }
            @match portfolio {
                Some(p) if !p.top_drivers.is_empty() => {
                    p.hint { "How often each column is among a customer's three largest risk drivers (exact TreeSHAP values), and its average effect on churn probability then." }
                    div.charts {
                    div.chart-box {
                    (charts::bars("drivers", "Top risk drivers across customers",
                        "Columns ranked by the number of customers for whom they raise the churn risk most.",
                        &p.top_drivers.iter().map(|d| Bar {
                            label: &d.feature,
                            value: d.customers as f64,
                            text: format!("{} · +{:.1} pts", format::share(d.customers, total), d.mean_impact),
                            colour: charts::BLUE,
                        }).collect::<Vec<_>>(), 0.0))
                    }
                    div.table-wrap {
                        table {
                            caption.sr-only { "Top risk drivers" }
                            thead { tr { th scope="col" { "Column" } th scope="col" .num { "Customers" } th scope="col" .num { "Share" } th scope="col" .num { "Average effect" } } }
                            tbody {
                                @for d in &p.top_drivers {
                                    tr { th scope="row" { (d.feature) } td.num { (format::int(d.customers)) } td.num { (format::share(d.customers, total)) } td.num { "+" (format!("{:.1}", d.mean_impact)) " pts" } }
                                }
                            }
                        }
                    }
                    }
                }
                Some(_) => p.hint { "No column raised any customer's risk by a noticeable amount." },
                None => p.hint { "Not available for this prediction: it was scored before the figure existed." },
            }
        }
        (drift_section(&summary.drift))
        @if let Some(d) = &summary.reference_date {
            p #reference-date { "Date columns were counted back from the reference date " (d)
                @match &summary.reference_date_source {
                    Some(source) => { ", taken from " (source) }
                    None => { " (given with the upload)" }
                }
                "." }
        }
        @if let Some(v) = Some(&summary.validation).filter(|v| !v.balance.is_empty()) {
            p #balance { "Every row accounted for: " (v.balance) "."
                @let values = v.warnings_total.saturating_sub(v.duplicate_ids);
                @if values > 0 {
                    " " (format::int(values)) " values could not be used as given (missing, an unknown category or outside the training range): the customers' Data quality column names them, and the validation report lists each."
                }
            }
            @if !v.absent_inputs.is_empty() {
                p #absent { "The file has no column for " (v.absent_inputs.join(", ")) ": scored as missing in every row (each row's Data quality says so). Add the column, or choose it by hand on the upload page, for sounder scores." }
            }
            @if v.rows_with_extra_empty_fields > 0 {
                p #extra-empty-fields { (format::int(v.rows_with_extra_empty_fields)) @if v.rows_with_extra_empty_fields == 1 { " row ends" } @else { " rows end" } " with empty fields past the header's last column (a trailing delimiter): those fields were ignored." }
            }
            @if v.duplicate_ids > 0 {
                p #repeated-ids { (format::int(v.duplicate_ids)) @if v.duplicate_ids == 1 { " row repeats" } @else { " rows repeat" } " the customer id of an earlier row: both are scored, so those customers count twice in these figures. The validation report names each id and both rows." }
            }
        }
        @if summary.rows_rejected > 0 || !summary.ignored_columns.is_empty() {
            section aria-labelledby="problems" {
                h2 #problems { "Rows not scored and columns ignored" }
                @if !summary.ignored_columns.is_empty() {
                    p { "Columns the model does not use: "
                        @for (i, c) in summary.ignored_columns.iter().enumerate() {
                            @if i > 0 { ", " }
                            // As written: spaces around a name show.
                            span.header-name { (format!("{c:?}")) }
                        }
                        "." }
                }
                @if summary.rows_rejected > 0 {
                    p { (format::int(summary.rows_rejected)) @if summary.rows_rejected == 1 { " row" } @else { " rows" } " could not be scored"
                        @if (summary.issues.len() as u64) < summary.rows_rejected { "; the first " (summary.issues.len()) " are listed" } ":" }
                    div.table-wrap {
                        table {
                            thead { tr { th scope="col" .num { "Row" } th scope="col" { "Customer" } th scope="col" { "Column" } th scope="col" { "Value" } th scope="col" { "Problem" } } }
                            tbody {
                                @for i in &summary.issues {
                                    // Cut: a cell of the file may be any length; the report has it whole.
                                    tr { td.num { (i.row) } td { (format::clipped(i.customer_id.as_deref().unwrap_or("—"), 40)) } td { (i.column.as_deref().unwrap_or("—")) @if let Some(f) = &i.feature { " (model input " (f) ")" } }
                                         td { (format::clipped(i.value.as_deref().unwrap_or("—"), 40)) } td { (format::clipped(&i.reason, 300)) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn card(label: &str, value: &str, note: &str) -> Markup {
    html! {
        div.figure {
            p.label { (label) }
            p.value { (value) }
            p.note { (note) }
        }
    }
}

/// A figure that takes a whole row on a phone (long amounts).
fn card_wide(label: &str, value: &str, note: &str) -> Markup {
    html! {
        div.figure.wide {
            p.label { (label) }
            p.value { (value) }
            p.note { (note) }
        }
    }
}

fn card_link(label: &str, value: &str, note: &str, href: &str, level: &str) -> Markup {
    html! {
        a class=(format!("figure level-{level}")) href=(href) {
            p.label { (label) }
            p.value { (value) }
            p.note { (note) }
        }
    }
}

fn revenue_card(p: Option<&Portfolio>) -> Markup {
    match p {
        Some(p) if p.revenue_column.is_some() && p.revenue_customers > 0 => {
            let (at_risk, monthly) = (
                p.revenue_at_risk.unwrap_or_default(),
                p.monthly_revenue.unwrap_or_default(),
            );
            // The note says how revenue was read and which customers were left out of the
            // sums (no value, or a flagged one): a figure without it would hide them.
            let mut note = format!(
                "Σ {} × churn probability; {} of {} ({})",
                p.revenue_column.as_deref().unwrap_or(""),
                format::money(at_risk),
                format::money(monthly),
                format::percent(if monthly > 0.0 {
                    at_risk / monthly
                } else {
                    0.0
                })
            );
            if let Some(more) = &p.revenue_note {
                note.push_str(". ");
                note.push_str(more);
            }
            card_wide("Revenue at risk per month", &format::money(at_risk), &note)
        }
        Some(p) => card(
            "Revenue at risk",
            "—",
            p.revenue_note
                .as_deref()
                .unwrap_or("needs a monthly charges column (MonthlyCharges or MRR) in the model"),
        ),
        None => card("Revenue at risk", "—", "not computed for this prediction"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dashboard reads the summary the worker stores, which is the scorer's report.
    #[test]
    fn reads_the_scorers_report() {
        let sample = include_bytes!("../../assets/sample-telecom.csv");
        let report = retainwise_model::score_csv(
            retainwise_model::Model::embedded_default(),
            sample.as_slice(),
            std::io::sink(),
            &Default::default(),
            &mut |_| {},
        )
        .unwrap();
        let json = serde_json::to_string(&report).unwrap();
        let summary: ScoreReport = serde_json::from_str(&json).unwrap();
        assert_eq!(summary, report, "the stored summary reads back whole");
        assert_eq!(summary.rows_scored, report.rows_scored);
        let c = &summary.risk_counts;
        assert_eq!(c.high + c.medium + c.low, report.rows_scored);
        let p = &summary.portfolio;
        assert!(!p.is_empty());
        assert_eq!(
            p.probability_histogram.iter().sum::<u64>(),
            report.rows_scored
        );
        assert_eq!(p.revenue_column.as_deref(), Some("MonthlyCharges"));
        // A summary stored before the portfolio existed still loads.
        let old: ScoreReport = serde_json::from_str(
            r#"{"rows_scored":3,"risk_counts":{"high":1,"medium":1,"low":1}}"#,
        )
        .unwrap();
        assert!(old.portfolio.is_empty());
        assert_eq!(old.risk_counts.high, 1);
    }
}
