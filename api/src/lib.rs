//! settle-api as a library: `build_state` connects to the services, `router` assembles the routes and
//! middleware, and `serve` runs until its shutdown token is cancelled. `main.rs` and the tests use the
//! same three calls.

pub mod auth;
pub mod config;
mod console;
pub mod http;
pub mod openapi;
pub(crate) mod routes;
mod state;

pub use state::{AppState, Sessions, Shared};

use crate::http::ErrorCode;
use axum::{
    extract::DefaultBodyLimit,
    middleware::{from_fn, from_fn_with_state},
    Router,
};
use config::{ApiConfig, HttpLimits, RouteGroup};
use http::{middleware, ApiError};
use infra::{
    accounts::{hashing::Hasher, throttle::Throttle},
    coupons::CouponStock,
    kafka::{Kafka, Topic},
    ops::Readiness,
    redis_client::Redis,
};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connects to PostgreSQL, Redis and Kafka with the settings in `config`.
pub async fn build_state(config: &ApiConfig) -> anyhow::Result<AppState> {
    let pool = infra::db::connect(&config.postgres).await?;
    let protected = config.resilience.enabled;
    let redis = Redis::connect(&config.redis).await?.with_breaker(&config.breakers, protected);
    let broker = infra::breaker::Breaker::new("kafka", &config.breakers);
    let broker = if protected { broker } else { broker.disabled() };
    let kafka = Kafka::new(config.kafka.clone());
    // Best effort: with the broker down the API still starts, and readiness says why it cannot queue.
    if let Err(error) = kafka.ensure_topics(&[Topic::CouponIssueRequested]).await {
        tracing::warn!(error = ?error, "could not make sure the issue-request topic exists");
    }
    let producer = infra::kafka::RenewableProducer::new(kafka.clone())?;
    let console = console::ConsoleState::new(&kafka)?;
    let coupons = CouponStock::new(redis.clone());
    let balances = infra::points::cache::BalanceCache::new(redis.clone());
    let stock_gate = infra::shop::StockGate::new(redis.clone(), pool.clone());
    let jwt = Arc::new(config.jwt.keys()?);
    let accounts = &config.accounts;
    let hasher = Hasher::new(accounts.hash_concurrency(), accounts.hash_queue as usize)?;
    let sessions = Sessions {
        access_ttl: accounts.access_ttl(),
        refresh_ttl: accounts.refresh_ttl(),
        console_ttl: accounts.console_ttl(),
    };
    let throttle = Throttle::new(redis.clone(), accounts.throttle_limits());
    let trusted_proxies = accounts.trusted_proxies.clone();
    let payments_breaker = infra::breaker::Breaker::new("payments", &config.breakers);
    let payments_breaker = if protected { payments_breaker } else { payments_breaker.disabled() };
    let payments = infra::payments::TossPayments::new(&config.payments, payments_breaker)?;
    let protection = http::protect::Protection::new(&config.resilience);
    protection.forget_idle_keys();
    infra::failover::rebuild_after_each_failover(redis.clone(), pool.clone());
    Ok(AppState::new(Shared {
        pool,
        redis,
        kafka,
        producer,
        broker,
        coupons,
        balances,
        stock_gate,
        jwt,
        hasher,
        sessions,
        throttle,
        trusted_proxies,
        protection,
        orders: config.orders.clone(),
        payments,
        console,
        route_groups: config.route_groups.clone(),
    }))
}

/// Every route plus the middleware stack, outermost first: trace id, deadline, body limit.
pub fn router(state: AppState, limits: HttpLimits) -> anyhow::Result<Router> {
    let readiness = Readiness::new()
        .with_postgres(state.pool.clone())
        .with_redis(state.redis.clone())
        .with_kafka(state.kafka.probe()?)
        .with_breakers(vec![state.redis.breaker().clone(), state.broker.clone()]);
    let ops = infra::ops::ops_router(readiness, infra::metrics::install()?);
    let anonymous_limit = from_fn_with_state(state.clone(), http::protect::limit_anonymous);
    let (routes, document) = openapi::split(routes::router(&state.protection, &state.route_groups));
    let console =
        if state.route_groups.contains(&RouteGroup::Console) { console::router(state.clone()) } else { Router::new() };
    Ok(routes
        .with_state(state)
        .merge(console)
        .merge(ops)
        .merge(openapi::docs_router(document))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(anonymous_limit)
        .layer(from_fn_with_state(limits.request_timeout, middleware::enforce_deadline))
        .layer(from_fn(middleware::trace_requests)))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, router: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    // With the peer address on every request: a login's client IP, for throttling and the history.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}

async fn unknown_route() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take that method")
}
