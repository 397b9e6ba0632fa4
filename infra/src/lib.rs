//! The adapters every settle binary shares. Binaries depend on this crate; it depends only on `domain`.

pub mod accounts;
pub mod binary;
pub mod breaker;
pub mod bulkhead;
pub mod config;
pub mod coupons;
pub mod db;
pub mod failover;
pub mod idempotency;
pub mod jobs;
pub mod jwt;
pub mod kafka;
pub mod metrics;
pub mod ops;
pub mod outbox;
pub mod payments;
pub mod points;
pub mod redis_client;
pub mod redis_sentinel;
pub mod secret;
pub mod session_lock;
pub mod settlement;
pub mod shop;
pub mod shutdown;
pub mod telemetry;
