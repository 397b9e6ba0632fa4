//! Coupon issuance adapters: policy and coupon rows in PostgreSQL (the final guard), and the derived
//! Redis state that lets the API decide in one round trip.

pub mod issuance;
pub mod repo;
mod stock;
pub mod usage;

pub use stock::{CouponStock, DriftSnapshot, Reservation, Settlement};
