//! The operations console: server-rendered pages under `/console` for admins, signed in with their
//! account (a session cookie, never the API's bearer token), every form carrying the session's CSRF
//! token, every page under a strict Content-Security-Policy and readable without JavaScript. Served by
//! settle-api itself: it reads the same database and calls the same functions as the API and the CLI,
//! with no second deployment to keep in step.

mod actions;
mod assets;
mod jobs;
mod lag;
mod live;
mod lookup;
mod now;
mod page;
mod session;
mod settlement;
mod workers;

use crate::AppState;
use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::{from_fn, Next},
    response::{Redirect, Response},
    routing::{get, post},
    Router,
};
use session::ConsoleAdmin;

/// What the console keeps between requests: the live readings that every open page shares.
pub struct ConsoleState {
    lag: lag::ConsumerLag,
    now: live::SharedReading<std::sync::Arc<now::Reading>>,
}

impl ConsoleState {
    pub fn new(kafka: &infra::kafka::Kafka) -> anyhow::Result<Self> {
        Ok(Self { lag: lag::ConsumerLag::new(kafka)?, now: live::SharedReading::new() })
    }
}

/// Scripts, styles and images come from the console itself, never inline or from elsewhere; no page may
/// be framed, and forms post only back to it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/console", get(home))
        .route("/console/login", get(session::sign_in_page).post(session::sign_in))
        .route("/console/logout", post(session::sign_out))
        .route("/console/jobs", get(jobs::jobs_page))
        .route("/console/jobs/stream", get(jobs::jobs_stream))
        .route("/console/jobs/{id}/stop", get(jobs::confirm_stop).post(jobs::stop))
        .route("/console/jobs/{id}/restart", get(jobs::confirm_restart).post(jobs::restart))
        .route("/console/schedule/{name}/run", get(jobs::confirm_run).post(jobs::run_now))
        .route("/console/now", get(now::now_page))
        .route("/console/now/stream", get(now::now_stream))
        .route("/console/workers", get(workers::workers_page))
        .route("/console/workers/stream", get(workers::workers_stream))
        .route("/console/workers/outbox/{id}/redrive", get(workers::confirm_redrive).post(workers::redrive))
        .route("/console/lookup", get(lookup::lookup_page))
        .route("/console/settlement", get(settlement::days_page))
        .route("/console/settlement/stream", get(settlement::days_stream))
        .route("/console/settlement/{date}", get(settlement::day_page))
        .route("/console/settlement/{date}/lines.csv", get(settlement::lines_csv))
        .route("/console/assets/{name}", get(assets::asset))
        .layer(from_fn(security_headers))
        .with_state(state)
}

async fn home(_admin: ConsoleAdmin) -> Redirect {
    Redirect::to("/console/now")
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages show live state and a signed-in admin's data: never from a cache.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}
