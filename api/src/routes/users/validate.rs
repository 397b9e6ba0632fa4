//! `POST /api/v1/users/validate-token`: whether a token is one this API accepts (signature, expiry,
//! issuer, audience, algorithm), and whose it is.

use crate::openapi::Problems;
use crate::{
    auth::{JwtKeys, TokenError},
    http::ApiJson,
};
use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateTokenRequest {
    token: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidateTokenResponse {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<domain::Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// Whether an access token is valid now, and whose it is (for other services).
#[utoipa::path(post, path = "/api/v1/users/validate-token", tag = "accounts", request_body = ValidateTokenRequest,
    security(()), responses((status = 200, body = ValidateTokenResponse), Problems))]
pub async fn validate_token(
    State(keys): State<Arc<JwtKeys>>,
    ApiJson(request): ApiJson<ValidateTokenRequest>,
) -> Json<ValidateTokenResponse> {
    let response = match keys.verify(&request.token) {
        Ok((user, claims)) => ValidateTokenResponse {
            valid: true,
            user_id: Some(user.get()),
            role: Some(claims.role),
            expires_at: Some(claims.exp),
            reason: None,
        },
        Err(error) => ValidateTokenResponse {
            valid: false,
            user_id: None,
            role: None,
            expires_at: None,
            reason: Some(match error {
                TokenError::Expired => "EXPIRED",
                TokenError::Invalid(_) => "INVALID",
            }),
        },
    };
    Json(response)
}
