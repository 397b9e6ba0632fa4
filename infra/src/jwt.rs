//! HS256 bearer tokens: the API verifies them, operators mint them (`settle-batch issue-token`).

use domain::{Role, UserId};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The shortest secret we accept: HS256 is only as strong as its key.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id, as text per RFC 7519.
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// Signing and verification keys derived from one secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn from_secret(secret: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (got {})",
            secret.len()
        );
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    /// A token for `user` valid for `ttl` from now.
    pub fn issue(&self, user: UserId, role: Role, ttl: Duration) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs())?;
        let claims = Claims { sub: user.to_string(), role, iat: now, exp: now + ttl };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    pub fn verify(&self, token: &str) -> Result<(UserId, Claims), TokenError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|error| {
                match error.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(error.to_string()),
                }
            })?;
        let user = data
            .claims
            .sub
            .parse::<i64>()
            .ok()
            .and_then(|raw| UserId::parse(raw).ok())
            .ok_or_else(|| TokenError::Invalid("subject is not a user id".to_owned()))?;
        Ok((user, data.claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn user(id: i64) -> UserId {
        UserId::parse(id).expect("positive id")
    }

    #[test]
    fn an_issued_token_verifies_to_its_user_and_role() {
        let keys = JwtKeys::from_secret(SECRET).expect("long secret");
        let token = keys.issue(user(42), Role::Admin, Duration::from_secs(60)).expect("issue");
        let (verified, claims) = keys.verify(&token).expect("valid");
        assert_eq!(verified, user(42));
        assert_eq!(claims.role, Role::Admin);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_invalid() {
        let ours = JwtKeys::from_secret(SECRET).expect("long secret");
        let theirs = JwtKeys::from_secret("another-secret-that-is-long-enough!!").expect("long secret");
        let token = theirs.issue(user(1), Role::User, Duration::from_secs(60)).expect("issue");
        assert!(matches!(ours.verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn an_expired_token_is_reported_as_expired() {
        let keys = JwtKeys::from_secret(SECRET).expect("long secret");
        let now = chrono::Utc::now().timestamp();
        let claims = Claims { sub: "1".into(), role: Role::User, iat: now - 120, exp: now - 60 };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).expect("encode");
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtKeys::from_secret("short").is_err());
    }
}
