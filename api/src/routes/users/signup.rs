use super::profile::ProfileView;
use crate::{
    http::{ApiError, ApiJson, ApiResult, ErrorCode},
    AppState,
};
use axum::{extract::State, http::StatusCode, Json};
use domain::{
    account::{check_name, check_password, Email},
    FieldErrors, Role,
};
use infra::accounts::users;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    email: String,
    password: String,
    name: String,
}

/// The account's e-mail address and name, or every field error of the body (the password's rule named).
pub fn validate(email: &str, password: &str, name: &str) -> Result<(Email, String), ApiError> {
    let mut errors = FieldErrors::default();
    let email = Email::parse(email).map_err(|message| errors.add("email", message)).ok();
    let name = check_name(name, &mut errors);
    if let (Some(email), Some(name)) = (&email, &name) {
        if let Err(rule) = check_password(password, email, name) {
            errors.add("password", rule.message());
        }
    }
    let valid = errors.into_result(|| email.zip(name)).map_err(ApiError::Invalid)?;
    valid.ok_or_else(|| anyhow::anyhow!("a missing value without its field error").into())
}

#[tracing::instrument(skip_all)]
pub async fn signup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignupBody>,
) -> ApiResult<(StatusCode, Json<ProfileView>)> {
    let (email, name) = validate(&body.email, &body.password, &body.name)?;
    let hash = state.hasher.hash(body.password).await??;
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
