use super::Email;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;
/// zxcvbn's scores run 0 to 4; below 3 a password falls to an offline guessing attack in hours or less.
const MIN_STRENGTH: u8 = 3;

/// Why a password is refused. No composition rules (NIST SP 800-63B): length, a strength estimate, and
/// not being built from the account's own e-mail address or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRule {
    TooShort,
    TooLong,
    ContainsEmail,
    ContainsName,
    TooWeak,
}

impl PasswordRule {
    pub fn code(self) -> &'static str {
        match self {
            PasswordRule::TooShort => "PASSWORD_TOO_SHORT",
            PasswordRule::TooLong => "PASSWORD_TOO_LONG",
            PasswordRule::ContainsEmail => "PASSWORD_CONTAINS_EMAIL",
            PasswordRule::ContainsName => "PASSWORD_CONTAINS_NAME",
            PasswordRule::TooWeak => "PASSWORD_TOO_WEAK",
        }
    }

    pub fn message(self) -> String {
        let rule = self.code();
        match self {
            PasswordRule::TooShort => format!("{rule}: must be at least {MIN_PASSWORD_CHARS} characters"),
            PasswordRule::TooLong => format!("{rule}: must be at most {MAX_PASSWORD_CHARS} characters"),
            PasswordRule::ContainsEmail => format!("{rule}: must not contain your e-mail address"),
            PasswordRule::ContainsName => format!("{rule}: must not contain your name"),
            PasswordRule::TooWeak => format!("{rule}: too easy to guess; a few uncommon words make a strong one"),
        }
    }
}

/// Checks a new password for the account of `email` and `name`.
pub fn check_password(password: &str, email: &Email, name: &str) -> Result<(), PasswordRule> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRule::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRule::TooLong);
    }
    let lowered = password.to_lowercase();
    let local_part = email.as_str().split('@').next().unwrap_or_default();
    if lowered.contains(email.as_str()) || (local_part.chars().count() >= 3 && lowered.contains(local_part)) {
        return Err(PasswordRule::ContainsEmail);
    }
    let name = name.trim().to_lowercase();
    if name.chars().count() >= 3 && lowered.contains(&name) {
        return Err(PasswordRule::ContainsName);
    }
    let estimate = zxcvbn::zxcvbn(password, &[email.as_str(), name.as_str()]);
    if u8::from(estimate.score()) < MIN_STRENGTH {
        return Err(PasswordRule::TooWeak);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("mina.park@shop.test").expect("email")
    }

    #[test]
    fn a_long_uncommon_passphrase_passes() {
        assert_eq!(check_password("plum orbit canyon ledger", &email(), "Mina Park"), Ok(()));
    }

    #[test]
    fn each_rule_is_named() {
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        let cases = [
            ("short", PasswordRule::TooShort),
            (long.as_str(), PasswordRule::TooLong),
            ("my mina.park@shop.test pass", PasswordRule::ContainsEmail),
            ("mina.park-forever-2026", PasswordRule::ContainsEmail),
            ("i am mina park, really", PasswordRule::ContainsName),
            ("password1", PasswordRule::TooWeak),
            ("qwertyuiop", PasswordRule::TooWeak),
        ];
        for (password, rule) in cases {
            assert_eq!(check_password(password, &email(), "Mina Park"), Err(rule), "{password:?}");
        }
    }
}
