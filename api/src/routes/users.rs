//! Users: the caller's own profile and token validation. Sign-up, login and refresh build on these.

use crate::http::ErrorCode;
use crate::{
    auth::{AuthUser, JwtKeys, TokenError},
    http::{ApiError, ApiJson, ApiResult},
    AppState,
};
use axum::{
    extract::State,
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use domain::Role;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/users/me", get(me)).route("/api/v1/users/validate-token", post(validate_token))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    id: i64,
    email: String,
    name: String,
    role: Role,
    created_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
async fn me(caller: AuthUser, State(pool): State<PgPool>) -> ApiResult<Json<Profile>> {
    sqlx::query_as!(
        Profile,
        r#"SELECT id, email, name, role AS "role: Role", created_at FROM users WHERE id = $1"#,
        caller.user_id.get()
    )
    .fetch_optional(&pool)
    .await?
    .map(Json)
    .ok_or_else(|| ApiError::new(ErrorCode::UserNotFound, "the token's user does not exist"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateTokenRequest {
    token: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidateTokenResponse {
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

async fn validate_token(
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
