//! The one catalogue of error codes: every problem body's `code`, the status it always comes with, and
//! what it means. A refusal anywhere in the API names one of these; the README's table is checked
//! against this list by a test.

use axum::http::StatusCode;

macro_rules! catalogue {
    ($($variant:ident => $status:ident, $code:literal, $meaning:literal;)*) => {
        /// A stable error code. The status is the code's, never chosen at the call site.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }
        }
    };
}

catalogue! {
    MalformedJson => BAD_REQUEST, "MALFORMED_JSON", "the body is not valid JSON";
    UnreadableBody => BAD_REQUEST, "UNREADABLE_BODY", "the body could not be read";
    InvalidPath => BAD_REQUEST, "INVALID_PATH", "a path segment is not a valid id";
    InvalidQuery => BAD_REQUEST, "INVALID_QUERY", "a query parameter is missing, unknown or out of range";
    InvalidCursor => BAD_REQUEST, "INVALID_CURSOR", "the page cursor was not made by this API";
    InvalidIdempotencyKey => BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY", "the Idempotency-Key header is empty, too long or not printable ASCII";
    MissingToken => UNAUTHORIZED, "MISSING_TOKEN", "no Authorization: Bearer header";
    InvalidToken => UNAUTHORIZED, "INVALID_TOKEN", "the bearer token is malformed, forged or for another audience";
    TokenExpired => UNAUTHORIZED, "TOKEN_EXPIRED", "the bearer token has expired";
    InvalidCredentials => UNAUTHORIZED, "INVALID_CREDENTIALS", "the e-mail address or the password is wrong";
    RefreshTokenInvalid => UNAUTHORIZED, "REFRESH_TOKEN_INVALID", "the refresh token is unknown, expired or revoked";
    RefreshTokenReused => UNAUTHORIZED, "REFRESH_TOKEN_REUSED", "the refresh token was used before: its whole login is revoked";
    Forbidden => FORBIDDEN, "FORBIDDEN", "the caller's role may not do this";
    RouteNotFound => NOT_FOUND, "ROUTE_NOT_FOUND", "no such route";
    UserNotFound => NOT_FOUND, "USER_NOT_FOUND", "no such user (or not one the caller may see)";
    PolicyNotFound => NOT_FOUND, "POLICY_NOT_FOUND", "no such coupon policy";
    CouponNotFound => NOT_FOUND, "COUPON_NOT_FOUND", "no such coupon (or not the caller's)";
    RequestNotFound => NOT_FOUND, "REQUEST_NOT_FOUND", "no such issue request (or not the caller's)";
    PointNotFound => NOT_FOUND, "POINT_NOT_FOUND", "no such ledger entry (or not the caller's)";
    ProductNotFound => NOT_FOUND, "PRODUCT_NOT_FOUND", "no such product";
    OptionNotFound => NOT_FOUND, "OPTION_NOT_FOUND", "no such option of the product";
    CartLineNotFound => NOT_FOUND, "CART_LINE_NOT_FOUND", "the cart has no line for that product option";
    OrderNotFound => NOT_FOUND, "ORDER_NOT_FOUND", "no such order (or not the caller's)";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "the route does not take that method";
    EmailTaken => CONFLICT, "EMAIL_TAKEN", "an account with this e-mail address exists";
    SoldOut => CONFLICT, "SOLD_OUT", "every coupon of the policy has been issued";
    AlreadyIssued => CONFLICT, "ALREADY_ISSUED", "the caller already holds a coupon of the policy";
    CouponAlreadyUsed => CONFLICT, "COUPON_ALREADY_USED", "the coupon was used for another order";
    CouponExpired => CONFLICT, "COUPON_EXPIRED", "the coupon's validity has ended";
    CouponNotUsed => CONFLICT, "COUPON_NOT_USED", "the coupon has no use to cancel";
    InsufficientBalance => CONFLICT, "INSUFFICIENT_BALANCE", "the balance does not cover the amount";
    AlreadyCancelled => CONFLICT, "ALREADY_CANCELLED", "the order or ledger entry was cancelled before";
    OptionNameTaken => CONFLICT, "OPTION_NAME_TAKEN", "the product has an option of that name";
    ProductNotAvailable => CONFLICT, "PRODUCT_NOT_AVAILABLE", "the product is stopped: not sold now";
    CartFull => CONFLICT, "CART_FULL", "the cart has the most lines it may hold";
    CartEmpty => CONFLICT, "CART_EMPTY", "the cart has no lines to order";
    OutOfStock => CONFLICT, "OUT_OF_STOCK", "an option has fewer units left than ordered: `optionId` and `left` say which";
    CouponNotApplicable => CONFLICT, "COUPON_NOT_APPLICABLE", "the coupon cannot serve this order: `reason` says why";
    PointsExceedAmount => CONFLICT, "POINTS_EXCEED_AMOUNT", "more points than the amount left to pay after the coupon";
    UseBelongsToOrder => CONFLICT, "USE_BELONGS_TO_ORDER", "the use was made by an order: cancel the order instead";
    NotCancellable => CONFLICT, "NOT_CANCELLABLE", "a cancel or expiry entry cannot be cancelled";
    EarnTouched => CONFLICT, "EARN_TOUCHED", "points of this earn were spent or expired: only an untouched earn is cancelled";
    OrderClosed => CONFLICT, "ORDER_CLOSED", "the order is confirmed, cancelled, expired or refunded: nothing more happens to it";
    OrderNotPayable => CONFLICT, "ORDER_NOT_PAYABLE", "the order is not waiting for a payment";
    PaymentWindowClosed => CONFLICT, "PAYMENT_WINDOW_CLOSED", "the order's payment window closed: it expires, unpaid";
    CancelAfterShipping => CONFLICT, "CANCEL_AFTER_SHIPPING", "a shipped order is not cancelled: once delivered, ask for a refund";
    ReturnWindowClosed => CONFLICT, "RETURN_WINDOW_CLOSED", "the return window after delivery has closed";
    OrderStatusConflict => CONFLICT, "ORDER_STATUS_CONFLICT", "the action does not follow from the order's status: `orderStatus` says where it is";
    PaymentInProgress => CONFLICT, "PAYMENT_IN_PROGRESS", "a payment of the order waits for the provider's outcome: read the order for it";
    PaymentKeyUsed => CONFLICT, "PAYMENT_KEY_USED", "the payment key paid (or tried to pay) another order";
    DepositNotVerified => FORBIDDEN, "DEPOSIT_NOT_VERIFIED", "the deposit callback's secret is not the one the provider handed out with the account";
    PaymentAmountMismatch => UNPROCESSABLE_ENTITY, "PAYMENT_AMOUNT_MISMATCH", "the amount is not what the order has to pay: `amountToPay` says what is";
    PaymentDeclined => PAYMENT_REQUIRED, "PAYMENT_DECLINED", "the provider declined the payment: the order can be paid with another one";
    PaymentRefused => UNPROCESSABLE_ENTITY, "PAYMENT_REFUSED", "the provider refused the payment request (e.g. another amount than the buyer paid): `providerCode` says why";
    PaymentProviderUnavailable => SERVICE_UNAVAILABLE, "PAYMENT_PROVIDER_UNAVAILABLE", "the payment provider could not be reached; nothing was charged: retry shortly";
    RateLimited => TOO_MANY_REQUESTS, "RATE_LIMITED", "too many requests from this user or client address; retry after Retry-After seconds";
    TooManyAttempts => TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS", "too many failed sign-ins; retry after Retry-After seconds";
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "the body is larger than API_BODY_LIMIT_BYTES";
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "the body is not sent as application/json";
    ValidationFailed => UNPROCESSABLE_ENTITY, "VALIDATION_FAILED", "some fields are invalid: `errors` names each";
    InvalidBody => UNPROCESSABLE_ENTITY, "INVALID_BODY", "the body does not have the route's shape or a field's range";
    InvalidRange => UNPROCESSABLE_ENTITY, "INVALID_RANGE", "the time range is empty or reversed";
    OutsideIssueWindow => UNPROCESSABLE_ENTITY, "OUTSIDE_ISSUE_WINDOW", "the policy is not issuing now";
    QuantityAboveLimit => UNPROCESSABLE_ENTITY, "QUANTITY_ABOVE_LIMIT", "a line would hold more units than one line may";
    IdempotencyKeyReused => UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED", "the Idempotency-Key was used with another body";
    Internal => INTERNAL_SERVER_ERROR, "INTERNAL", "an unexpected failure; quote the x-trace-id header";
    DependencyUnavailable => SERVICE_UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", "PostgreSQL, Redis or the broker is unreachable (or its circuit breaker is open); nothing was changed unless the answer says so; retry after Retry-After seconds";
    BrokerUnavailable => SERVICE_UNAVAILABLE, "BROKER_UNAVAILABLE", "the request could not be queued; nothing was kept";
    IssueOutcomeUnknown => SERVICE_UNAVAILABLE, "ISSUE_OUTCOME_UNKNOWN", "the broker did not confirm the request in time; it may be queued and is sent again until it is: `requestId` tells its outcome";
    Timeout => SERVICE_UNAVAILABLE, "TIMEOUT", "the request took longer than API_REQUEST_TIMEOUT_MS";
    Overloaded => SERVICE_UNAVAILABLE, "OVERLOADED", "the route group is at its concurrency cap and queue; retry after Retry-After seconds";
    ServerBusy => SERVICE_UNAVAILABLE, "SERVER_BUSY", "the password hashing pool is full; retry after Retry-After seconds";
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_unique_and_names_an_error_status() {
        let codes: HashSet<_> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert!(ErrorCode::ALL.iter().all(|code| code.status().is_client_error() || code.status().is_server_error()));
    }

    #[test]
    fn the_readme_lists_every_code_with_its_status() {
        let readme = include_str!("../../../README.md");
        for code in ErrorCode::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
            assert!(readme.contains(&row), "README.md has no row `{row}`");
        }
    }
}
