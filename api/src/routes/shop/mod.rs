//! The shop: catalogue, carts and orders.

mod carts;
mod orders;
mod placing;
mod products;
mod views;

use crate::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().merge(products::router()).merge(carts::router()).merge(orders::router())
}
