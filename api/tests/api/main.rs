//! settle-api against real PostgreSQL, Redis and Kafka: one test binary, one module per area.

mod accounts;
mod auth;
mod authorization;
mod breakers;
mod console;
mod coupons;
mod errors;
mod failover;
mod health;
mod helpers;
mod openapi;
mod points;
mod resilience;
mod restarts;
mod route_groups;
mod shop;
mod shutdown;
mod trace_logs;
