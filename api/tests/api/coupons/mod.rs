//! Coupon issuance end to end: the API on real Redis and Kafka, the issuance worker in-process.

mod abandoned;
mod policies;
mod requests;
mod rush;
mod settlement;
pub mod support;
mod unknown_outcome;
mod usage;
