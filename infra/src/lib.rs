//! The adapters every settle binary shares. Binaries depend on this crate; it depends only on `domain`.

pub mod binary;
pub mod cache;
pub mod config;
pub mod coupons;
pub mod db;
pub mod health;
pub mod idempotency;
pub mod jwt;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod points;
pub mod session_lock;
pub mod shutdown;
pub mod telemetry;
