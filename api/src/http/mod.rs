//! HTTP plumbing shared by every route: errors, extractors, middleware.

pub mod error;
pub mod extract;
pub mod middleware;

pub use error::{ApiError, ApiResult};
pub use extract::{ApiJson, ApiPath, ApiQuery};
