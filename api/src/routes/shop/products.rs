//! The catalogue: admins create and change products, options and stock; anyone browses (admins see
//! stopped products in the list too).

use super::views::{OptionView, ProductView};
use crate::openapi::Problems;
use crate::{
    auth::{AdminUser, MaybeUser},
    http::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorCode},
    routes::coupons::views::{Page, PageQuery},
    AppState,
};
use axum::{extract::State, http::StatusCode, Json};
use domain::{
    shop::{OptionInput, ProductInput, ProductStatus, MAX_STOCK},
    OptionId, ProductId,
};
use infra::shop::catalogue::{self, DuplicateOption, NewOption, ProductChange, StockChange};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update))
        .routes(routes!(add_option))
        .routes(routes!(update_option))
        .routes(routes!(set_stock, add_stock))
}

/// The catalogue in id order, in keyset pages: active products (admins also see stopped ones).
#[utoipa::path(get, path = "/api/v1/products", operation_id = "list_products", tag = "shop", params(PageQuery), security((), ("bearer" = [])),
    responses((status = 200, body = Page<ProductView>), Problems))]
async fn list(
    caller: MaybeUser,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<ProductView>>> {
    let limit = page.checked_limit()?;
    let rows = catalogue::products(&state.pool, page.after, limit, caller.is_admin()).await?;
    Ok(Json(Page::from_rows(rows, limit, |row| row.id, |row| ProductView::new(row, None))))
}

/// A product with its options; a stopped one too (orders and carts still show it).
#[utoipa::path(get, path = "/api/v1/products/{product_id}", operation_id = "read_product", tag = "shop", params(("product_id" = i64, Path, minimum = 1)), security(()),
    responses((status = 200, body = ProductView), Problems))]
async fn read(State(state): State<AppState>, ApiPath(product): ApiPath<ProductId>) -> ApiResult<Json<ProductView>> {
    let row = catalogue::product(&state.pool, product).await?.ok_or_else(|| unknown_product(product))?;
    let options = catalogue::options_of(&state.pool, product).await?;
    Ok(Json(ProductView::new(row, Some(options))))
}

/// A new product, with the options it starts with.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "name": "Linen shirt", "price": 39000, "options": [{ "name": "M", "stock": 120 }, { "name": "L", "extraPrice": 2000, "stock": 80 }] }))]
struct NewProductBody {
    #[schema(schema_with = domain::text_schema::<200>, required = true)]
    name: Option<String>,
    #[schema(required = true, value_type = i64, minimum = 0, maximum = 1_000_000_000)]
    price: Option<i64>,
    status: Option<ProductStatus>,
    #[serde(default)]
    options: Vec<OptionInput>,
}

/// Creates a product with the options it starts with (admin).
#[utoipa::path(post, path = "/api/v1/products", operation_id = "create_product", tag = "shop", request_body = NewProductBody, security(("bearer" = ["ADMIN"])),
    responses((status = 201, body = ProductView, description = "created, with its options", links(("read" = (operation_id = "read_product", parameters(("product_id" = "$response.body#/id")))), ("change" = (operation_id = "update_product", parameters(("product_id" = "$response.body#/id")))), ("addOption" = (operation_id = "add_option", parameters(("product_id" = "$response.body#/id")))))), Problems))]
async fn create(
    AdminUser(_): AdminUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewProductBody>,
) -> ApiResult<(StatusCode, Json<ProductView>)> {
    let input = ProductInput { name: body.name, price: body.price, status: body.status };
    let product = input.validate(true).map_err(ApiError::Invalid)?;
    let options: Vec<_> = body
        .options
        .into_iter()
        .map(|option| option.validate(true))
        .collect::<Result<_, _>>()
        .map_err(ApiError::Invalid)?;
    let mut tx = state.pool.begin().await?;
    let row = catalogue::create_product(
        &mut *tx,
        product.name.as_deref().unwrap_or_default(),
        product.price.unwrap_or_default(),
        product.status.unwrap_or(ProductStatus::Active),
    )
    .await?;
    let id = ProductId::parse(row.id).map_err(anyhow::Error::from)?;
    let mut created = Vec::with_capacity(options.len());
    for option in &options {
        let new = NewOption {
            name: option.name.as_deref().unwrap_or_default(),
            extra_price: option.extra_price.unwrap_or(0),
            stock: option.stock,
        };
        created.push(catalogue::add_option(&mut tx, id, &new).await?.map_err(duplicate_option)?);
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(ProductView::new(row, Some(created)))))
}

/// Changes a product's name, price or status (admin); absent fields stay as they are.
#[utoipa::path(patch, path = "/api/v1/products/{product_id}", operation_id = "update_product", tag = "shop", params(("product_id" = i64, Path, minimum = 1)), request_body = ProductInput, security(("bearer" = ["ADMIN"])),
    responses((status = 200, body = ProductView), Problems))]
async fn update(
    AdminUser(_): AdminUser,
    State(state): State<AppState>,
    ApiPath(product): ApiPath<ProductId>,
    ApiJson(body): ApiJson<ProductInput>,
) -> ApiResult<Json<ProductView>> {
    let valid = body.validate(false).map_err(ApiError::Invalid)?;
    let change = ProductChange { name: valid.name, price: valid.price, status: valid.status };
    let row =
        catalogue::update_product(&state.pool, product, &change).await?.ok_or_else(|| unknown_product(product))?;
    let options = catalogue::options_of(&state.pool, product).await?;
    Ok(Json(ProductView::new(row, Some(options))))
}

/// Adds an option to a product (admin).
#[utoipa::path(post, path = "/api/v1/products/{product_id}/options", tag = "shop", params(("product_id" = i64, Path, minimum = 1)), request_body = OptionInput, security(("bearer" = ["ADMIN"])),
    responses((status = 201, body = OptionView, description = "created", links(("change" = (operation_id = "update_option", parameters(("product_id" = "$response.body#/productId"), ("option_id" = "$response.body#/id")))), ("setStock" = (operation_id = "set_stock", parameters(("product_id" = "$response.body#/productId"), ("option_id" = "$response.body#/id")))), ("addStock" = (operation_id = "add_stock", parameters(("product_id" = "$response.body#/productId"), ("option_id" = "$response.body#/id")))))), Problems))]
async fn add_option(
    AdminUser(_): AdminUser,
    State(state): State<AppState>,
    ApiPath(product): ApiPath<ProductId>,
    ApiJson(body): ApiJson<OptionInput>,
) -> ApiResult<(StatusCode, Json<OptionView>)> {
    let valid = body.validate(true).map_err(ApiError::Invalid)?;
    catalogue::product(&state.pool, product).await?.ok_or_else(|| unknown_product(product))?;
    let new = NewOption {
        name: valid.name.as_deref().unwrap_or_default(),
        extra_price: valid.extra_price.unwrap_or(0),
        stock: valid.stock,
    };
    let mut connection = state.pool.acquire().await?;
    let option = catalogue::add_option(&mut connection, product, &new).await?.map_err(duplicate_option)?;
    Ok((StatusCode::CREATED, Json(OptionView::from(option))))
}

/// Renames an option or changes its extra price (admin).
#[utoipa::path(patch, path = "/api/v1/products/{product_id}/options/{option_id}", tag = "shop", params(("product_id" = i64, Path, minimum = 1), ("option_id" = i64, Path, minimum = 1)),
    request_body = OptionChangeBody, security(("bearer" = ["ADMIN"])), responses((status = 200, body = OptionView), Problems))]
async fn update_option(
    AdminUser(_): AdminUser,
    State(state): State<AppState>,
    ApiPath((product, option)): ApiPath<(ProductId, OptionId)>,
    ApiJson(body): ApiJson<OptionChangeBody>,
) -> ApiResult<Json<OptionView>> {
    let body = OptionInput { name: body.name, extra_price: body.extra_price, stock: None };
    let valid = body.validate(false).map_err(ApiError::Invalid)?;
    let updated = catalogue::update_option(&state.pool, product, option, valid.name.as_deref(), valid.extra_price)
        .await?
        .ok_or_else(|| unknown_option(option))?
        .map_err(duplicate_option)?;
    Ok(Json(OptionView::from(updated)))
}

/// An option's name or extra price (its stock changes through the stock routes); absent fields stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OptionChangeBody {
    #[schema(schema_with = domain::text_or_null_schema::<200>)]
    name: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    extra_price: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetStockBody {
    #[schema(minimum = 0, maximum = 100_000_000)]
    stock: i32,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddStockBody {
    #[schema(minimum = 1, maximum = 100_000_000)]
    add: i32,
}

/// Replaces the count (a stock take).
#[utoipa::path(put, path = "/api/v1/products/{product_id}/options/{option_id}/stock", tag = "shop", params(("product_id" = i64, Path, minimum = 1), ("option_id" = i64, Path, minimum = 1)),
    request_body = SetStockBody, security(("bearer" = ["ADMIN"])), responses((status = 200, body = OptionView), Problems))]
async fn set_stock(
    AdminUser(_): AdminUser,
    State(state): State<AppState>,
    ApiPath((product, option)): ApiPath<(ProductId, OptionId)>,
    ApiJson(body): ApiJson<SetStockBody>,
) -> ApiResult<Json<OptionView>> {
    if !(0..=MAX_STOCK).contains(&body.stock) {
        return Err(ApiError::new(ErrorCode::InvalidBody, format!("stock must be 0 to {MAX_STOCK}")));
    }
    change_stock(&state, product, option, StockChange::Set(body.stock)).await
}

/// Adds a delivery to the count (concurrent orders keep their units).
#[utoipa::path(post, path = "/api/v1/products/{product_id}/options/{option_id}/stock", tag = "shop", params(("product_id" = i64, Path, minimum = 1), ("option_id" = i64, Path, minimum = 1)),
    request_body = AddStockBody, security(("bearer" = ["ADMIN"])), responses((status = 200, body = OptionView), Problems))]
async fn add_stock(
    AdminUser(_): AdminUser,
    State(state): State<AppState>,
    ApiPath((product, option)): ApiPath<(ProductId, OptionId)>,
    ApiJson(body): ApiJson<AddStockBody>,
) -> ApiResult<Json<OptionView>> {
    if !(1..=MAX_STOCK).contains(&body.add) {
        return Err(ApiError::new(ErrorCode::InvalidBody, format!("add must be 1 to {MAX_STOCK}")));
    }
    change_stock(&state, product, option, StockChange::Add(body.add)).await
}

async fn change_stock(
    state: &AppState,
    product: ProductId,
    option: OptionId,
    change: StockChange,
) -> ApiResult<Json<OptionView>> {
    let changed = catalogue::change_stock(&state.pool, product, option, change).await?;
    let changed = match changed {
        Ok(row) => row.ok_or_else(|| unknown_option(option))?,
        Err(catalogue::StockAboveLimit) => {
            return Err(ApiError::new(ErrorCode::InvalidBody, format!("stock would exceed {MAX_STOCK}")))
        }
    };
    state.stock_gate.sync(&[(changed.id, changed.stock)]).await;
    Ok(Json(OptionView::from(changed)))
}

pub(crate) fn unknown_product(product: ProductId) -> ApiError {
    ApiError::new(ErrorCode::ProductNotFound, format!("no product {product}"))
}

pub(crate) fn unknown_option(option: OptionId) -> ApiError {
    ApiError::new(ErrorCode::OptionNotFound, format!("no option {option} of that product"))
}

fn duplicate_option(_: DuplicateOption) -> ApiError {
    ApiError::new(ErrorCode::OptionNameTaken, "the product has an option of that name")
}
