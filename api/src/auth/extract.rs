use super::{JwtKeys, TokenError};
use crate::http::ApiError;
use crate::http::ErrorCode;
use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header::AUTHORIZATION, request::Parts},
};
use domain::{Role, UserId};
use std::sync::Arc;

/// The signed-in caller, taken from a valid `Authorization: Bearer` token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: UserId,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The one ownership rule: the caller acts on their own data, an admin on anyone's. Another user's data
    /// answers `unseen` (the resource's 404), as if it did not exist: no route tells a stranger what exists.
    pub fn ensure_owner(&self, owner: UserId, unseen: impl FnOnce() -> ApiError) -> Result<(), ApiError> {
        if self.user_id == owner || self.is_admin() {
            Ok(())
        } else {
            Err(unseen())
        }
    }
}

/// A caller with the admin role.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let keys = Arc::<JwtKeys>::from_ref(state);
        match keys.verify(token) {
            Ok((user_id, claims)) => Ok(AuthUser { user_id, role: claims.role }),
            Err(TokenError::Expired) => Err(ApiError::new(ErrorCode::TokenExpired, "the bearer token has expired")),
            Err(TokenError::Invalid(_)) => Err(ApiError::new(ErrorCode::InvalidToken, "the bearer token is not valid")),
        }
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(AdminUser(user))
        } else {
            Err(ApiError::new(ErrorCode::Forbidden, "this action needs the admin role"))
        }
    }
}

/// The caller when a bearer token is sent (a bad one is refused like anywhere else), `None` without one:
/// for routes anyone may call that show admins more.
#[derive(Debug, Clone, Copy)]
pub struct MaybeUser(pub Option<AuthUser>);

impl MaybeUser {
    pub fn is_admin(&self) -> bool {
        self.0.is_some_and(|user| user.is_admin())
    }
}

impl<S> FromRequestParts<S> for MaybeUser
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Ok(MaybeUser(None));
        }
        AuthUser::from_request_parts(parts, state).await.map(|user| MaybeUser(Some(user)))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::new(ErrorCode::MissingToken, "send Authorization: Bearer <token>"))?;
    let value =
        header.to_str().map_err(|_| ApiError::new(ErrorCode::InvalidToken, "the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(ApiError::new(ErrorCode::InvalidToken, "the Authorization header is not a bearer token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Request, StatusCode};
    use std::time::Duration;

    fn keys() -> Arc<JwtKeys> {
        Arc::new(JwtKeys::from_secret("unit-test-secret-of-at-least-32-bytes").expect("secret"))
    }

    fn parts_with(authorization: Option<String>) -> Parts {
        let mut request = Request::builder();
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        request.body(()).expect("request").into_parts().0
    }

    fn bearer(keys: &JwtKeys, role: Role) -> Option<String> {
        let token = keys.issue(UserId::parse(9).expect("id"), role, Duration::from_secs(60)).expect("token");
        Some(format!("Bearer {token}"))
    }

    #[tokio::test]
    async fn admin_routes_refuse_a_user_token_with_403() {
        let keys = keys();
        let mut parts = parts_with(bearer(&keys, Role::User));
        let error = AdminUser::from_request_parts(&mut parts, &keys).await.expect_err("users are not admins");
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn admin_routes_accept_an_admin_token() {
        let keys = keys();
        let mut parts = parts_with(bearer(&keys, Role::Admin));
        let AdminUser(admin) = AdminUser::from_request_parts(&mut parts, &keys).await.expect("admin");
        assert_eq!(admin.user_id.get(), 9);
    }

    #[tokio::test]
    async fn a_missing_header_is_401() {
        let keys = keys();
        let error = AuthUser::from_request_parts(&mut parts_with(None), &keys).await.expect_err("no token");
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn users_access_only_their_own_data_and_admins_anyone_s() {
        let user = AuthUser { user_id: UserId::parse(1).expect("id"), role: Role::User };
        let admin = AuthUser { user_id: UserId::parse(2).expect("id"), role: Role::Admin };
        let other = UserId::parse(3).expect("id");
        let unseen = || ApiError::new(ErrorCode::UserNotFound, "no such user");
        assert!(user.ensure_owner(user.user_id, unseen).is_ok());
        assert_eq!(user.ensure_owner(other, unseen).expect_err("a stranger").status(), StatusCode::NOT_FOUND);
        assert!(admin.ensure_owner(other, unseen).is_ok());
    }
}
