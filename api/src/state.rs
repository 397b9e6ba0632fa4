use crate::auth::JwtKeys;
use axum::extract::FromRef;
use infra::{cache::Redis, kafka::Kafka};
use sqlx::PgPool;
use std::sync::Arc;

/// What handlers share. Every field is a cheap, cloneable handle.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub redis: Redis,
    pub kafka: Kafka,
    pub jwt: Arc<JwtKeys>,
}
