//! Bearer-token authentication. Tokens are HS256 JWTs (see `infra::jwt`) whose claims name the user and
//! their role; handlers ask for [`AuthUser`] (any signed-in user) or [`AdminUser`] (admin role) and
//! never read the acting user from a request body.

mod extract;

pub use extract::{AdminUser, AuthUser, MaybeUser};
pub use infra::jwt::{Claims, JwtKeys, TokenError};
