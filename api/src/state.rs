use crate::auth::JwtKeys;
use axum::extract::FromRef;
use infra::{cache::Redis, coupons::CouponStock, kafka::Kafka, points::cache::BalanceCache};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use std::sync::Arc;

/// What handlers share. Every field is a cheap, cloneable handle.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: Redis,
    pub kafka: Kafka,
    /// One idempotent producer for the whole process: librdkafka batches across requests.
    pub producer: FutureProducer,
    pub coupons: CouponStock,
    pub balances: BalanceCache,
    pub jwt: Arc<JwtKeys>,
}
