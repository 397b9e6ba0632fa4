//! Extractors whose rejections are problem bodies, not axum's plain-text defaults.

use super::ApiError;
use crate::http::ErrorCode;
use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts, Request},
    http::{request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;

/// `axum::Json` with every rejection mapped to a stable code, for the API's bodies, which are all JSON
/// objects, read the way JSON Schema reads JSON (the document's contract): `1.0` is the integer 1. A
/// string holding U+0000 is refused here, once for every route, because PostgreSQL's text cannot
/// store it.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let mut value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        // serde reads a struct from an array of its fields in order too; every body here is an object.
        if !value.is_object() {
            return Err(ApiError::new(ErrorCode::InvalidBody, "the body must be a JSON object"));
        }
        if !normalize(&mut value) {
            return Err(ApiError::new(ErrorCode::InvalidBody, "strings may not contain U+0000 (NUL)"));
        }
        serde_path_to_error::deserialize(value).map(ApiJson).map_err(|error| {
            ApiError::new(ErrorCode::InvalidBody, format!("Failed to deserialize the JSON body: {error}"))
        })
    }
}

/// Integral floats an f64 holds exactly become integers (JSON Schema's `integer` admits `1.0`); false when a
/// string anywhere in the value holds NUL.
fn normalize(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(number) => {
            let whole = number.as_f64().filter(|_| number.is_f64()).and_then(domain::whole_number::integral);
            if let Some(whole) = whole {
                *number = serde_json::Number::from(whole);
            }
            true
        }
        Value::String(text) => !text.contains('\0'),
        Value::Array(items) => items.iter_mut().all(normalize),
        Value::Object(members) => {
            // A NUL in a member's name is refused like one in a value.
            members.keys().all(|key| !key.contains('\0')) && members.values_mut().all(normalize)
        }
        Value::Bool(_) | Value::Null => true,
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(ErrorCode::PayloadTooLarge, "request body is larger than allowed");
    }
    match rejection {
        JsonRejection::JsonDataError(_) => ApiError::new(ErrorCode::InvalidBody, detail),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(ErrorCode::MalformedJson, detail),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(ErrorCode::UnsupportedMediaType, detail),
        _ => ApiError::new(ErrorCode::UnreadableBody, detail),
    }
}

/// `axum::extract::Path` whose rejection is 400 `INVALID_PATH`.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| ApiError::new(ErrorCode::InvalidPath, rejection.body_text()))
    }
}

/// `axum::extract::Query` whose rejection is 400 `INVALID_QUERY`.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::new(ErrorCode::InvalidQuery, rejection.body_text()))
    }
}
