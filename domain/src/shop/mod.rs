//! Shop rules: what a product, a cart line and an order may be, and how an order is priced.

mod input;
mod lifecycle;
mod pricing;
mod status;

pub use input::{check_quantity, OptionInput, ProductInput, ShippingInput, ValidOption, ValidProduct, MAX_PRICE};
pub use lifecycle::{decide, Move, MoveRefusal, OrderAction, OrderFacts};
pub use pricing::{price_order, purchase_points, CouponTerms, NotApplicable, PointsAboveRemainder, PriceBreakdown};
pub use status::{OrderStatus, PaymentAttemptStatus, PaymentMethod, ProductStatus};

/// Most units of one option in a cart line or an order line (the tables' CHECKs agree).
pub const MAX_LINE_QUANTITY: i32 = 999;
/// Most lines in a cart, and in one order.
pub const MAX_LINES: usize = 50;
/// Most units an admin sets or adds to one option at once.
pub const MAX_STOCK: i32 = 100_000_000;
