//! Signed webhooks: endpoints a user registers, the Standard Webhooks signature every delivery
//! carries, and the check that keeps deliveries away from private networks. Deliveries are a
//! job kind (`worker/webhook.rs`).

pub mod cli;
pub mod destination;
pub mod endpoints;
pub mod signing;
