use serde::Serialize;

/// One invalid input field, named as the client sent it (camelCase), with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Collects every field error of an input instead of stopping at the first, so a client fixes all at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldError { field, message: message.into() });
    }

    /// The value of a required field, or a "required" error for it.
    pub fn required<T>(&mut self, field: &'static str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.add(field, "is required");
        }
        value
    }

    /// `value` if it lies in `min..=max`, otherwise an error naming the bounds.
    pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        field: &'static str,
        value: Option<T>,
        min: T,
        max: T,
    ) -> Option<T> {
        let value = self.required(field, value)?;
        if value < min || value > max {
            self.add(field, format!("must be between {min} and {max}"));
            return None;
        }
        Some(value)
    }

    /// A free-text field (a name, an address): trimmed, 1 to `max` characters, no control characters
    /// (they break logs, labels and CSV exports). `TEXT_PATTERN` says the same to the API's clients.
    pub fn text(&mut self, field: &'static str, raw: Option<&str>, max: usize) -> Option<String> {
        let raw = self.required(field, raw)?;
        // Before trimming: a trailing "\r" or "\n" is a control character too, as TEXT_PATTERN says.
        if raw.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
            return None;
        }
        let text = raw.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > max {
            self.add(field, format!("must be 1 to {max} characters"));
            return None;
        }
        Some(text.to_owned())
    }

    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }
}

/// `FieldErrors::text` as a regular expression (ECMA-262 and Python agree on it): no control
/// character anywhere, and at least one character that is neither a control nor white space.
pub const TEXT_PATTERN: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// The OpenAPI schema of a text field of at most `MAX` characters.
#[cfg(feature = "openapi")]
pub fn text_schema<const MAX: usize>() -> utoipa::openapi::Object {
    text_object::<MAX>(utoipa::openapi::schema::Type::String.into())
}

/// The same for a field of a change, where `null` leaves the value as it is.
#[cfg(feature = "openapi")]
pub fn text_or_null_schema<const MAX: usize>() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    text_object::<MAX>(SchemaType::from_iter([Type::String, Type::Null]))
}

#[cfg(feature = "openapi")]
fn text_object<const MAX: usize>(schema_type: utoipa::openapi::schema::SchemaType) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(schema_type)
        .min_length(Some(1))
        .max_length(Some(MAX))
        .pattern(Some(TEXT_PATTERN))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters() {
        let mut errors = FieldErrors::default();
        assert_eq!(errors.text("name", Some("  Ana  "), 3), Some("Ana".to_owned()));
        assert_eq!(errors.text("name", Some("   "), 3), None);
        assert_eq!(errors.text("name", Some("Anna"), 3), None);
        assert_eq!(errors.text("name", Some("A\u{7}"), 3), None);
        assert_eq!(errors.text("name", None, 3), None);
        let fields: Vec<_> = errors.0.iter().map(|error| error.message.as_str()).collect();
        assert_eq!(
            fields,
            [
                "must be 1 to 3 characters",
                "must be 1 to 3 characters",
                "must not contain control characters",
                "is required"
            ]
        );
    }
}
