//! The API's one error type. Every failure becomes an RFC 9457 problem body with a stable `code`;
//! internal errors are logged with their cause chain and shown to the client only as `INTERNAL`.

use super::ErrorCode;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use domain::{
    coupon::{IssueRejection, UsageError},
    FieldError,
};
use infra::{accounts::hashing::Busy, coupons::usage::UsageFailure, points::ledger::Refusal};
use serde::Serialize;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}: {detail}", code.as_str())]
    Problem {
        code: ErrorCode,
        detail: String,
        retry_after: Option<u64>,
        fields: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// 422 `VALIDATION_FAILED`, naming every invalid field.
    #[error("invalid fields: {0:?}")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A refusal with `code` (whose status it takes) and a sentence for humans.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError::Problem { code, detail: detail.into(), retry_after: None, fields: None }
    }

    /// A refusal with members of its own beside the standard ones (RFC 9457 extensions), e.g. which
    /// option is short and how many units it has left.
    pub fn with_fields(code: ErrorCode, detail: impl Into<String>, fields: serde_json::Value) -> Self {
        let fields = match fields {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        };
        ApiError::Problem { code, detail: detail.into(), retry_after: None, fields }
    }

    /// A refusal that tells the client when to try again (`Retry-After`, in seconds).
    pub fn retry_after(code: ErrorCode, detail: impl Into<String>, seconds: u64) -> Self {
        ApiError::Problem { code, detail: detail.into(), retry_after: Some(seconds.max(1)), fields: None }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Problem { code, .. } => *code,
            ApiError::Invalid(_) => ErrorCode::ValidationFailed,
            ApiError::Internal(error) if is_outage(error) => ErrorCode::DependencyUnavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code().status()
    }
}

impl From<IssueRejection> for ApiError {
    fn from(rejection: IssueRejection) -> Self {
        let (code, detail) = match rejection {
            IssueRejection::UnknownPolicy => (ErrorCode::PolicyNotFound, "no such coupon policy"),
            IssueRejection::OutsideIssueWindow => (ErrorCode::OutsideIssueWindow, "the policy is not issuing now"),
            IssueRejection::AlreadyIssued => (ErrorCode::AlreadyIssued, "you already hold a coupon of this policy"),
            IssueRejection::SoldOut => (ErrorCode::SoldOut, "every coupon of this policy has been issued"),
        };
        debug_assert_eq!(code.as_str(), rejection.code(), "the domain's code and the API's agree");
        ApiError::new(code, detail)
    }
}

impl From<UsageError> for ApiError {
    fn from(rule: UsageError) -> Self {
        let code = match rule {
            UsageError::UsedElsewhere => ErrorCode::CouponAlreadyUsed,
            UsageError::Expired => ErrorCode::CouponExpired,
            UsageError::NotUsed => ErrorCode::CouponNotUsed,
        };
        debug_assert_eq!(code.as_str(), rule.code(), "the domain's code and the API's agree");
        ApiError::new(code, rule.to_string())
    }
}

impl From<UsageFailure> for ApiError {
    fn from(failure: UsageFailure) -> Self {
        match failure {
            // Someone else's coupon answers like an unknown one: a stranger learns nothing of it.
            UsageFailure::NotFound | UsageFailure::NotOwner => {
                ApiError::new(ErrorCode::CouponNotFound, "no such coupon")
            }
            UsageFailure::UnknownOrder => ApiError::new(ErrorCode::OrderNotFound, "no such order of yours"),
            UsageFailure::BelongsToOrder(order) => belongs_to_order(order),
            UsageFailure::Rule(rule) => rule.into(),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::UnknownUser => ApiError::new(ErrorCode::UserNotFound, "no such user"),
            Refusal::InsufficientBalance { balance } => {
                ApiError::new(ErrorCode::InsufficientBalance, format!("the balance is {balance} points"))
            }
            Refusal::UnknownEntry => ApiError::new(ErrorCode::PointNotFound, "no such ledger entry"),
            Refusal::NotAllowed => {
                ApiError::new(ErrorCode::Forbidden, "users cancel their own uses; only admins cancel earns")
            }
            Refusal::AlreadyCancelled => ApiError::new(ErrorCode::AlreadyCancelled, "this entry was cancelled before"),
            Refusal::NotCancellable => {
                ApiError::new(ErrorCode::NotCancellable, "a cancel or expiry entry cannot be cancelled")
            }
            Refusal::BelongsToOrder(order) => belongs_to_order(order),
            Refusal::EarnTouched => ApiError::new(
                ErrorCode::EarnTouched,
                "points of this earn were spent or have expired: cancel what spent them first",
            ),
        }
    }
}

fn belongs_to_order(order: i64) -> ApiError {
    ApiError::with_fields(
        ErrorCode::UseBelongsToOrder,
        format!("this use was made by order {order}: cancel the order to get it back"),
        serde_json::json!({ "orderId": order }),
    )
}

impl From<Busy> for ApiError {
    fn from(_: Busy) -> Self {
        ApiError::retry_after(ErrorCode::ServerBusy, "too many sign-ins at once; try again in a moment", 1)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(error).context("database operation"))
    }
}

/// A dependency outage somewhere in the cause chain: PostgreSQL unreachable (or its pool exhausted),
/// Redis not answering, the broker failing, or a breaker open. Not a bug: 503, never 500.
fn is_outage(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(redis) = cause.downcast_ref::<redis::RedisError>() {
            return infra::redis_client::is_outage(redis);
        }
        if let Some(database) = cause.downcast_ref::<sqlx::Error>() {
            return infra::db::is_outage(database);
        }
        cause.is::<infra::breaker::Open>() || cause.is::<rdkafka::error::KafkaError>()
    })
}

/// The wire shape of an error (`application/problem+json`). Some codes add members of their own
/// (RFC 9457 extensions, e.g. `OUT_OF_STOCK`'s `optionId`, `requested`, `left`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
#[schema(example = json!({ "type": "about:blank", "title": "Conflict", "status": 409, "code": "SOLD_OUT", "detail": "every coupon of this policy has been issued" }))]
pub struct ProblemBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[schema(schema_with = crate::openapi::error_codes::catalogue_schema)]
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    /// The body this error answers with. Internal errors show no internals.
    pub fn problem(&self) -> ProblemBody {
        let status = self.status();
        let (detail, errors, fields) = match self {
            ApiError::Problem { detail, fields, .. } => (detail.clone(), Vec::new(), fields.clone()),
            ApiError::Invalid(errors) => ("some fields are invalid: see errors".to_owned(), errors.clone(), None),
            ApiError::Internal(error) if is_outage(error) => {
                let detail = "a service this request needs is unavailable; try again shortly".to_owned();
                (detail, Vec::new(), None)
            }
            ApiError::Internal(_) => {
                let detail = "internal error; quote the x-trace-id response header when reporting it".to_owned();
                (detail, Vec::new(), None)
            }
        };
        let code = self.code().as_str();
        ProblemBody {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code,
            detail,
            errors,
            fields,
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
        let outage = matches!(&self, ApiError::Internal(error) if is_outage(error));
        match &self {
            ApiError::Internal(error) if outage => tracing::warn!(error = ?error, "a dependency is unavailable"),
            ApiError::Internal(error) => tracing::error!(error = ?error, "request failed with an internal error"),
            _ => {}
        }
        let mut response = json_response(self.status(), &self.problem());
        let retry_after = match self {
            ApiError::Problem { retry_after, .. } => retry_after,
            _ if outage => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
