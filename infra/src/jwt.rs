//! HS256 bearer tokens: the API issues them at login and verifies them, operators mint them
//! (`settle-batch issue-token`). Issuer and audience are set and checked, and only HS256 is accepted (a
//! token whose header names `none` or another algorithm is invalid).

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
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Who issues tokens and for whom: set in every token and checked on every verification.
pub const DEFAULT_ISSUER: &str = "settle";
pub const DEFAULT_AUDIENCE: &str = "settle-api";

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
    issuer: String,
    audience: String,
}

impl JwtKeys {
    /// Keys with the default issuer and audience.
    pub fn from_secret(secret: &str) -> anyhow::Result<Self> {
        Self::new(secret, DEFAULT_ISSUER, DEFAULT_AUDIENCE)
    }

    pub fn new(secret: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (got {})",
            secret.len()
        );
        // Validation::new(HS256) accepts that algorithm only.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A token for `user` valid for `ttl` from now.
    pub fn issue(&self, user: UserId, role: Role, ttl: Duration) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs())?;
        let claims = Claims {
            sub: user.to_string(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl,
        };
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
        let claims = Claims {
            sub: "1".into(),
            role: Role::User,
            iss: DEFAULT_ISSUER.into(),
            aud: DEFAULT_AUDIENCE.into(),
            iat: now - 120,
            exp: now - 60,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).expect("encode");
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn another_issuer_or_audience_another_algorithm_or_none_is_invalid() {
        let keys = JwtKeys::from_secret(SECRET).expect("long secret");
        for (issuer, audience) in [("someone-else", DEFAULT_AUDIENCE), (DEFAULT_ISSUER, "another-service")] {
            let theirs = JwtKeys::new(SECRET, issuer, audience).expect("keys");
            let token = theirs.issue(user(1), Role::Admin, Duration::from_secs(60)).expect("issue");
            assert!(matches!(keys.verify(&token), Err(TokenError::Invalid(_))), "{issuer} {audience}");
        }
        let genuine = keys.issue(user(1), Role::User, Duration::from_secs(60)).expect("issue");
        let (_, rest) = genuine.split_once('.').expect("a JWT");
        for header in
            [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"RS256","typ":"JWT"}"#, r#"{"alg":"HS512","typ":"JWT"}"#]
        {
            let forged = format!("{}.{rest}", base64url(header.as_bytes()));
            assert!(matches!(keys.verify(&forged), Err(TokenError::Invalid(_))), "{header}");
        }
        let (body, signature) = genuine.rsplit_once('.').expect("a JWT");
        let tampered = format!("{body}.{}", signature.chars().rev().collect::<String>());
        assert!(matches!(keys.verify(&tampered), Err(TokenError::Invalid(_))));
    }

    fn base64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(JwtKeys::from_secret("short").is_err());
    }
}
