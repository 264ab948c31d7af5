//! A prediction's explanation setting ([`retainwise_model::Explain`] other than the default):
//! written in the transaction that queues the prediction, read back with the prediction's row
//! ([`super::PredictionRow::explanation`]) by the worker that scores it.

use sqlx::AnyConnection;

use crate::domain::PredictionId;

/// Records `explain` on prediction `id`, on `conn` (the transaction that inserted it); the
/// default ([`retainwise_model::Explain::Top`]) is left as NULL.
///
/// Errors: the database failed.
pub async fn set_explanation(
    conn: &mut AnyConnection,
    id: PredictionId,
    explain: retainwise_model::Explain,
) -> Result<(), sqlx::Error> {
    if explain == retainwise_model::Explain::Top {
        return Ok(());
    }
    sqlx::query("UPDATE predictions SET explanation = $1 WHERE id = $2")
        .bind(explain.as_str())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
