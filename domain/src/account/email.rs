use serde::Serialize;
use std::fmt;

/// An e-mail address as accounts store it: trimmed, lower-cased, one `@` with a local part and a dotted
/// domain, no spaces, at most 254 characters (RFC 5321's path limit). Two spellings of one address that
/// differ only in case are the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.chars().count() > 254 {
            return Err("must be 1 to 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else { return Err("must contain @") };
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.split('.').count() >= 2
            && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c));
        if !well_formed {
            return Err("is not an e-mail address");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(Email::parse("  Ana.Kim@Example.COM ").map(|e| e.to_string()), Ok("ana.kim@example.com".into()));
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in
            ["", "ana", "@example.com", "ana@", "ana@example", "ana@@example.com", "an a@example.com", "ana@.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
