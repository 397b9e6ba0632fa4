use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Who is acting. Admin routes demand `Admin`; everything else acts on the caller's own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}: expected USER or ADMIN")]
pub struct RoleError(String);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(raw: &str) -> Result<Self, RoleError> {
        match raw.to_ascii_uppercase().as_str() {
            "USER" => Ok(Role::User),
            "ADMIN" => Ok(Role::Admin),
            _ => Err(RoleError(raw.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text_case_insensitively() {
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert_eq!(Role::User.to_string().parse::<Role>(), Ok(Role::User));
        assert!("root".parse::<Role>().is_err());
    }
}
