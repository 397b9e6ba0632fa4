//! Accounts: what a valid e-mail address, name and password are.

mod email;
mod password;

pub use email::Email;
pub use password::{check_password, PasswordRule, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

use crate::FieldErrors;

/// The longest display name (the column's CHECK agrees).
pub const MAX_NAME_CHARS: usize = 100;

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub fn check_name(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        errors.add("name", format!("must be 1 to {MAX_NAME_CHARS} characters"));
        return None;
    }
    if name.chars().any(char::is_control) {
        errors.add("name", "must not contain control characters");
        return None;
    }
    Some(name.to_owned())
}
