//! The error codes in the document: the catalogue as the `code` enum of the Problem schema, and on
//! every operation the codes it may answer, as the enum of its problem responses (so a contract
//! fuzzer flags any code a route answers without declaring it) and in their descriptions.

use crate::http::ErrorCode::{self, *};
use utoipa::openapi::{
    schema::{AllOfBuilder, ObjectBuilder, Schema, Type},
    OpenApi, RefOr, Response,
};

/// What any operation may answer: a request it cannot read, a missing or bad token, a role that may
/// not, a limit, an outage.
const ANY_OPERATION: &[ErrorCode] = &[
    MalformedJson,
    UnreadableBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidBody,
    InvalidPath,
    InvalidQuery,
    MethodNotAllowed,
    MissingToken,
    InvalidToken,
    TokenExpired,
    Forbidden,
    RateLimited,
    Timeout,
    Overloaded,
    DependencyUnavailable,
];

const ISSUANCE: &[ErrorCode] = &[PolicyNotFound, OutsideIssueWindow, AlreadyIssued, SoldOut];
const IDEMPOTENT: &[ErrorCode] = &[InvalidIdempotencyKey, IdempotencyKeyReused];
const CART_LINE: &[ErrorCode] = &[
    ValidationFailed,
    UserNotFound,
    ProductNotFound,
    OptionNotFound,
    ProductNotAvailable,
    CartFull,
    QuantityAboveLimit,
];
const ORDER: &[ErrorCode] = &[
    ValidationFailed,
    ProductNotFound,
    OptionNotFound,
    ProductNotAvailable,
    OutOfStock,
    QuantityAboveLimit,
    CouponNotFound,
    CouponNotApplicable,
    CouponAlreadyUsed,
    CouponExpired,
    InsufficientBalance,
    PointsExceedAmount,
];

/// The codes each operation adds to `ANY_OPERATION`, by operation id; a test fails on an operation
/// without a row.
pub const BY_OPERATION: &[(&str, &[&[ErrorCode]])] = &[
    ("signup", &[&[ValidationFailed, EmailTaken, ServerBusy]]),
    ("login", &[&[InvalidCredentials, TooManyAttempts, ServerBusy]]),
    ("logout", &[]),
    ("refresh", &[&[RefreshTokenInvalid, RefreshTokenReused]]),
    ("validate_token", &[]),
    ("me", &[&[UserNotFound]]),
    ("update_profile", &[&[ValidationFailed, UserNotFound]]),
    ("change_password", &[&[ValidationFailed, UserNotFound, InvalidCredentials, TooManyAttempts, ServerBusy]]),
    ("page", &[&[UserNotFound]]),
    ("list_policies", &[]),
    ("create_policy", &[&[ValidationFailed]]),
    ("show", &[&[PolicyNotFound]]),
    ("v1_row_lock", &[ISSUANCE]),
    ("v2_redis_then_insert", &[ISSUANCE, IDEMPOTENT]),
    ("v3_redis_then_kafka", &[ISSUANCE, &[BrokerUnavailable, IssueOutcomeUnknown]]),
    ("list_coupons", &[]),
    ("request_status", &[&[RequestNotFound]]),
    ("use_for_order", &[&[CouponNotFound, OrderNotFound, CouponAlreadyUsed, CouponExpired]]),
    ("cancel_use", &[&[CouponNotFound, CouponNotUsed, UseBelongsToOrder]]),
    ("earn", &[&[UserNotFound], IDEMPOTENT]),
    ("spend", &[&[UserNotFound, OrderNotFound, InsufficientBalance], IDEMPOTENT]),
    (
        "cancel_entry",
        &[
            &[PointNotFound, AlreadyCancelled, NotCancellable, UseBelongsToOrder, EarnTouched, InsufficientBalance],
            IDEMPOTENT,
        ],
    ),
    ("balance", &[&[UserNotFound]]),
    ("history", &[&[UserNotFound, InvalidCursor, InvalidRange]]),
    ("expiring", &[&[UserNotFound]]),
    ("list_products", &[]),
    ("create_product", &[&[ValidationFailed, OptionNameTaken]]),
    ("read_product", &[&[ProductNotFound]]),
    ("update_product", &[&[ValidationFailed, ProductNotFound]]),
    ("add_option", &[&[ValidationFailed, ProductNotFound, OptionNameTaken]]),
    ("update_option", &[&[ValidationFailed, OptionNotFound, OptionNameTaken]]),
    ("set_stock", &[&[OptionNotFound]]),
    ("add_stock", &[&[OptionNotFound]]),
    ("add", &[CART_LINE]),
    ("change", &[CART_LINE, &[CartLineNotFound]]),
    ("read_cart", &[&[UserNotFound]]),
    ("remove", &[&[ValidationFailed, UserNotFound]]),
    ("clear", &[&[UserNotFound]]),
    ("place", &[ORDER, IDEMPOTENT]),
    ("place_cart", &[ORDER, IDEMPOTENT, &[CartEmpty, CartLineNotFound]]),
    ("cancel_order", &[GIVES_PAYMENT_BACK, &[AlreadyCancelled, CancelAfterShipping]]),
    (
        "pay_order",
        &[&[
            ValidationFailed,
            OrderNotFound,
            OrderClosed,
            OrderNotPayable,
            PaymentWindowClosed,
            PaymentInProgress,
            PaymentKeyUsed,
            PaymentAmountMismatch,
            PaymentDeclined,
            PaymentRefused,
            PaymentProviderUnavailable,
        ]],
    ),
    ("list_orders", &[&[UserNotFound]]),
    ("read_order", &[&[OrderNotFound]]),
    ("order_history", &[&[OrderNotFound]]),
    ("ship_order", &[&[ValidationFailed, OrderNotFound, OrderClosed, OrderStatusConflict]]),
    ("deliver_order", &[&[OrderNotFound, OrderClosed, OrderStatusConflict]]),
    ("confirm_order", &[&[OrderNotFound, OrderClosed, OrderStatusConflict]]),
    ("refund_order", &[GIVES_PAYMENT_BACK, &[ValidationFailed, OrderStatusConflict, ReturnWindowClosed]]),
    ("after_sales_refund_order", &[GIVES_PAYMENT_BACK, &[ValidationFailed, OrderStatusConflict]]),
    ("deposit_callback", &[&[OrderNotFound, DepositNotVerified]]),
];

/// A move that may give the payment back at the provider first.
const GIVES_PAYMENT_BACK: &[ErrorCode] = &[OrderNotFound, OrderClosed, PaymentInProgress, PaymentProviderUnavailable];

/// Every code `operation_id` may answer, in catalogue order.
pub fn codes_of(operation_id: &str) -> Option<Vec<ErrorCode>> {
    let (_, groups) = BY_OPERATION.iter().find(|(id, _)| *id == operation_id)?;
    let declared: Vec<ErrorCode> =
        groups.iter().flat_map(|group| group.iter().copied()).chain(ANY_OPERATION.iter().copied()).collect();
    Some(ErrorCode::ALL.iter().copied().filter(|code| declared.contains(code)).collect())
}

/// The Problem schema's `code`: the whole catalogue, each code with its status and meaning.
pub fn catalogue_schema() -> Schema {
    let table: String = ErrorCode::ALL
        .iter()
        .map(|code| format!("\n- `{}` ({}): {}", code.as_str(), code.status().as_u16(), code.meaning()))
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .description(Some(format!("A stable error code, always with the same status:{table}")))
        .into()
}

/// Narrows each operation's problem responses to the codes it declares, split by status class.
pub fn declare(openapi: &mut OpenApi) {
    for operation in super::operations_mut(openapi) {
        let Some(codes) = operation.operation_id.as_deref().and_then(codes_of) else { continue };
        for (status, response) in operation.responses.responses.iter_mut() {
            let in_class = |code: &ErrorCode| match status.as_str() {
                "4XX" => code.status().is_client_error(),
                _ => code.status().as_str() == status,
            };
            let is_problem = status == "4XX" || status == "503";
            if let (true, RefOr::T(response)) = (is_problem, response) {
                narrow(response, &codes.iter().copied().filter(in_class).collect::<Vec<_>>());
            }
        }
    }
}

fn narrow(response: &mut Response, codes: &[ErrorCode]) {
    let own: Vec<String> =
        codes.iter().filter(|code| !ANY_OPERATION.contains(code)).map(|code| format!("`{}`", code.as_str())).collect();
    if !own.is_empty() {
        response.description = format!("{} This operation's own codes: {}.", response.description, own.join(", "));
    }
    let code = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.iter().map(|code| code.as_str())));
    let schema = AllOfBuilder::new()
        .item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem")))
        .item(ObjectBuilder::new().property("code", code).required("code"))
        .build();
    for content in response.content.values_mut() {
        content.schema = Some(RefOr::T(Schema::AllOf(schema.clone())));
    }
}
