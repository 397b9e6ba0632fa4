//! The shop's rules without I/O. Everything here is parsed, never trusted raw.

pub mod account;
pub mod coupon;
mod ids;
pub mod points;
mod role;
pub mod settlement;
pub mod shop;
mod validation;
pub mod whole_number;

pub use ids::{CouponId, IdError, OptionId, OrderId, PointId, PolicyId, ProductId, UserId};
pub use role::{Role, RoleError};
#[cfg(feature = "openapi")]
pub use validation::{text_or_null_schema, text_schema};
pub use validation::{FieldError, FieldErrors, TEXT_PATTERN};
