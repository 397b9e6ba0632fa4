//! Accounts: sign-up, sessions (login, refresh, logout), the caller's profile and password, the login
//! history, and token validation.

mod history;
mod profile;
mod session;
mod signup;
mod validate;

use crate::AppState;
use axum::{
    routing::{get, post},
    Router,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users/signup", post(signup::signup))
        .route("/api/v1/users/login", post(session::login))
        .route("/api/v1/users/refresh-token", post(session::refresh))
        .route("/api/v1/users/logout", post(session::logout))
        .route("/api/v1/users/validate-token", post(validate::validate_token))
        .route("/api/v1/users/me", get(profile::me).put(profile::update))
        .route("/api/v1/users/me/password", post(profile::change_password))
        .route("/api/v1/users/me/login-history", get(history::page))
}
