//! Signed webhooks: endpoints a user registers, the Standard Webhooks signature every delivery
//! carries, and the check that keeps deliveries away from private networks. Deliveries are a
//! job kind (`worker/webhook.rs`).

pub mod cli;
pub mod destination;
pub mod endpoints;
pub mod signing;

use crate::domain::OrgId;
use endpoints::Event;

/// An endpoint just registered: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct Registered {
    /// `we_` + 32 hex digits.
    pub id: String,
    /// The URL as shown (userinfo redacted, [`destination::redacted`]).
    pub url: String,
    /// The events it receives, known and without duplicates.
    pub events: Vec<Event>,
    /// The `whsec_…` signing secret.
    pub secret: String,
}

/// Why [`register`] refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The request is at fault: a sentence naming the field and what is expected.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Registers an endpoint for `user` with the checks every way in shares (the API, the web
/// page, the CLI): events known and at least one (duplicates dropped), the URL http(s) and
/// resolving to public addresses unless `RETAINWISE_WEBHOOK_ALLOW_PRIVATE`, and
/// `RETAINWISE_PUBLIC_URL` set, since an event's `results_url` is absolute under it (a worker
/// cannot tell the address users reach the API at, and a relative URL means nothing to a
/// receiver).
///
/// Errors: [`RegisterError::Invalid`] naming what to fix; the database's.
pub async fn register(
    db: &sqlx::AnyPool,
    config: &crate::config::Config,
    user: &OrgId,
    url: &str,
    events: &[String],
    actor: &crate::audit::Actor,
) -> Result<Registered, RegisterError> {
    if config.http.public_origin.is_none() {
        return Err(RegisterError::Invalid(
            "webhooks need the address users reach this service at, for the results URL in \
             every event: the operator sets RETAINWISE_PUBLIC_URL (e.g. https://churn.example.com)"
                .to_owned(),
        ));
    }
    let events = parse_events(events).map_err(RegisterError::Invalid)?;
    destination::check(url, config.webhook_allow_private)
        .await
        .map_err(RegisterError::Invalid)?;
    let secret = signing::new_secret();
    let url = url.trim();
    let mut tx = db.begin().await?;
    let id = endpoints::insert(&mut *tx, user, url, &events, &secret).await?;
    let (action, ok) = (crate::audit::Action::WebhookAdd, crate::audit::Outcome::Ok);
    crate::audit::record(&mut *tx, actor, action, Some(("webhook", &id)), &ok).await?;
    tx.commit().await?;
    tracing::info!(endpoint_id = %id, "webhook_endpoint_created");
    Ok(Registered {
        id,
        url: destination::redacted(url),
        events,
        secret,
    })
}

/// Removes `user`'s endpoint `id` ([`endpoints::remove`]) and records it in the audit log, in
/// one transaction. False when `user` has no such endpoint.
///
/// Errors: the database's.
pub async fn remove(
    db: &sqlx::AnyPool,
    user: &OrgId,
    id: &str,
    actor: &crate::audit::Actor,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    if !endpoints::remove(&mut *tx, user, id).await? {
        return Ok(false);
    }
    let (action, ok) = (
        crate::audit::Action::WebhookRemove,
        crate::audit::Outcome::Ok,
    );
    crate::audit::record(&mut *tx, actor, action, Some(("webhook", id)), &ok).await?;
    tx.commit().await?;
    Ok(true)
}

/// The events asked for, each known, at least one, duplicates dropped.
fn parse_events(names: &[String]) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let event = Event::parse(name)?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if events.is_empty() {
        return Err(format!(
            "\"events\" is empty; name at least one of {}",
            Event::ALL.map(Event::as_str).join(", ")
        ));
    }
    Ok(events)
}
