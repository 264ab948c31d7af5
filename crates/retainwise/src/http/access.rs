//! Who may do what: the one table of access rules, by route, and the one check of a caller's
//! role against it. [`CurrentUser`](super::CurrentUser) (and so the pages' `WebUser`) applies
//! it to every request it authenticates, so a handler that has a caller has an allowed one;
//! a route that authenticates and has no rule here is refused (fail closed), and the test
//! `tests/it/roles.rs` walks every route of the real router with every role against this table.
//!
//! | role | may |
//! |---|---|
//! | viewer | read pages and the API's lists, statuses and dashboards; download customer rows masked only (results CSV and Excel with `mask=partial` or `full`, `full` by default: the handlers refuse `none` with 403, `privacy::mask`; the validation report with its customer ids masked) |
//! | analyst | + upload, preview, score, cancel, download results unmasked (CSV, Excel, links) |
//! | admin | + models (train, activate), webhooks, schedules and the audit log |
//! | owner | + members and their roles, deleting predictions and the organisation, retention, erasure of an end customer |

use axum::http::Method;

use super::ApiError;
use crate::auth::Member;
use crate::domain::Role;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, signed in or not (health, sign-in, static files, signed links whose signature
    /// is the credential).
    Public,
    /// A member of the caller's organisation with at least this role.
    AtLeast(Role),
}

use Role::{Admin, Analyst, Owner, Viewer};
use Rule::{AtLeast, Public};

/// Every route's rule: (method, path as registered, rule). `HEAD` follows `GET`.
pub const RULES: &[(&str, &str, Rule)] = &[
    // Operations and public helpers.
    ("GET", "/health", Public),
    ("GET", "/ready", Public),
    ("GET", "/__version", Public),
    ("GET", "/metrics", Public),
    ("GET", "/api/csv/sample-csv/{industry}", Public),
    ("GET", "/api/csv/supported-columns/{industry}", Public),
    ("GET", "/signin", Public),
    ("POST", "/signin", Public),
    ("POST", "/signout", Public),
    ("GET", "/static/{file}", Public),
    // Signed links: the signature names the organisation and expires.
    ("GET", "/api/downloads/{id}", Public),
    ("PUT", "/api/uploads/{id}", Public),
    ("PUT", "/api/uploads/{id}/parts/{n}", Public),
    // Reading.
    ("GET", "/api/org", AtLeast(Viewer)),
    ("GET", "/api/usage", AtLeast(Viewer)),
    ("GET", "/api/org/retention", AtLeast(Viewer)),
    ("GET", "/api/models", AtLeast(Viewer)),
    ("GET", "/api/models/trainings/{id}", AtLeast(Viewer)),
    ("GET", "/api/models/{id}", AtLeast(Viewer)),
    ("GET", "/api/predictions", AtLeast(Viewer)),
    ("GET", "/api/predictions/", AtLeast(Viewer)),
    ("GET", "/api/predictions/{id}", AtLeast(Viewer)),
    ("GET", "/api/predictions/{id}/", AtLeast(Viewer)),
    ("GET", "/api/predictions/{id}/report", AtLeast(Viewer)),
    ("GET", "/api/predictions/dashboard/data", AtLeast(Viewer)),
    ("POST", "/api/sync-user", AtLeast(Viewer)),
    ("GET", "/api/uploads", AtLeast(Viewer)),
    ("GET", "/api/uploads/{id}", AtLeast(Viewer)),
    ("GET", "/", AtLeast(Viewer)),
    ("GET", "/predictions", AtLeast(Viewer)),
    ("GET", "/predictions/rows", AtLeast(Viewer)),
    ("GET", "/predictions/{id}", AtLeast(Viewer)),
    ("GET", "/predictions/{id}/status", AtLeast(Viewer)),
    ("GET", "/predictions/{id}/customers", AtLeast(Viewer)),
    ("GET", "/predictions/{id}/customers/{row}", AtLeast(Viewer)),
    ("GET", "/api/customers/{customer_id}", AtLeast(Viewer)),
    ("GET", "/api/predictions/{id}/changes", AtLeast(Viewer)),
    ("GET", "/customers/{customer_id}", AtLeast(Viewer)),
    ("GET", "/api/outcomes", AtLeast(Viewer)),
    ("GET", "/api/predictions/{id}/performance", AtLeast(Viewer)),
    ("GET", "/api/predictions/{id}/comparison", AtLeast(Viewer)),
    ("GET", "/api/models/{id}/performance", AtLeast(Viewer)),
    ("GET", "/models/{id}", AtLeast(Viewer)),
    // Exports of customer rows: a viewer's are masked (the handler decides the mask by role).
    ("GET", "/api/predictions/{id}/results", AtLeast(Viewer)),
    ("GET", "/predictions/{id}/export.xlsx", AtLeast(Viewer)),
    // Uploading, scoring, exporting customer rows.
    ("POST", "/api/csv", AtLeast(Analyst)),
    ("POST", "/api/csv/preview-mapping", AtLeast(Analyst)),
    ("POST", "/api/uploads", AtLeast(Analyst)),
    ("POST", "/api/uploads/{id}/complete", AtLeast(Analyst)),
    ("POST", "/api/predictions/{id}/cancel", AtLeast(Analyst)),
    (
        "GET",
        "/api/predictions/download_predictions/{id}",
        AtLeast(Analyst),
    ),
    ("POST", "/predictions/{id}/cancel", AtLeast(Analyst)),
    ("POST", "/api/outcomes", AtLeast(Analyst)),
    ("DELETE", "/api/outcomes/{customer_id}", AtLeast(Analyst)),
    // Models and webhooks.
    ("POST", "/api/models", AtLeast(Admin)),
    ("POST", "/api/models/{id}/activate", AtLeast(Admin)),
    ("POST", "/api/models/retrain", AtLeast(Admin)),
    ("POST", "/api/models/{id}/challenger", AtLeast(Admin)),
    ("DELETE", "/api/models/challenger", AtLeast(Admin)),
    ("POST", "/api/models/{id}/promote", AtLeast(Admin)),
    ("GET", "/api/webhooks", AtLeast(Admin)),
    ("POST", "/api/webhooks", AtLeast(Admin)),
    ("DELETE", "/api/webhooks/{id}", AtLeast(Admin)),
    ("GET", "/api/webhooks/{id}/deliveries", AtLeast(Admin)),
    ("GET", "/webhooks", AtLeast(Admin)),
    ("POST", "/webhooks", AtLeast(Admin)),
    ("GET", "/webhooks/{id}", AtLeast(Admin)),
    ("POST", "/webhooks/{id}/remove", AtLeast(Admin)),
    (
        "POST",
        "/webhooks/{id}/deliveries/{delivery}/redrive",
        AtLeast(Admin),
    ),
    // Re-scoring schedules.
    ("GET", "/api/schedules", AtLeast(Admin)),
    ("POST", "/api/schedules", AtLeast(Admin)),
    ("GET", "/api/schedules/{id}", AtLeast(Admin)),
    ("DELETE", "/api/schedules/{id}", AtLeast(Admin)),
    ("POST", "/api/schedules/{id}/pause", AtLeast(Admin)),
    ("POST", "/api/schedules/{id}/resume", AtLeast(Admin)),
    ("GET", "/schedules", AtLeast(Admin)),
    ("POST", "/schedules", AtLeast(Admin)),
    ("POST", "/schedules/{id}/remove", AtLeast(Admin)),
    ("POST", "/schedules/{id}/pause", AtLeast(Admin)),
    ("POST", "/schedules/{id}/resume", AtLeast(Admin)),
    // The audit log.
    ("GET", "/api/audit", AtLeast(Admin)),
    ("GET", "/audit", AtLeast(Admin)),
    // Members.
    ("GET", "/api/org/members", AtLeast(Owner)),
    ("POST", "/api/org/members", AtLeast(Owner)),
    ("PUT", "/api/org/members/{user}", AtLeast(Owner)),
    ("DELETE", "/api/org/members/{user}", AtLeast(Owner)),
    // Deleting and keeping.
    ("DELETE", "/api/predictions/{id}", AtLeast(Owner)),
    ("GET", "/api/deletions/{id}", AtLeast(Owner)),
    ("DELETE", "/api/org", AtLeast(Owner)),
    ("PUT", "/api/org/retention", AtLeast(Owner)),
    ("GET", "/members", AtLeast(Owner)),
    ("POST", "/members", AtLeast(Owner)),
    ("POST", "/members/{user}/role", AtLeast(Owner)),
    ("POST", "/members/{user}/remove", AtLeast(Owner)),
    // Erasure of an end customer.
    ("POST", "/api/customers/{customer_id}/erase", AtLeast(Owner)),
    ("GET", "/api/erasures/{id}", AtLeast(Owner)),
];

/// The rule of `method` on the route registered as `path`, `None` when the table has none.
pub fn rule(method: &Method, path: &str) -> Option<Rule> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    RULES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, rule)| *rule)
}

/// The check every authenticated request passes: `member`'s role against the rule of the
/// route it matched (`path`: the route as registered, axum's `MatchedPath`).
///
/// Errors: [`ApiError::Forbidden`] naming the role needed and the caller's, when the role is
/// too low, or when the route has no rule (a route added without one is refused for everyone,
/// and logged, until the table says who may use it).
pub fn check(member: &Member, method: &Method, path: Option<&str>) -> Result<(), ApiError> {
    let path = path.unwrap_or("");
    match rule(method, path) {
        Some(Rule::Public) => Ok(()),
        Some(Rule::AtLeast(needed)) if member.role >= needed => Ok(()),
        Some(Rule::AtLeast(needed)) => Err(ApiError::Forbidden(format!(
            "this needs the role {needed} or above in organisation {}; yours is {} (an owner can change it)",
            member.org, member.role
        ))),
        None => {
            tracing::error!(%method, path, "route_without_access_rule");
            Err(ApiError::Forbidden(format!(
                "no access rule for {method} {path}: refused for every role"
            )))
        }
    }
}

/// The paths registered on `router` (as written, `/api/predictions/{id}`), read from its
/// `Debug` form: axum has no other way to list them, and a list kept by hand beside the router
/// is exactly what a new route would be missing from. The route-matrix test walks these.
pub fn registered_paths<S>(router: &axum::Router<S>) -> Vec<String> {
    let text = format!("{router:?}");
    let mut paths = Vec::new();
    // The node's map prints as `paths: {RouteId(3): "/api/csv", …}`.
    for (i, _) in text.match_indices("RouteId(") {
        let rest = &text[i..];
        let Some(close) = rest.find("): \"") else {
            continue;
        };
        let quoted = &rest[close + 4..];
        if let Some(end) = quoted.find('"') {
            let path = &quoted[..end];
            // axum registers its fallback as a route of its own (`/{*__private__axum_fallback}`).
            let routed = path.starts_with('/') && !path.contains("__private__axum");
            if routed && !paths.iter().any(|p| p == path) {
                paths.push(path.to_owned());
            }
        }
    }
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_unique_and_head_follows_get() {
        for (i, (m, p, _)) in RULES.iter().enumerate() {
            assert!(
                !RULES[i + 1..].iter().any(|(m2, p2, _)| m2 == m && p2 == p),
                "{m} {p} twice"
            );
        }
        assert_eq!(
            rule(&Method::HEAD, "/predictions"),
            Some(Rule::AtLeast(Role::Viewer))
        );
        assert_eq!(rule(&Method::GET, "/nowhere"), None);
    }
}
