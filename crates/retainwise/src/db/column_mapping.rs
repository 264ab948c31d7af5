//! A prediction's manual column mapping ([`retainwise_model::ManualMapping`], as JSON): written
//! in the transaction that queues the prediction, read back with the prediction's row
//! ([`super::PredictionRow::column_mapping`]) by the worker that scores it.

use sqlx::AnyConnection;

use crate::domain::PredictionId;

/// Records `json` (a serialised [`retainwise_model::ManualMapping`]) on prediction `id`, on
/// `conn` (the transaction that inserted it).
///
/// Errors: the database failed.
pub async fn set_column_mapping(
    conn: &mut AnyConnection,
    id: PredictionId,
    json: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE predictions SET column_mapping = $1 WHERE id = $2")
        .bind(json)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
