//! `GET /models/{id}`: a model's card with its measured accuracy beside the cross-validated
//! figures ("trained at 0.85, live at 0.78" in one glance), each live figure with its 95 %
//! interval and what it rests on, the live reliability table, and each prediction's figures.
//! The same numbers as `GET /api/models/{id}/performance`
//! ([`crate::outcomes::performance::for_model`]).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use retainwise_model::measured::{Estimate, Measured};
use serde_json::Value;

use super::error::WebError;
use super::format;
use super::layout::{self, Nav};
use super::{WebState, WebUser};
use crate::outcomes::performance::{self, ModelPerformance};

/// `GET /models/{id}`.
pub async fn page(
    State(state): State<WebState>,
    WebUser(user): WebUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let row = performance::visible_model(app, &user, &id)
        .await?
        .ok_or_else(|| WebError::not_found("There is no such model among those you can use."))?;
    let card: Value = serde_json::from_str(&row.card).unwrap_or(Value::Null);
    let perf = performance::for_model(app, &state.indexes, &user, &row.id, &card)
        .await
        .map_err(crate::http::ApiError::Internal)?;
    let name = card
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&row.id)
        .to_owned();
    let body = html! {
        h1 { "Model " code.model { (row.id) } }
        p.hint {
            (name) " · trained on " (card.pointer("/training_data/rows").and_then(Value::as_u64).map(format::int).unwrap_or_else(|| "?".into())) " rows · outcome window "
            (perf.window_days) " days"
        }
        @if let Some(d) = card.get("reference_date").and_then(Value::as_str) {
            p #reference-date { "Date columns were counted back from the training file's reference date " (d)
                @if let Some(source) = card.get("reference_date_source").and_then(Value::as_str) { ", taken from " (source) }
                "." }
        }
        (figures(&perf))
        @if let Some(m) = &perf.measured {
            (reliability(m))
        }
        (predictions(&perf))
    };
    Ok(layout::page(
        "Model accuracy",
        Nav::Predictions,
        app.auth.is_required(),
        body,
    )
    .into_response())
}

fn cv_cell(cv: &Value, name: &str) -> String {
    let v = &cv[name];
    match (
        v.get("mean").and_then(Value::as_f64),
        v.get("std").and_then(Value::as_f64),
    ) {
        (Some(mean), Some(std)) => format!("{mean:.3} ± {std:.3}"),
        (Some(mean), None) => format!("{mean:.3}"),
        _ => v
            .as_f64()
            .map(|x| format!("{x:.3}"))
            .unwrap_or_else(|| "—".into()),
    }
}

fn live_cell(e: Option<&Estimate>) -> String {
    match e {
        Some(e) => format!("{:.3} ({:.3}–{:.3})", e.value, e.lower, e.upper),
        None => "—".into(),
    }
}

fn figures(perf: &ModelPerformance) -> Markup {
    let cv = &perf.cross_validated;
    let m = perf.measured.as_ref();
    let rows: [(&str, &str, Option<&Estimate>); 6] = [
        ("ROC AUC", "roc_auc", m.and_then(|m| m.roc_auc.as_ref())),
        (
            "PR AUC (average precision)",
            "pr_auc",
            m.and_then(|m| m.pr_auc.as_ref()),
        ),
        ("Log loss", "log_loss", m.map(|m| &m.log_loss)),
        ("Brier score", "brier", m.map(|m| &m.brier)),
        (
            "Calibration error (ECE)",
            "calibration_error",
            m.map(|m| &m.calibration_error),
        ),
        (
            "Top-decile lift",
            "top_decile_lift",
            m.and_then(|m| m.top_decile_lift.as_ref()),
        ),
    ];
    html! {
        h2 { "Accuracy" }
        @match m {
            Some(m) => p.hint {
                "Live figures rest on " (format::int(m.n)) " scored customers, " (format::int(m.positives)) " of whom churned; "
                (format::int(perf.matching.assumed_retained)) " had no outcome when their " (perf.window_days) "-day window passed and count as retained. Intervals are 95 %: DeLong for ROC AUC, a fixed-seed bootstrap for the others."
            },
            None => p.card {
                "No measured accuracy yet: record outcomes (POST /api/outcomes or retainwise outcomes add) for customers this model scored, or wait until their "
                (perf.window_days) "-day window has passed."
            },
        }
        div.table-wrap {
            table.jobs.stack #accuracy {
                caption.sr-only { "Cross-validated and live accuracy" }
                thead { tr { th scope="col" { "Figure" } th scope="col" .num { "Cross-validated (mean ± sd over folds)" } th scope="col" .num { "Live (95 % interval)" } } }
                tbody {
                    @for (label, key, live) in rows {
                        tr { th scope="row" { (label) } td.num data-label="Cross-validated" { (cv_cell(cv, key)) } td.num data-label="Live (95 % interval)" { (live_cell(live)) } }
                    }
                    @if let Some(m) = m {
                        tr { th scope="row" { "Precision in the top decile" } td.num data-label="Cross-validated" { "—" } td.num data-label="Live (95 % interval)" { (live_cell(m.top_decile_precision.as_ref())) } }
                    }
                }
            }
        }
    }
}

fn reliability(m: &Measured) -> Markup {
    html! {
        h2 { "Reliability (live)" }
        div.table-wrap {
            table.jobs.stack #reliability {
                caption.sr-only { "Forecast against observed churn rate per probability bin" }
                thead { tr { th scope="col" { "Forecast" } th scope="col" .num { "Customers" } th scope="col" .num { "Mean forecast" } th scope="col" .num { "Observed churn" } } }
                tbody {
                    @for b in m.reliability.iter().filter(|b| b.rows > 0) {
                        tr {
                            td data-label="Forecast" { (format!("{:.0}–{:.0} %", b.lower * 100.0, b.upper * 100.0)) }
                            td.num data-label="Customers" { (format::int(b.rows)) }
                            td.num data-label="Mean forecast" { (format::percent(b.mean_predicted)) }
                            td.num data-label="Observed churn" { (format::percent(b.observed_rate)) }
                        }
                    }
                }
            }
        }
    }
}

fn predictions(perf: &ModelPerformance) -> Markup {
    html! {
        h2 { "Predictions" }
        @if perf.predictions.is_empty() {
            p.card { "This model has scored none of your files yet." }
        } @else {
            div.table-wrap {
                table.jobs.stack #prediction-accuracy {
                    caption.sr-only { "Each prediction's measured accuracy" }
                    thead { tr {
                        th scope="col" { "Prediction" } th scope="col" { "Scored" } th scope="col" { "Window ends" }
                        th scope="col" .num { "With outcome" } th scope="col" .num { "Pending" } th scope="col" .num { "ROC AUC" }
                    } }
                    tbody {
                        @for p in &perf.predictions {
                            tr {
                                td data-label="Prediction" { a href=(format!("/predictions/{}", p.prediction_id)) { code { (p.prediction_id.get(..8).unwrap_or(&p.prediction_id)) } } }
                                td data-label="Scored" { (p.scored_on) }
                                td data-label="Window ends" { (p.window_ends) }
                                td.num data-label="With outcome" { (format::int(p.matching.with_outcome + p.matching.assumed_retained)) }
                                td.num data-label="Pending" { (format::int(p.matching.pending)) }
                                td.num data-label="ROC AUC" { (live_cell(p.measured.as_ref().and_then(|m| m.roc_auc.as_ref()))) }
                            }
                        }
                    }
                }
            }
        }
    }
}
