//! Catalogue and order input as clients send it, validated field by field (every bad field is named).

use super::{ProductStatus, MAX_LINE_QUANTITY, MAX_STOCK};
use crate::validation::{FieldError, FieldErrors};
use serde::{Deserialize, Serialize};

/// The highest price, extra price or amount the shop takes (whole won).
pub const MAX_PRICE: i64 = 1_000_000_000;

/// A product as created (`create`) or changed (`change`: absent fields stay as they are).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductInput {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::text_or_null_schema::<200>))]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub price: Option<i64>,
    pub status: Option<ProductStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidProduct {
    pub name: Option<String>,
    pub price: Option<i64>,
    pub status: Option<ProductStatus>,
}

impl ProductInput {
    pub fn validate(self, creating: bool) -> Result<ValidProduct, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        if creating {
            errors.required("name", self.name.as_ref());
            errors.required("price", self.price);
        }
        let name = self.name.map(|name| checked_name(&mut errors, "name", &name));
        if let Some(price) = self.price {
            errors.in_range("price", Some(price), 0, MAX_PRICE);
        }
        errors.into_result(|| ValidProduct { name: name.flatten(), price: self.price, status: self.status })
    }
}

/// An option as created (its stock changes later through the stock routes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OptionInput {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::text_schema::<200>, required = true))]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub extra_price: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 100_000_000))]
    pub stock: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOption {
    pub name: Option<String>,
    pub extra_price: Option<i64>,
    pub stock: i32,
}

impl OptionInput {
    pub fn validate(self, creating: bool) -> Result<ValidOption, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        if creating {
            errors.required("name", self.name.as_ref());
        } else if self.stock.is_some() {
            errors.add("stock", "is changed through the option's stock route");
        }
        let name = self.name.map(|name| checked_name(&mut errors, "name", &name));
        if let Some(extra) = self.extra_price {
            errors.in_range("extraPrice", Some(extra), 0, MAX_PRICE);
        }
        let stock = self.stock.unwrap_or(0);
        errors.in_range("stock", Some(stock), 0, MAX_STOCK);
        errors.into_result(|| ValidOption { name: name.flatten(), extra_price: self.extra_price, stock })
    }
}

/// Where an order goes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShippingInput {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::text_schema::<100>, required = true))]
    pub receiver_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = phone_schema, required = true))]
    pub phone: Option<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::text_schema::<500>, required = true))]
    pub address: Option<String>,
}

impl ShippingInput {
    /// (receiver name, phone, address), trimmed, each within its column's bounds.
    pub fn validate(&self, errors: &mut FieldErrors) -> Option<(String, String, String)> {
        let receiver = errors.text("shipping.receiverName", self.receiver_name.as_deref(), 100);
        let phone = errors.text("shipping.phone", self.phone.as_deref(), 30).filter(|_| {
            // The raw value, so that no other white space hides at its ends (the pattern's reading).
            let raw = self.phone.as_deref().unwrap_or_default();
            let dialable = raw.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c));
            if !dialable {
                errors.add("shipping.phone", "may hold only digits, spaces and + - ( )");
            }
            dialable
        });
        let address = errors.text("shipping.address", self.address.as_deref(), 500);
        Some((receiver?, phone?, address?))
    }
}

/// What `ShippingInput::validate` takes for a phone number: digits, spaces and + - ( ), not blank.
#[cfg(feature = "openapi")]
fn phone_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(30))
        .pattern(Some(r"^[0-9+() -]*[0-9+()-][0-9+() -]*$"))
        .build()
}

/// A line's quantity: 1 to `MAX_LINE_QUANTITY`.
pub fn check_quantity(errors: &mut FieldErrors, field: &'static str, quantity: i32) {
    errors.in_range(field, Some(quantity), 1, MAX_LINE_QUANTITY);
}

fn checked_name(errors: &mut FieldErrors, field: &'static str, raw: &str) -> Option<String> {
    errors.text(field, Some(raw), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<impl std::fmt::Debug, Vec<FieldError>>) -> Vec<&'static str> {
        result.expect_err("invalid").into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_new_product_needs_a_name_and_a_price_in_range() {
        assert_eq!(fields(ProductInput::default().validate(true)), vec!["name", "price"]);
        let negative = ProductInput { name: Some(" ".into()), price: Some(-1), status: None };
        assert_eq!(fields(negative.validate(true)), vec!["name", "price"]);
        let change = ProductInput { price: Some(5), ..Default::default() }.validate(false).expect("a partial change");
        assert_eq!((change.name, change.price), (None, Some(5)));
    }

    #[test]
    fn option_stock_is_bounded_and_only_set_on_creation() {
        let huge = OptionInput { name: Some("L".into()), extra_price: None, stock: Some(MAX_STOCK + 1) };
        assert_eq!(fields(huge.validate(true)), vec!["stock"]);
        let restock = OptionInput { stock: Some(5), ..Default::default() };
        assert_eq!(fields(restock.validate(false)), vec!["stock"]);
    }

    #[test]
    fn shipping_names_every_missing_or_malformed_field() {
        let mut errors = FieldErrors::default();
        let shipping = ShippingInput { receiver_name: None, phone: Some("call me".into()), address: Some("".into()) };
        assert_eq!(shipping.validate(&mut errors), None);
        let named = fields(errors.into_result(|| ()));
        assert_eq!(named, vec!["shipping.receiverName", "shipping.phone", "shipping.address"]);
    }
}
