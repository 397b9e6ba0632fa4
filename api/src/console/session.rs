//! Signing in and out of the console. The sign-in form is protected against cross-site posts by a token
//! in both a cookie and the form (no session exists yet); once signed in, every form carries the
//! session's own CSRF token. Cookies are HttpOnly, SameSite=Strict, scoped to `/console`, and Secure when
//! the request came over TLS (a proxy's `X-Forwarded-Proto: https`).

use super::page::{page, render, ConsoleError};
use crate::{
    http::{ApiError, Client},
    routes::users::session::verified_account,
    AppState,
};
use axum::{
    extract::{FromRequestParts, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{AppendHeaders, IntoResponse, Redirect, Response},
    Form,
};
use infra::{
    accounts::console::{self, ConsoleSession},
    secret::same_secret,
};
use maud::{html, Markup};
use serde::Deserialize;

const SESSION_COOKIE: &str = "settle_console";
const SIGN_IN_COOKIE: &str = "settle_console_signin";
/// The sign-in form is good for this long.
const SIGN_IN_FORM_SECS: u64 = 600;

/// A signed-in admin: a live console session whose user is an admin now.
#[derive(Debug, Clone)]
pub struct ConsoleAdmin {
    pub session: ConsoleSession,
    token: String,
}

impl ConsoleAdmin {
    /// Refuses a form that does not carry the session's CSRF token.
    pub fn check_csrf(&self, given: &str) -> Result<(), ConsoleError> {
        if same_secret(&self.session.csrf, given) {
            Ok(())
        } else {
            Err(stale_form())
        }
    }
}

impl FromRequestParts<AppState> for ConsoleAdmin {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(ConsoleError::SignIn)?;
        let session = console::find(&state.pool, &token).await?.ok_or(ConsoleError::SignIn)?;
        Ok(ConsoleAdmin { session, token })
    }
}

pub(super) fn stale_form() -> ConsoleError {
    ConsoleError::refused(
        StatusCode::FORBIDDEN,
        "this form's security token is missing or stale: reload the page and try again",
    )
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value; `max_age` 0 removes the cookie.
fn set_cookie(headers: &HeaderMap, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let tls = headers.get("x-forwarded-proto").is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if tls { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).expect("cookie names and values are plain ASCII")
}

fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn sign_in_form(token: &str, email: &str, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem { p.error role="alert" { (problem) } }
        form.sign-in method="post" action="/console/login" {
            input type="hidden" name="csrf" value=(token);
            label { "E-mail" input type="email" name="email" value=(email) required autocomplete="username"; }
            label { "Password" input type="password" name="password" required autocomplete="current-password"; }
            button type="submit" { "Sign in" }
        }
    }
}

/// The sign-in page with a fresh form token; a signed-in admin goes straight to the console.
pub async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ConsoleError> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if console::find(&state.pool, &token).await?.is_some() {
            return Ok(Redirect::to("/console").into_response());
        }
    }
    Ok(sign_in_answer(&headers, StatusCode::OK, "", None))
}

fn sign_in_answer(headers: &HeaderMap, status: StatusCode, email: &str, problem: Option<&str>) -> Response {
    let token = random_token();
    let set = set_cookie(headers, SIGN_IN_COOKIE, &token, "/console/login", SIGN_IN_FORM_SECS);
    (status, [(header::SET_COOKIE, set)], render(page("Sign in", None, None, sign_in_form(&token, email, problem))))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Checks the credentials as the API's login does (throttled, recorded in the account's history) and
/// starts a console session for an admin; anyone else gets no session.
pub async fn sign_in(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&expected, &form.csrf) {
        return Err(stale_form());
    }
    let (user, account) = match verified_account(&state, &client, &form.email, form.password).await {
        Ok(verified) => verified,
        Err(ApiError::Internal(error)) => return Err(ConsoleError::Internal(error)),
        Err(refused) => {
            let detail = refused.problem().detail;
            return Ok(sign_in_answer(&headers, refused.status(), &form.email, Some(&detail)));
        }
    };
    let ttl = state.sessions.console_ttl;
    let Some(token) = console::start(&state.pool, user, &account.password_hash, ttl).await? else {
        tracing::info!(user = %user, "console sign-in refused: not an admin");
        let problem = "this account may not use the console";
        return Ok(sign_in_answer(&headers, StatusCode::FORBIDDEN, &form.email, Some(problem)));
    };
    tracing::info!(user = %user, "signed in to the console");
    let session = set_cookie(&headers, SESSION_COOKIE, &token, "/console", ttl.as_secs());
    let spent = set_cookie(&headers, SIGN_IN_COOKIE, "", "/console/login", 0);
    // Appended: two `Set-Cookie` headers, where an array of pairs would keep only the last.
    let cookies = AppendHeaders([(header::SET_COOKIE, session), (header::SET_COOKIE, spent)]);
    Ok((cookies, Redirect::to("/console")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Ends the session (its family is revoked) and removes the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    admin.check_csrf(&form.csrf)?;
    console::end(&state.pool, &admin.token).await?;
    tracing::info!(user = %admin.session.user, "signed out of the console");
    let gone = set_cookie(&headers, SESSION_COOKIE, "", "/console", 0);
    Ok(([(header::SET_COOKIE, gone)], Redirect::to("/console/login")).into_response())
}
