//! Metering and quotas: rows scored per organisation per calendar month (UTC), and the
//! operator's quota on them.
//!
//! Metering happens once per prediction, in the transaction that records it COMPLETED
//! ([`meter_completed`], from the prediction kind's follow-ups): the state moves to COMPLETED
//! once (the driver's fenced transition), and `predictions.metered_month` is set in the same
//! statement that guards the addition, so a retried, redelivered or re-recorded job is never
//! counted twice. The quota is checked when a prediction is queued ([`check_quota`]), in the
//! transaction that holds the organisation's admission lock, against the month's metered rows
//! plus the rows held by the organisation's queued and running predictions plus the new file's.

use sqlx::AnyConnection;

use super::Db;
use crate::domain::OrgId;
use crate::time::now_ms;

/// A calendar month in UTC, `YYYY-MM`, and when the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    /// `YYYY-MM`.
    pub key: String,
    /// The first day of the next month, `YYYY-MM-DD` (when the month's usage resets).
    pub resets_on: String,
    /// The same, epoch ms (00:00 UTC).
    pub resets_at_ms: i64,
}

impl Month {
    /// The month holding `ms` (epoch milliseconds).
    pub fn of(ms: i64) -> Self {
        use retainwise_model::dates::NaiveDate;
        let days = ms.div_euclid(86_400_000);
        // 719_163: days from 0001-01-01 (CE day 1) to 1970-01-01.
        let date = i32::try_from(days + 719_163)
            .ok()
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .unwrap_or_default();
        let (y, m) = (date.format("%Y").to_string(), date.format("%m").to_string());
        let (year, month): (i32, u32) = (y.parse().unwrap_or(1970), m.parse().unwrap_or(1));
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let next = NaiveDate::from_ymd_opt(ny, nm, 1).unwrap_or_default();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        Self {
            key: format!("{year:04}-{month:02}"),
            resets_on: next.format("%Y-%m-%d").to_string(),
            resets_at_ms: (next - epoch).num_days() * 86_400_000,
        }
    }

    /// The current month.
    pub fn now() -> Self {
        Self::of(now_ms())
    }
}

/// An organisation's usage this month, as `GET /api/usage` answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Rows scored this month (metered at completion).
    pub rows_scored: u64,
    /// Rows held by queued and running predictions (counted at upload under a quota).
    pub rows_reserved: u64,
    /// The quota in rows per month; `None`: unlimited.
    pub quota: Option<u64>,
    /// Where the quota comes from: `organisation`, `default` (RETAINWISE_DEFAULT_QUOTA_ROWS)
    /// or `none`.
    pub quota_source: &'static str,
    /// When the month's usage resets, `YYYY-MM-DD` (00:00 UTC).
    pub resets_on: String,
}

/// Why an upload was refused: it would take the organisation past its quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "monthly quota exceeded: this file has {rows} rows to score, and organisation {org} has used \
     {used} of its {quota} rows for {month} ({reserved} more held by predictions still queued or \
     running); the quota resets on {resets_on} (00:00 UTC); an operator raises it with \
     `retainwise org quota {org} --rows-per-month N`"
)]
pub struct OverQuota {
    /// The organisation.
    pub org: String,
    /// Its quota.
    pub quota: u64,
    /// Rows scored this month.
    pub used: u64,
    /// Rows held by queued and running predictions.
    pub reserved: u64,
    /// The refused file's rows.
    pub rows: u64,
    /// `YYYY-MM`.
    pub month: String,
    /// `YYYY-MM-DD`.
    pub resets_on: String,
    /// Epoch ms of the reset.
    pub resets_at_ms: i64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Db {
    /// `org`'s quota (rows per month) and where it comes from: its own, else `default`
    /// (RETAINWISE_DEFAULT_QUOTA_ROWS), else none.
    pub async fn quota(
        &self,
        org: &OrgId,
        default: Option<u64>,
    ) -> Result<(Option<u64>, &'static str), sqlx::Error> {
        let own: Option<(i64,)> =
            sqlx::query_as("SELECT rows_per_month FROM org_quotas WHERE org_id = $1")
                .bind(org.as_str())
                .fetch_optional(self.pool())
                .await?;
        Ok(match (own, default) {
            (Some((n,)), _) => (Some(count(n)), "organisation"),
            (None, Some(d)) => (Some(d), "default"),
            (None, None) => (None, "none"),
        })
    }

    /// Sets `org`'s own quota (`None`: removes it, so the default applies again).
    pub async fn set_quota(&self, org: &OrgId, rows: Option<u64>) -> Result<(), sqlx::Error> {
        match rows {
            Some(rows) => {
                sqlx::query(
                    "INSERT INTO org_quotas (org_id, rows_per_month, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_id) DO UPDATE SET rows_per_month = excluded.rows_per_month, \
                     updated_at = excluded.updated_at",
                )
                .bind(org.as_str())
                .bind(i64::try_from(rows).unwrap_or(i64::MAX))
                .bind(now_ms())
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM org_quotas WHERE org_id = $1")
                    .bind(org.as_str())
                    .execute(self.pool())
                    .await?;
            }
        }
        Ok(())
    }

    /// `org`'s usage in the current month.
    pub async fn usage(&self, org: &OrgId, default: Option<u64>) -> Result<Usage, sqlx::Error> {
        let month = Month::now();
        let (quota, quota_source) = self.quota(org, default).await?;
        // After the quota's query: SQLite's pool has one connection.
        let mut conn = self.pool().acquire().await?;
        let (used, reserved) = used_and_reserved(&mut conn, org, &month.key).await?;
        drop(conn);
        Ok(Usage {
            month: month.key,
            rows_scored: used,
            rows_reserved: reserved,
            quota,
            quota_source,
            resets_on: month.resets_on,
        })
    }

    /// Rows scored this month per organisation, for the Prometheus gauge.
    pub async fn usage_this_month(&self) -> Result<Vec<(String, u64)>, sqlx::Error> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT org_id, rows_scored FROM usage_months WHERE month = $1")
                .bind(Month::now().key)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|(o, n)| (o, count(n))).collect())
    }
}

async fn used_and_reserved(
    conn: &mut AnyConnection,
    org: &OrgId,
    month: &str,
) -> Result<(u64, u64), sqlx::Error> {
    let used: Option<(i64,)> =
        sqlx::query_as("SELECT rows_scored FROM usage_months WHERE org_id = $1 AND month = $2")
            .bind(org.as_str())
            .bind(month)
            .fetch_optional(&mut *conn)
            .await?;
    // CAST: Postgres sums BIGINTs as NUMERIC.
    let (reserved,): (Option<i64>,) = sqlx::query_as(
        "SELECT CAST(SUM(quota_rows) AS BIGINT) FROM predictions WHERE user_id = $1 \
         AND status IN ('QUEUED', 'RUNNING') AND quota_rows IS NOT NULL",
    )
    .bind(org.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok((
        used.map_or(0, |(n,)| count(n)),
        count(reserved.unwrap_or(0)),
    ))
}

/// Refuses a file of `rows` rows when the month's metered rows, the rows held by the
/// organisation's queued and running predictions and `rows` together would pass `quota`.
/// Exactly at the quota is allowed. `conn` must hold the organisation's admission lock
/// ([`super::admit`]) so two uploads are checked one after the other.
///
/// Errors: `Ok(Err(OverQuota))` naming quota, usage and reset date; the database.
pub async fn check_quota(
    conn: &mut AnyConnection,
    org: &OrgId,
    quota: u64,
    rows: u64,
) -> Result<Result<(), OverQuota>, sqlx::Error> {
    let month = Month::now();
    let (used, reserved) = used_and_reserved(conn, org, &month.key).await?;
    if used.saturating_add(reserved).saturating_add(rows) <= quota {
        return Ok(Ok(()));
    }
    Ok(Err(OverQuota {
        org: org.to_string(),
        quota,
        used,
        reserved,
        rows,
        month: month.key,
        resets_on: month.resets_on,
        resets_at_ms: month.resets_at_ms,
    }))
}

/// Records the rows a prediction held against the quota (see [`check_quota`]).
pub async fn set_quota_rows(
    conn: &mut AnyConnection,
    prediction: crate::domain::PredictionId,
    rows: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE predictions SET quota_rows = $1 WHERE id = $2")
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .bind(prediction.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What metering a completion did: the rows added and the quota thresholds (80, 100 percent)
/// the organisation's month crossed with them, each reported once a month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metered {
    /// Rows added (0 when the prediction was metered already or is not COMPLETED).
    pub rows: u64,
    /// Thresholds first reached this month, lowest first, with the month's figures.
    pub crossed: Vec<Threshold>,
}

/// A quota threshold reached: what a `usage.threshold` webhook event says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Threshold {
    /// 80 or 100.
    pub percent: u64,
    /// `YYYY-MM`.
    pub month: String,
    /// Rows scored this month.
    pub rows_scored: u64,
    /// The quota.
    pub quota: u64,
    /// When the month's usage resets, `YYYY-MM-DD`.
    pub resets_on: String,
}

/// The quota thresholds that send a `usage.threshold` event, in percent.
pub const THRESHOLDS: [u64; 2] = [80, 100];

/// Adds a COMPLETED prediction's scored rows to its organisation's month (the month of its
/// completion), once: the prediction's `metered_month` is set by the same transaction and only
/// while empty. With a quota (the organisation's, else `default_quota`) it also reports each of
/// [`THRESHOLDS`] the month reached for the first time (`usage_months.notified_percent` is
/// raised in the same transaction, so each is reported once a month). `conn` is the transaction
/// that records the completion.
pub async fn meter_completed(
    conn: &mut AnyConnection,
    prediction_id: &str,
    default_quota: Option<u64>,
) -> Result<Metered, sqlx::Error> {
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT user_id, rows_processed, completed_at FROM predictions \
         WHERE id = $1 AND status = 'COMPLETED' AND metered_month IS NULL",
    )
    .bind(prediction_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((org, rows, completed_at)) = row else {
        return Ok(Metered::default());
    };
    let month = Month::of(completed_at.unwrap_or_else(now_ms));
    let claimed = sqlx::query(
        "UPDATE predictions SET metered_month = $1 WHERE id = $2 AND metered_month IS NULL",
    )
    .bind(&month.key)
    .bind(prediction_id)
    .execute(&mut *conn)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(Metered::default());
    }
    sqlx::query(
        "INSERT INTO usage_months (org_id, month, rows_scored) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id, month) DO UPDATE SET rows_scored = usage_months.rows_scored + excluded.rows_scored",
    )
    .bind(&org)
    .bind(&month.key)
    .bind(rows.max(0))
    .execute(&mut *conn)
    .await?;
    let mut metered = Metered {
        rows: count(rows),
        crossed: Vec::new(),
    };
    let own: Option<(i64,)> =
        sqlx::query_as("SELECT rows_per_month FROM org_quotas WHERE org_id = $1")
            .bind(&org)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(quota) = own
        .map(|(n,)| count(n))
        .or(default_quota)
        .filter(|q| *q > 0)
    else {
        return Ok(metered);
    };
    let (used, notified): (i64, i64) = sqlx::query_as(
        "SELECT rows_scored, notified_percent FROM usage_months WHERE org_id = $1 AND month = $2",
    )
    .bind(&org)
    .bind(&month.key)
    .fetch_one(&mut *conn)
    .await?;
    let used = count(used);
    let reached: Vec<u64> = THRESHOLDS
        .into_iter()
        .filter(|p| used.saturating_mul(100) >= p * quota && *p > count(notified))
        .collect();
    if let Some(highest) = reached.last() {
        sqlx::query(
            "UPDATE usage_months SET notified_percent = $1 WHERE org_id = $2 AND month = $3",
        )
        .bind(i64::try_from(*highest).unwrap_or(i64::MAX))
        .bind(&org)
        .bind(&month.key)
        .execute(&mut *conn)
        .await?;
    }
    metered.crossed = reached
        .into_iter()
        .map(|percent| Threshold {
            percent,
            month: month.key.clone(),
            rows_scored: used,
            quota,
            resets_on: month.resets_on.clone(),
        })
        .collect();
    Ok(metered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_reset() {
        // 2026-12-31T23:59:59.999Z and the next millisecond.
        let last = Month::of(1_798_761_599_999);
        assert_eq!(
            (last.key.as_str(), last.resets_on.as_str()),
            ("2026-12", "2027-01-01")
        );
        assert_eq!(last.resets_at_ms, 1_798_761_600_000);
        let next = Month::of(1_798_761_600_000);
        assert_eq!(
            (next.key.as_str(), next.resets_on.as_str()),
            ("2027-01", "2027-02-01")
        );
        assert_eq!(Month::of(0).key, "1970-01");
        assert_eq!(
            Month::of(951_782_400_000).key,
            "2000-02-29".get(..7).unwrap()
        );
    }
}
