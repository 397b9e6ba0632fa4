//! The caller's own profile and password.

use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{ApiError, ApiJson, ApiResult, Client, ErrorCode},
    AppState,
};
use axum::{extract::State, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use domain::{
    account::{check_name, check_password, Email},
    FieldErrors, Role,
};
use infra::accounts::{
    history::{self, Outcome},
    users::{self, Profile},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    id: i64,
    email: String,
    name: String,
    role: Role,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Profile> for ProfileView {
    fn from(profile: Profile) -> Self {
        Self {
            id: profile.id,
            email: profile.email,
            name: profile.name,
            role: profile.role,
            created_at: profile.created_at,
            updated_at: profile.updated_at,
        }
    }
}

fn gone() -> ApiError {
    ApiError::new(ErrorCode::UserNotFound, "the token's user does not exist")
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = ProfileView), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id))]
pub async fn me(caller: AuthUser, State(state): State<AppState>) -> ApiResult<Json<ProfileView>> {
    let profile = users::profile(&state.pool, caller.user_id).await?.ok_or_else(gone)?;
    Ok(Json(profile.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    #[schema(schema_with = domain::text_schema::<100>)]
    name: String,
}

/// Renames the caller.
#[utoipa::path(put, path = "/api/v1/users/me", operation_id = "update_profile", tag = "accounts", request_body = ProfileBody, security(("bearer" = [])),
    responses((status = 200, body = ProfileView), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id))]
pub async fn update(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ProfileBody>,
) -> ApiResult<Json<ProfileView>> {
    let mut errors = FieldErrors::default();
    let name = check_name(&body.name, &mut errors);
    let name = errors.into_result(|| name).map_err(ApiError::Invalid)?.ok_or_else(gone)?;
    let profile = users::rename(&state.pool, caller.user_id, &name).await?.ok_or_else(gone)?;
    Ok(Json(profile.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    /// The sign-up rules: 8 to 128 characters, strong enough, not built from the address or the name.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// Checks the current password (a wrong one counts as a failed login), stores the new one, and revokes
/// every refresh family of the user; access tokens already out stay valid until they expire.
#[utoipa::path(post, path = "/api/v1/users/me/password", tag = "accounts", request_body = PasswordBody,
    security(("bearer" = [])), responses((status = 204, description = "changed; every refresh token revoked"), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id))]
pub async fn change_password(
    caller: AuthUser,
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    let (stored, email, name) = users::password_of(&state.pool, caller.user_id).await?.ok_or_else(gone)?;
    super::session::throttled(&state, Some(caller.user_id.get()), &client).await?;
    let (ip, agent) = (client.ip.as_deref(), client.user_agent.as_deref());
    if !state.hasher.verify(body.current_password.clone(), Some(stored.clone())).await? {
        history::record(&state.pool, caller.user_id, Outcome::WrongPassword, ip, agent).await?;
        return Err(wrong_current_password());
    }
    state.throttle.succeeded(caller.user_id.get(), ip).await;
    let email = Email::parse(&email).map_err(|message| anyhow::anyhow!("stored e-mail address: {message}"))?;
    let mut errors = FieldErrors::default();
    if body.new_password == body.current_password {
        errors.add("newPassword", "must differ from the current password");
    } else if let Err(rule) = check_password(&body.new_password, &email, &name) {
        errors.add("newPassword", rule.message());
    }
    errors.into_result(|| ()).map_err(ApiError::Invalid)?;
    let hash = state.hasher.hash(body.new_password).await??;
    let Some(revoked) = users::change_password(&state.pool, caller.user_id, &stored, &hash).await? else {
        return Err(wrong_current_password());
    };
    tracing::info!(revoked_logins = revoked, "password changed; every refresh token of the user revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Also the answer when the password changed between reading it and storing the new one.
fn wrong_current_password() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "the current password is wrong")
}
