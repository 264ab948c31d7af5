//! Seeded synthetic customer histories, for tests and benchmarks of learning from them: one row
//! per customer per month-end observation date, the features built only from what happened
//! before that date, the label whether the customer left within the next month.
//!
//! The simulation is ours and deliberately simple, but it has the behaviours that make
//! histories hard: each customer's latent health follows a mean-reverting random walk; usage,
//! logins and support tickets follow health (so usage decays in the months before a churn); a
//! sick customer downgrades its plan, a healthy one upgrades; usage is seasonal (a 12-month
//! cycle); new customers are riskier (onboarding); and churn is rare — a monthly hazard of a few
//! percent. A customer contributes a row for every month it was active, so the same customer
//! appears many times: folds must keep a customer's rows together
//! ([`crate::train::stratified_group_folds`]).

use crate::train::SplitMix64;
use std::fmt::Write as _;

/// What to generate.
#[derive(Clone, Debug)]
pub struct HistoryParams {
    /// Customers (each with a signup month inside or before the window).
    pub customers: usize,
    /// Month-end observation dates in the window (the label of the last one needs one month
    /// more, which is simulated but not written).
    pub months: u32,
    /// Seed: the same seed gives the same file.
    pub seed: u64,
}

impl Default for HistoryParams {
    fn default() -> Self {
        HistoryParams {
            customers: 2_000,
            months: 12,
            seed: 7,
        }
    }
}

/// The header [`generate`] writes. `customer_id` names the group; `churned_next_month` is the
/// label (`Yes`/`No`); `observation_date` and `signup_date` are ISO 8601 dates.
pub const HEADER: &str = "customer_id,observation_date,signup_date,plan,seats,monthly_fee,tenure_months,logins_30d,usage_events_30d,usage_change_3m,support_tickets_30d,days_since_last_login,payment_failures_90d,plan_change_90d,region,churned_next_month";

const PLANS: [(&str, f64); 3] = [("basic", 29.0), ("pro", 99.0), ("enterprise", 399.0)];
const REGIONS: [&str; 4] = ["US", "EU", "APAC", "LATAM"];

struct Rng(SplitMix64);

impl Rng {
    /// Uniform in `[0, 1)` from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.0.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal, Box–Muller.
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Poisson with mean `lambda` (Knuth's product method; `lambda` stays small here).
    fn poisson(&mut self, lambda: f64) -> u32 {
        let lambda = lambda.clamp(0.0, 60.0);
        let limit = (-lambda).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.unit();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Last day of month `m` counted from January 2024 (`m = 0`), as `YYYY-MM-DD`.
fn month_end(m: i64) -> String {
    let year = 2024 + m.div_euclid(12);
    let month = m.rem_euclid(12) + 1;
    let days = match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    format!("{year:04}-{month:02}-{days:02}")
}

/// Writes the CSV ([`HEADER`] and one row per customer per active month) for `p`.
pub fn generate(p: &HistoryParams) -> String {
    let mut rng = Rng(SplitMix64(p.seed ^ 0x5EED_0FC0_FFEE));
    let months = i64::from(p.months);
    let mut out = String::with_capacity(p.customers * p.months as usize * 110);
    out.push_str(HEADER);
    out.push('\n');
    for c in 0..p.customers {
        // Signup: up to two years before the window, or inside it.
        let signup = rng.below((months + 24) as usize) as i64 - 24;
        let signup_day = 1 + rng.below(28);
        let signup_date = {
            let end = month_end(signup);
            format!("{}{signup_day:02}", &end[..8])
        };
        let mut plan = rng.below(10).min(8) / 4; // 0..=2, enterprise rarer
        let seats = 1 + rng.poisson([1.0, 6.0, 40.0][plan]);
        let region = REGIONS[rng.below(REGIONS.len())];
        let mut health = rng.normal() * 0.8;
        let mut usage_hist: Vec<f64> = Vec::new();
        let mut plan_changed_at: Option<(i64, &str)> = None;
        let mut failures: Vec<i64> = Vec::new();
        let mut last_login_gap = 0u32;
        // Simulate from signup; rows are written for the window's months only.
        for m in signup..=months {
            let tenure = m - signup;
            // Mean-reverting random walk of the latent health.
            health = 0.85 * health + 0.45 * rng.normal();
            let season =
                1.0 + 0.15 * (std::f64::consts::TAU * (m.rem_euclid(12) as f64) / 12.0).sin();
            let usage_rate = (3.0 + 1.2 * health).exp() * season * (seats as f64).sqrt() / 3.0;
            let usage = f64::from(rng.poisson(usage_rate.min(60.0)));
            let logins = rng.poisson(((2.3 + 0.8 * health).exp()).min(50.0));
            let tickets = rng.poisson((0.4 - 0.5 * health).exp() * 0.5);
            last_login_gap = if logins > 0 {
                rng.below(30 / (logins as usize).clamp(1, 30) + 1) as u32
            } else {
                last_login_gap + 30
            };
            if rng.unit() < 0.02 + 0.04 * sigmoid(-2.0 * health) {
                failures.push(m);
            }
            // Plan moves: down when sick, up when thriving.
            if plan > 0 && rng.unit() < 0.03 * sigmoid(-2.5 * health - 1.0) * 4.0 {
                plan -= 1;
                plan_changed_at = Some((m, "downgrade"));
            } else if plan < 2 && rng.unit() < 0.02 * sigmoid(2.5 * health - 1.5) * 4.0 {
                plan += 1;
                plan_changed_at = Some((m, "upgrade"));
            }
            usage_hist.push(usage);
            // The monthly hazard: health, tickets, failed payments, a recent downgrade, and
            // the first months (onboarding) all raise it; about 3 % a month overall.
            let recent_failures = failures.iter().filter(|&&f| m - f < 3).count() as f64;
            let downgraded = matches!(plan_changed_at, Some((at, "downgrade")) if m - at < 3);
            let hazard = sigmoid(
                -4.1 - 1.1 * health
                    + 0.25 * f64::from(tickets)
                    + 0.6 * recent_failures
                    + if downgraded { 0.7 } else { 0.0 }
                    + if tenure < 3 { 0.9 } else { 0.0 }
                    - 0.15 * plan as f64,
            );
            let churns_next = rng.unit() < hazard;
            if m >= 0 && m < months {
                let n = usage_hist.len();
                let before = if n >= 4 {
                    (usage_hist[n - 4] + usage_hist[n - 3] + usage_hist[n - 2]) / 3.0
                } else {
                    f64::NAN
                };
                let change = if before.is_finite() && before > 0.0 {
                    format!("{:.3}", usage / before)
                } else {
                    String::new()
                };
                let plan_change = match plan_changed_at {
                    Some((at, what)) if m - at < 3 => what,
                    _ => "none",
                };
                let (plan_name, price) = PLANS[plan];
                let _ = writeln!(
                    out,
                    "C{c:06},{},{signup_date},{plan_name},{seats},{:.2},{tenure},{logins},{usage},{change},{tickets},{last_login_gap},{},{plan_change},{region},{}",
                    month_end(m),
                    price * if plan == 0 { 1.0 } else { seats as f64 },
                    failures.iter().filter(|&&f| m - f < 3).count(),
                    if churns_next { "Yes" } else { "No" }
                );
            }
            if churns_next {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_rare_churn_and_several_rows_per_customer() {
        let p = HistoryParams {
            customers: 500,
            months: 12,
            seed: 3,
        };
        let a = generate(&p);
        assert_eq!(a, generate(&p), "the same seed gives the same file");
        let rows: Vec<&str> = a.lines().skip(1).collect();
        let churned = rows.iter().filter(|r| r.ends_with(",Yes")).count();
        let rate = churned as f64 / rows.len() as f64;
        assert!((0.01..0.08).contains(&rate), "monthly churn {rate}");
        assert!(rows.len() > 2 * p.customers, "{} rows", rows.len());
        let width = HEADER.split(',').count();
        assert!(rows.iter().all(|r| r.split(',').count() == width));
    }
}
