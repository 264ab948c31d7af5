//! Customers across runs: every completed prediction's scored customers remembered by customer
//! id (`customer_history`, one row per customer per prediction, and `customer_runs`, one row
//! per prediction whose customers were remembered), so a customer's risk can be followed over
//! time and two predictions compared.
//!
//! - `write.rs`: the scoring worker streams its results file into the tables, in batches, as
//!   the last step of a run; a retried run replaces its rows, never adds to them.
//! - `customer.rs`: one customer's runs (`GET /api/customers/{customer_id}`, the page).
//! - `changes.rs`: what changed between two predictions (`GET /api/predictions/{id}/changes`,
//!   the dashboard's panel, the `customers.risk_increased` webhook event).
//! - `drivers.rs`: the compact drivers stored per row, and the driver that changed most.
//!
//! Every statement is scoped by an [`Owner`], made in one place ([`Owner::of`]): the
//! organisation that predictions are scoped by. Only predictions that are `COMPLETED` are ever read
//! back, so the rows of a run that did not complete (its lease lost, cancelled) are never
//! shown, and the next attempt replaces them.

mod changes;
mod customer;
mod drivers;
mod write;

pub use changes::{
    changes, previous_run, risk_increases, Changes, Counts, Moved, NoComparison, RiskIncrease,
    Seen, Since,
};
pub use customer::{customer_runs, CustomerRun, CustomerRuns};
pub use drivers::{most_changed, Driver, DriverChange};
pub use write::{forget, record, MAX_ID_BYTES};

use crate::domain::OrgId;

/// Whose history a statement reads or writes: the key every `customer_history` and
/// `customer_runs` row carries in `owner_id`. The one place that decides it, so scoping by
/// organisation instead of user is a change here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(String);

impl Owner {
    /// The owner of `org`'s predictions: the organisation, as predictions are scoped.
    pub fn of(org: &OrgId) -> Owner {
        Owner(org.as_str().to_owned())
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A probability stored in millionths, back to 0–1.
fn probability(ppm: i64) -> f64 {
    ppm as f64 / 1e6
}
