//! Sessions: a login hands out a short-lived access token (the JWT every route checks) and an opaque
//! refresh token in a new family; a refresh uses the refresh token up and hands out the next pair; a
//! logout revokes the family.

use crate::openapi::Problems;
use crate::{
    http::{ApiError, ApiJson, ApiResult, Client, ErrorCode},
    AppState,
};
use axum::{extract::State, http::StatusCode, Json};
use domain::{account::Email, Role, UserId};
use infra::accounts::{
    history::{self, Outcome},
    refresh::{self, Refused},
    users,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "email": "ana.kim@example.com", "password": "quiet-harbor-lantern-42" }))]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    access_token: String,
    refresh_token: String,
    /// Seconds the access token is valid for.
    expires_in: u64,
    token_type: &'static str,
}

pub(crate) fn invalid_credentials() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "the e-mail address or the password is wrong")
}

/// A wrong password and an unknown address answer the same, after the same work (a dummy hash is
/// verified for an unknown address).
#[utoipa::path(post, path = "/api/v1/users/login", tag = "accounts", request_body = LoginBody, security(()),
    responses((status = 200, body = TokenPair), Problems))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<TokenPair>> {
    let (user, account) = verified_account(&state, &client, &body.email, body.password).await?;
    let ttl = state.sessions.refresh_ttl;
    let Some(refresh_token) = refresh::start_family(&state.pool, user, &account.password_hash, ttl).await? else {
        tracing::info!(user = %user, "login refused: the password changed while it was checked");
        return Err(invalid_credentials());
    };
    tracing::info!(user = %user, "logged in");
    Ok(Json(pair(&state, user, account.role, refresh_token)?))
}

/// The account `email` and `password` sign in to, as every sign-in checks them (the API's and the
/// console's): throttled, verified on the hashing pool, recorded in the account's history.
pub(crate) async fn verified_account(
    state: &AppState,
    client: &Client,
    email: &str,
    password: String,
) -> ApiResult<(UserId, users::Credentials)> {
    // A place in the hashing pool first: when it is full the answer costs no database or Redis work.
    let admission = state.hasher.admit()?;
    let account = match Email::parse(email) {
        Ok(email) => users::credentials(&state.pool, &email).await?,
        Err(_) => None,
    };
    let account_id = account.as_ref().map(|account| account.id);
    throttled(state, account_id, client).await?;
    let stored_hash = account.as_ref().map(|account| account.password_hash.clone());
    let matched = admission.verify(password, stored_hash).await?;
    let Some(account) = account else { return Err(invalid_credentials()) };
    let user = UserId::parse(account.id).map_err(anyhow::Error::from)?;
    let outcome = if matched { Outcome::Ok } else { Outcome::WrongPassword };
    history::record(&state.pool, user, outcome, client.ip.as_deref(), client.user_agent.as_deref()).await?;
    if !matched {
        tracing::info!(user = %user, "login refused: wrong password");
        return Err(invalid_credentials());
    }
    state.throttle.succeeded(account.id, client.ip.as_deref()).await;
    Ok((user, account))
}

/// Counts a sign-in attempt (as failed until `Throttle::succeeded` says otherwise), or answers 429 with
/// Retry-After while the account or the client's address must wait after failed sign-ins; the refused
/// attempt is in the account's history. Nothing is hashed for it.
pub async fn throttled(state: &AppState, account: Option<i64>, client: &Client) -> ApiResult<()> {
    let Some(wait) = state.throttle.attempt(account, client.ip.as_deref()).await else { return Ok(()) };
    if let Some(user) = account.and_then(|id| UserId::parse(id).ok()) {
        let (ip, agent) = (client.ip.as_deref(), client.user_agent.as_deref());
        history::record(&state.pool, user, Outcome::Throttled, ip, agent).await?;
    }
    metrics::counter!("login_throttled_total").increment(1);
    let seconds = wait.as_millis().div_ceil(1_000) as u64;
    Err(ApiError::retry_after(ErrorCode::TooManyAttempts, "too many failed sign-ins; try again later", seconds))
}

fn pair(state: &AppState, user: UserId, role: Role, refresh_token: String) -> ApiResult<TokenPair> {
    let ttl = state.sessions.access_ttl;
    Ok(TokenPair {
        access_token: state.jwt.issue(user, role, ttl)?,
        refresh_token,
        expires_in: ttl.as_secs(),
        token_type: "Bearer",
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Rotates a refresh token: a new pair, the old token spent. A spent token presented again revokes its
/// whole family.
#[utoipa::path(post, path = "/api/v1/users/refresh-token", tag = "accounts", request_body = RefreshBody, security(()),
    responses((status = 200, body = TokenPair), Problems))]
#[tracing::instrument(skip_all)]
pub async fn refresh(State(state): State<AppState>, ApiJson(body): ApiJson<RefreshBody>) -> ApiResult<Json<TokenPair>> {
    match refresh::rotate(&state.pool, &body.refresh_token, state.sessions.refresh_ttl).await? {
        Ok(rotated) => Ok(Json(pair(&state, rotated.user, rotated.role, rotated.token)?)),
        Err(Refused::Invalid) => {
            Err(ApiError::new(ErrorCode::RefreshTokenInvalid, "the refresh token is unknown, expired or revoked"))
        }
        Err(Refused::Reused { family, user }) => {
            tracing::warn!(user, %family, "a used refresh token was presented again: its whole family is revoked");
            metrics::counter!("refresh_token_reuse_total").increment(1);
            Err(ApiError::new(ErrorCode::RefreshTokenReused, "this refresh token was used before; sign in again"))
        }
    }
}

/// Revokes the login the token belongs to; idempotent, and silent about unknown tokens.
#[utoipa::path(post, path = "/api/v1/users/logout", tag = "accounts", request_body = RefreshBody, security(()),
    responses((status = 204, description = "signed out (also for an unknown token)"), Problems))]
#[tracing::instrument(skip_all)]
pub async fn logout(State(state): State<AppState>, ApiJson(body): ApiJson<RefreshBody>) -> ApiResult<StatusCode> {
    refresh::revoke_family_of(&state.pool, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
