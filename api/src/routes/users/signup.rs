use super::profile::ProfileView;
use crate::openapi::Problems;
use crate::{
    http::{ApiError, ApiJson, ApiResult, ErrorCode},
    AppState,
};
use axum::{extract::State, http::StatusCode, Json};
use domain::{account::new_account, Role};
use infra::accounts::users;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    email: String,
    password: String,
    name: String,
}

/// Creates a user account (role USER). Every invalid field is named in the 422.
#[utoipa::path(post, path = "/api/v1/users/signup", tag = "accounts", request_body = SignupBody, security(()),
    responses((status = 201, body = ProfileView), Problems))]
#[tracing::instrument(skip_all)]
pub async fn signup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignupBody>,
) -> ApiResult<(StatusCode, Json<ProfileView>)> {
    let admission = state.hasher.admit()?;
    let (email, name) = new_account(&body.email, &body.password, &body.name).map_err(ApiError::Invalid)?;
    let hash = admission.hash(body.password).await??;
    match users::create(&state.pool, &email, &name, &hash, Role::User).await? {
        Ok(profile) => {
            tracing::info!(user = profile.id, "account created");
            Ok((StatusCode::CREATED, Json(profile.into())))
        }
        Err(users::EmailTaken) => {
            Err(ApiError::new(ErrorCode::EmailTaken, "an account with this e-mail address exists"))
        }
    }
}
