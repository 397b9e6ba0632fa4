//! The `Idempotency-Key` header: parsing it, and answering a retry as the first request was answered.

use super::{json_response, ApiError, ApiResult, ErrorCode};
use crate::auth::AuthUser;
use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use infra::idempotency::{self, Claim, IdempotencyKey};
use serde::Serialize;
use sqlx::{Postgres, Transaction};

/// The header as the document declares it on every route that takes it.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 200 visible ASCII characters; a retry with the same key and body gets the first answer,
    /// the same key with another body 422 `IDEMPOTENCY_KEY_REUSED`.
    #[serde(rename = "Idempotency-Key")]
    #[param(pattern = "^[!-~]{1,200}$")]
    pub idempotency_key: Option<String>,
}

pub const KEY_REUSED: &str = "this Idempotency-Key was used for a different request";

/// The request's Idempotency-Key, scoped to the acting user and fingerprinting route and body.
pub fn idempotency_key(
    headers: &HeaderMap,
    actor: AuthUser,
    route: &str,
    body: &impl Serialize,
) -> ApiResult<Option<IdempotencyKey>> {
    let Some(raw) = headers.get("idempotency-key") else { return Ok(None) };
    let fingerprint = serde_json::to_value(body).map_err(anyhow::Error::from)?;
    raw.to_str()
        .ok()
        .and_then(|raw| IdempotencyKey::new(actor.user_id.get(), raw, route, &fingerprint))
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidIdempotencyKey, "Idempotency-Key must be 1 to 200 visible ASCII characters")
        })
}

/// Claims `key` in `tx`: `None` to go ahead (then `idempotency::complete` in the same transaction), or
/// the first request's answer to send again.
pub async fn claim(tx: &mut Transaction<'_, Postgres>, key: &IdempotencyKey) -> ApiResult<Option<Response>> {
    match idempotency::claim(tx, key).await? {
        Claim::Fresh => Ok(None),
        Claim::Replay { status, body } => Ok(Some(replay(status, &body)?)),
        Claim::KeyReused => Err(ApiError::new(ErrorCode::IdempotencyKeyReused, KEY_REUSED)),
    }
}

pub fn replay(status: u16, body: &serde_json::Value) -> ApiResult<Response> {
    let status = StatusCode::from_u16(status).map_err(anyhow::Error::from)?;
    Ok(json_response(status, body))
}
