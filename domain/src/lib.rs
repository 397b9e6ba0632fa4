//! The shop's rules without I/O. Everything here is parsed, never trusted raw.

pub mod account;
pub mod coupon;
mod ids;
pub mod points;
mod role;
mod validation;

pub use ids::{CouponId, IdError, PointId, PolicyId, UserId};
pub use role::{Role, RoleError};
pub use validation::{FieldError, FieldErrors};
