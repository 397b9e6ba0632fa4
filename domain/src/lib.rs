//! The shop's rules without I/O. Everything here is parsed, never trusted raw.

mod ids;
mod role;

pub use ids::{IdError, PolicyId, UserId};
pub use role::{Role, RoleError};
