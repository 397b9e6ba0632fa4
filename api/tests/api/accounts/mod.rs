//! Accounts end to end: sign-up, login, rotating refresh tokens, profile, password change, history.

mod login;
mod refresh;
mod signup;
pub mod support;
mod throttle;
