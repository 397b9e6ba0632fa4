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
#[schema(example = json!({ "email": "ana.kim@example.com", "password": "quiet-harbor-lantern-42", "name": "Ana Kim" }))]
pub struct SignupBody {
    /// Trimmed and lower-cased: one account per address whatever its case.
    #[schema(format = "email", max_length = 254)]
    email: String,
    /// 8 to 128 characters, strong enough (zxcvbn score 3 or more) and not built from the e-mail
    /// address or the name; no composition rules.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    #[schema(schema_with = domain::text_schema::<100>)]
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
