//! The shop end to end: catalogue, carts and orders against real PostgreSQL and Redis.

mod carts;
mod catalogue;
mod concurrency;
mod crash;
mod gate;
mod input_readings;
mod late_approvals;
mod lifecycle;
mod orders;
mod payments;
mod races;
mod refunds;
mod returns;
pub mod support;
mod virtual_accounts;
