//! Accounts: sign-up, sessions (login, refresh, logout), the caller's profile and password, the login
//! history, and token validation.

mod history;
mod profile;
pub(crate) mod session;
mod signup;
mod validate;

use crate::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup::signup))
        .routes(routes!(session::login))
        .routes(routes!(session::refresh))
        .routes(routes!(session::logout))
        .routes(routes!(validate::validate_token))
        .routes(routes!(profile::me, profile::update))
        .routes(routes!(profile::change_password))
        .routes(routes!(history::page))
}
