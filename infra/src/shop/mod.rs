//! The shop's adapters: the catalogue and carts in PostgreSQL, orders as one transaction each, and the
//! Redis stock gate that turns a flash sale's sold-out requests away before they reach a row lock.

pub mod carts;
pub mod catalogue;
mod gate;
pub mod orders;
pub mod purchase_points;

pub use gate::{Admission, StockGate, Ticket};
