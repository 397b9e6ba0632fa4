//! Accounts: what a valid e-mail address, name and password are.

mod email;
mod password;

pub use email::Email;
pub use password::{check_password, PasswordRule, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

use crate::{FieldError, FieldErrors};

/// The longest display name (the column's CHECK agrees).
pub const MAX_NAME_CHARS: usize = 100;

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub fn check_name(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    errors.text("name", Some(raw), MAX_NAME_CHARS)
}

/// The e-mail address and name of a new account with `password`, or every field that is wrong (the
/// password's rule named): what sign-up and `settle-batch create-user` both check.
pub fn new_account(email: &str, password: &str, name: &str) -> Result<(Email, String), Vec<FieldError>> {
    let mut errors = FieldErrors::default();
    let email = Email::parse(email).map_err(|message| errors.add("email", message)).ok();
    let name = check_name(name, &mut errors);
    if let (Some(email), Some(name)) = (&email, &name) {
        if let Err(rule) = check_password(password, email, name) {
            errors.add("password", rule.message());
        }
    }
    let checked = errors.into_result(|| email.zip(name))?;
    // Every None above came with its field error, so a clean result has both.
    checked.ok_or_else(|| vec![FieldError { field: "email", message: "is required".to_owned() }])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_account_names_every_wrong_field() {
        let fields: Vec<_> =
            super::new_account("nope", "x", " ").unwrap_err().into_iter().map(|error| error.field).collect();
        assert_eq!(fields, ["email", "name"]);
        let (email, name) = super::new_account(" A@B.io ", "plum orbit canyon ledger", " Ana ").expect("valid");
        assert_eq!((email.as_str(), name.as_str()), ("a@b.io", "Ana"));
    }
}
