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

    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(self.0)
        }
    }
}
