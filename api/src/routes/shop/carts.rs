//! Carts, on the origin's routes, always the caller's own (an admin may name a user). Another user's cart
//! answers 404 like a cart that does not exist.

use super::{products::unknown_option, views::CartView};
use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{ApiError, ApiJson, ApiPath, ApiResult, ErrorCode},
    routes::points::unknown_user,
    AppState,
};
use axum::{extract::State, Json};
use domain::{
    shop::{check_quantity, MAX_LINES},
    FieldErrors, OptionId, ProductId, UserId,
};
use infra::shop::carts::{self, CartRefusal, Line};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add, remove))
        .routes(routes!(read))
        .routes(routes!(change))
        .routes(routes!(clear))
}

/// A cart with its lines priced now (the owner, or an admin); lines of stopped products are shown
/// but not counted in `availableTotal`.
#[utoipa::path(get, path = "/api/v1/carts/{user_id}", operation_id = "read_cart", tag = "shop", params(("user_id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = CartView), Problems))]
async fn read(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
) -> ApiResult<Json<CartView>> {
    caller.ensure_owner(user, unknown_user)?;
    cart_of(&state, user).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "productId": 3, "optionId": 11, "quantity": 2 }))]
struct AddBody {
    #[schema(value_type = i64, minimum = 1)]
    product_id: ProductId,
    #[schema(value_type = i64, minimum = 1)]
    option_id: OptionId,
    #[schema(minimum = 1, maximum = 999)]
    quantity: i32,
    /// Only an admin may name another user.
    #[schema(value_type = Option<i64>, minimum = 1)]
    user_id: Option<UserId>,
}

/// Adds units of a product option to the cart (the caller's, or `userId`'s for an admin); a line
/// already there grows, up to 999 units.
#[utoipa::path(post, path = "/api/v1/carts", tag = "shop", request_body = AddBody, security(("bearer" = [])),
    responses((status = 200, body = CartView, description = "the cart after the change", links(("read" = (operation_id = "read_cart", parameters(("user_id" = "$response.body#/userId")))), ("clear" = (operation_id = "clear", parameters(("user_id" = "$response.body#/userId")))))), Problems))]
async fn add(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AddBody>,
) -> ApiResult<Json<CartView>> {
    let user = owner(caller, body.user_id)?;
    valid_quantity(body.quantity)?;
    let line = Line { product: body.product_id, option: body.option_id, quantity: body.quantity };
    carts::add(&state.pool, user, line).await?.map_err(refused(body.option_id))?;
    cart_of(&state, user).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChangeBody {
    #[schema(value_type = i64, minimum = 1)]
    option_id: OptionId,
    #[schema(minimum = 1, maximum = 999)]
    quantity: i32,
    #[schema(value_type = Option<i64>, minimum = 1)]
    user_id: Option<UserId>,
}

/// Moves a line to another option of the same product and/or sets its quantity.
#[utoipa::path(put, path = "/api/v1/carts/product/{product_id}/option/{option_id}", tag = "shop", params(("product_id" = i64, Path, minimum = 1), ("option_id" = i64, Path, minimum = 1)),
    request_body = ChangeBody, security(("bearer" = [])), responses((status = 200, body = CartView), Problems))]
async fn change(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiPath((product, original)): ApiPath<(ProductId, OptionId)>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> ApiResult<Json<CartView>> {
    let user = owner(caller, body.user_id)?;
    valid_quantity(body.quantity)?;
    let line = Line { product, option: body.option_id, quantity: body.quantity };
    carts::change(&state.pool, user, original, line).await?.map_err(refused(body.option_id))?;
    cart_of(&state, user).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineRef {
    #[schema(value_type = i64, minimum = 1)]
    product_id: ProductId,
    #[schema(value_type = i64, minimum = 1)]
    option_id: OptionId,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemoveBody {
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<LineRef>,
    #[schema(value_type = Option<i64>, minimum = 1)]
    user_id: Option<UserId>,
}

/// Removes the named lines (lines not in the cart are ignored).
#[utoipa::path(delete, path = "/api/v1/carts", tag = "shop", request_body = RemoveBody, security(("bearer" = [])),
    responses((status = 200, body = CartView), Problems))]
async fn remove(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RemoveBody>,
) -> ApiResult<Json<CartView>> {
    let user = owner(caller, body.user_id)?;
    if body.items.is_empty() || body.items.len() > MAX_LINES {
        return Err(ApiError::new(ErrorCode::InvalidBody, format!("items must name 1 to {MAX_LINES} lines")));
    }
    let lines: Vec<_> = body.items.iter().map(|line| (line.product_id, line.option_id)).collect();
    carts::remove(&state.pool, user, &lines).await?;
    cart_of(&state, user).await
}

/// Empties the cart.
#[utoipa::path(delete, path = "/api/v1/carts/{user_id}/all", tag = "shop", params(("user_id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = CartView), Problems))]
async fn clear(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
) -> ApiResult<Json<CartView>> {
    caller.ensure_owner(user, unknown_user)?;
    carts::clear(&state.pool, user).await?;
    cart_of(&state, user).await
}

async fn cart_of(state: &AppState, user: UserId) -> ApiResult<Json<CartView>> {
    let lines = carts::lines_of(&state.pool, user).await?;
    Ok(Json(CartView::new(user.get(), lines)))
}

/// The cart's owner: the caller, or the user an admin names.
pub(super) fn owner(caller: AuthUser, named: Option<UserId>) -> ApiResult<UserId> {
    let user = named.unwrap_or(caller.user_id);
    caller.ensure_owner(user, unknown_user)?;
    Ok(user)
}

fn valid_quantity(quantity: i32) -> ApiResult<()> {
    let mut errors = FieldErrors::default();
    check_quantity(&mut errors, "quantity", quantity);
    errors.into_result(|| ()).map_err(ApiError::Invalid)
}

fn refused(option: OptionId) -> impl FnOnce(CartRefusal) -> ApiError {
    move |refusal| match refusal {
        CartRefusal::UnknownUser => unknown_user(),
        CartRefusal::UnknownProduct => ApiError::new(ErrorCode::ProductNotFound, "no such product"),
        CartRefusal::UnknownOption => unknown_option(option),
        CartRefusal::ProductStopped => {
            ApiError::new(ErrorCode::ProductNotAvailable, "the product is stopped and cannot be ordered")
        }
        CartRefusal::LineNotFound => ApiError::new(ErrorCode::CartLineNotFound, "the cart has no such line"),
        CartRefusal::QuantityAboveLimit => ApiError::new(
            ErrorCode::QuantityAboveLimit,
            format!("a line holds at most {} units", domain::shop::MAX_LINE_QUANTITY),
        ),
        CartRefusal::Full => ApiError::new(ErrorCode::CartFull, format!("a cart holds at most {MAX_LINES} lines")),
    }
}
