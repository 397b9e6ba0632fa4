//! The API's one error type. Every failure becomes an RFC 9457 problem body with a stable `code`;
//! internal errors are logged with their cause chain and shown to the client only as `INTERNAL`.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use domain::{coupon::IssueRejection, FieldError};
use serde::Serialize;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{code}: {detail}")]
    Problem { status: StatusCode, code: &'static str, detail: String },
    /// 422 `VALIDATION_FAILED`, naming every invalid field.
    #[error("invalid fields: {0:?}")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Problem { status, code, detail: detail.into() }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Problem { status, .. } => *status,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<IssueRejection> for ApiError {
    fn from(rejection: IssueRejection) -> Self {
        let code = rejection.code();
        match rejection {
            IssueRejection::UnknownPolicy => ApiError::not_found(code, "no such coupon policy"),
            IssueRejection::OutsideIssueWindow => ApiError::unprocessable(code, "the policy is not issuing now"),
            IssueRejection::AlreadyIssued => ApiError::conflict(code, "you already hold a coupon of this policy"),
            IssueRejection::SoldOut => ApiError::conflict(code, "every coupon of this policy has been issued"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(error).context("database operation"))
    }
}

/// The wire shape of an error (`application/problem+json`).
#[derive(Debug, Serialize)]
pub struct ProblemBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// The body this error answers with. Internal errors show no internals.
    pub fn problem(&self) -> ProblemBody {
        let status = self.status();
        let (code, detail, errors) = match self {
            ApiError::Problem { code, detail, .. } => (*code, detail.clone(), Vec::new()),
            ApiError::Invalid(errors) => {
                ("VALIDATION_FAILED", "some fields are invalid: see errors".to_owned(), errors.clone())
            }
            ApiError::Internal(_) => (
                "INTERNAL",
                "internal error; quote the x-trace-id response header when reporting it".to_owned(),
                Vec::new(),
            ),
        };
        ProblemBody {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code,
            detail,
            errors,
        }
    }
}

/// A JSON answer with `status`; error statuses get the problem content type.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    if status.is_client_error() || status.is_server_error() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(error) = &self {
            tracing::error!(error = ?error, "request failed with an internal error");
        }
        json_response(self.status(), &self.problem())
    }
}
