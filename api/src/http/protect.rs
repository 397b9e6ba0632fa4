//! What keeps one overloaded part of the API from taking the rest down: a bulkhead per route group
//! (a concurrency cap with a bounded queue; beyond it 503 `OVERLOADED` at once) and rate limits (per
//! user on coupon issuance, per client IP on requests without a token; beyond them 429 `RATE_LIMITED`).
//! Both answer with `Retry-After`. `RESILIENCE_ENABLED=false` turns them off, to measure their cost.

use super::{client::client_ip, ApiError, ErrorCode};
use crate::{config::ResilienceArgs, AppState};
use axum::{
    extract::{ConnectInfo, Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::UserId;
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};
use infra::bulkhead::Bulkhead;
use std::{
    hash::Hash,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
};

/// How often the limiters forget the keys that are back to a full allowance (off the request path: a
/// rush of a hundred thousand users must not make requests scan the table).
const FORGET_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The route groups, each behind its own bulkhead.
#[derive(Clone)]
pub struct Bulkheads {
    pub issuance: Bulkhead,
    pub points: Bulkhead,
    pub shop: Bulkhead,
    pub accounts: Bulkhead,
}

impl Bulkheads {
    pub fn all(&self) -> [&Bulkhead; 4] {
        [&self.issuance, &self.points, &self.shop, &self.accounts]
    }
}

#[derive(Clone)]
pub struct Protection {
    pub enabled: bool,
    pub bulkheads: Bulkheads,
    issue: Arc<DefaultKeyedRateLimiter<i64>>,
    anonymous: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Protection {
    pub fn new(args: &ResilienceArgs) -> Self {
        let group = |name, (concurrency, queue): (u32, u32)| Bulkhead::new(name, concurrency as usize, queue as usize);
        let quota = |per_second: u32, burst: u32| {
            let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
            Quota::per_second(per_second).allow_burst(NonZeroU32::new(burst).unwrap_or(per_second))
        };
        Self {
            enabled: args.enabled,
            bulkheads: Bulkheads {
                issuance: group("issuance", args.issuance),
                points: group("points", args.points),
                shop: group("shop", args.shop),
                accounts: group("accounts", args.accounts),
            },
            issue: Arc::new(RateLimiter::keyed(quota(args.issue_per_second, args.issue_burst))),
            anonymous: Arc::new(RateLimiter::keyed(quota(args.anonymous_per_second, args.anonymous_burst))),
        }
    }

    /// Every [`FORGET_EVERY`], drops the limiters' idle keys; ends when the protection is dropped.
    pub fn forget_idle_keys(&self) -> tokio::task::JoinHandle<()> {
        let (issue, anonymous) = (Arc::downgrade(&self.issue), Arc::downgrade(&self.anonymous));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FORGET_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let (Some(issue), Some(anonymous)) = (issue.upgrade(), anonymous.upgrade()) else { return };
                issue.retain_recent();
                issue.shrink_to_fit();
                anonymous.retain_recent();
                anonymous.shrink_to_fit();
            }
        })
    }

    /// A user's coupon issue request, counted against their allowance.
    pub fn admit_issue(&self, user: UserId) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        check(&self.issue, &user.get(), "coupon issue requests")
    }
}

fn check<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K, what: &str) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        metrics::counter!("rate_limited_total", "limit" => what.to_owned()).increment(1);
        ApiError::retry_after(ErrorCode::RateLimited, format!("too many {what}; slow down"), wait.as_secs() + 1)
    })
}

/// The bulkhead of one route group around its handlers.
pub async fn bulkhead(State(bulkhead): State<Option<Bulkhead>>, request: Request, next: Next) -> Response {
    let Some(bulkhead) = bulkhead else { return next.run(request).await };
    let place = match bulkhead.admit() {
        Ok(place) => place,
        Err(full) => return overloaded(full.0).into_response(),
    };
    match place.turn().await {
        Ok(_turn) => next.run(request).await,
        Err(full) => overloaded(full.0).into_response(),
    }
}

fn overloaded(group: &str) -> ApiError {
    ApiError::retry_after(ErrorCode::Overloaded, format!("the {group} routes are at capacity; retry shortly"), 1)
}

/// Requests without a token count against their client IP's allowance (sign-up, login, refresh, the
/// catalogue); requests with one are limited where it matters, per user.
pub async fn limit_anonymous(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let protection = &state.protection;
    if protection.enabled && !request.headers().contains_key(AUTHORIZATION) && !is_ops(request.uri().path()) {
        if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
            let ip = client_ip(peer.ip(), request.headers(), &state.trusted_proxies);
            if let Err(limited) = check(&protection.anonymous, &ip, "requests from this address") {
                return limited.into_response();
            }
        }
    }
    next.run(request).await
}

/// Health and metrics: probes and scrapers are not clients.
fn is_ops(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics"
}
