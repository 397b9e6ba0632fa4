//! The adapters against the real services: every test proves a service is real, not mocked.

mod kafka;
mod lots;
mod postgres;
mod redis;
