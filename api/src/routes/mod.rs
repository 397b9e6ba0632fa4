use crate::AppState;
use axum::Router;

mod coupons;
mod points;
mod points_history;
mod shop;
mod users;

/// The API's routes, by area.
pub fn router() -> Router<AppState> {
    Router::new().merge(users::router()).merge(coupons::router()).merge(points::router()).merge(shop::router())
}
