use crate::auth::JwtKeys;
use axum::extract::FromRef;
use infra::{
    accounts::{hashing::Hasher, throttle::Throttle},
    coupons::CouponStock,
    kafka::Kafka,
    points::cache::BalanceCache,
    redis_client::Redis,
    shop::StockGate,
};
use sqlx::PgPool;
use std::{ops::Deref, sync::Arc};

/// What handlers share, behind one `Arc`: axum clones the state for every request (and every `State`
/// extractor), and one reference count is cheaper than a dozen that the cores take turns owning.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub pool: PgPool,
    pub redis: Redis,
    pub kafka: Kafka,
    /// One idempotent producer for the whole process: librdkafka batches across requests.
    pub producer: infra::kafka::RenewableProducer,
    /// The breaker around producing to the broker (V3 issuance).
    pub broker: infra::breaker::Breaker,
    pub coupons: CouponStock,
    pub balances: BalanceCache,
    pub stock_gate: StockGate,
    pub protection: crate::http::protect::Protection,
    pub jwt: Arc<JwtKeys>,
    pub hasher: Hasher,
    pub sessions: Sessions,
    pub throttle: Throttle,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The time rules of orders: payment window, return window.
    pub orders: infra::config::OrderArgs,
    /// The payment provider (behind its own breaker).
    pub payments: infra::payments::TossPayments,
    /// The route groups this process serves (`API_ROUTE_GROUPS`).
    pub route_groups: Vec<crate::config::RouteGroup>,
    /// The operations console's shared live readings.
    pub console: crate::console::ConsoleState,
}

/// How long the tokens a login or refresh hands out live.
#[derive(Debug, Clone, Copy)]
pub struct Sessions {
    pub access_ttl: std::time::Duration,
    pub refresh_ttl: std::time::Duration,
    pub console_ttl: std::time::Duration,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}
