//! The shop: catalogue, carts and orders.

mod carts;
mod deposits;
mod orders;
mod payment;
mod placing;
mod products;
mod views;

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(products::router())
        .merge(carts::router())
        .merge(orders::router())
        .merge(deposits::router())
}
