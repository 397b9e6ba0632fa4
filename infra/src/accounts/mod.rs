//! Accounts: users with argon2id password hashes, refresh-token families, and the login history.

pub mod console;
pub mod hashing;
pub mod history;
pub mod refresh;
pub mod throttle;
pub mod users;
