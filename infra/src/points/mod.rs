//! The points ledger, balances and lots. Every change is one transaction: the balance row (guarded so it
//! never goes below zero, and CHECKed by the schema as well), a signed ledger entry, the lots it makes or
//! takes from, and an outbox event.

pub mod cache;
pub mod expiry;
pub mod history;
pub mod ledger;
pub mod lots;
pub mod notices;
