//! HTTP plumbing shared by every route: errors, extractors, middleware.

pub mod client;
pub mod codes;
mod complete;
pub mod error;
pub mod extract;
pub mod idempotent;
pub mod middleware;
pub mod protect;

pub use client::Client;
pub use codes::ErrorCode;
pub use complete::to_completion;
pub use error::{json_response, ApiError, ApiResult};
pub use extract::{ApiJson, ApiPath, ApiQuery};
