use super::{ApiError, ApiResult};
use std::future::Future;
use tracing::Instrument;

/// Runs a handler's writes on a task of their own, so they finish even when the client disconnects or
/// the deadline answers first. A write dropped halfway can leave a transaction open on a pooled
/// connection (sqlx cannot tell once BEGIN is on the wire) or a Redis reservation without its release.
pub async fn to_completion<T, F>(work: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: Future<Output = ApiResult<T>> + Send + 'static,
{
    tokio::spawn(work.in_current_span())
        .await
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error).context("a request's write task failed")))?
}
