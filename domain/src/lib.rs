//! The shop's rules without I/O. Everything here is parsed, never trusted raw.

pub mod account;
pub mod coupon;
mod ids;
pub mod points;
mod role;
pub mod shop;
mod validation;

pub use ids::{CouponId, IdError, OptionId, OrderId, PointId, PolicyId, ProductId, UserId};
pub use role::{Role, RoleError};
pub use validation::{FieldError, FieldErrors};
