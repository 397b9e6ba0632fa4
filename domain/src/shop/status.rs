//! The states and choices the shop stores as text (the CHECK constraints list the same values).

use serde::{Deserialize, Serialize};

macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($variant,)*
        }
    };
}

stored_enum! {
    /// A STOPPED product stays readable (orders show it) but cannot be put in a cart or ordered.
    ProductStatus { Active, Stopped }
}

stored_enum! {
    /// Where an order is in its lifecycle; `lifecycle::decide` says which moves each allows.
    OrderStatus { PendingPayment, Paid, Shipped, Delivered, Confirmed, Cancelled, Expired, Refunded }
}

stored_enum! {
    /// How the buyer pays the amount left after coupon and points (payment itself is another system's).
    PaymentMethod { Card, BankTransfer, VirtualAccount, Mobile }
}

stored_enum! {
    /// An attempt to pay an order: IN_FLIGHT while the provider is asked, then APPROVED, DECLINED (the
    /// buyer's payment was refused), FAILED (the request was refused or never sent), UNKNOWN (no answer
    /// said what happened: the provider's look-up settles it), or WAITING_FOR_DEPOSIT (a virtual account
    /// was handed out: the provider's deposit callback, or its look-up at the due time, settles it).
    PaymentAttemptStatus { InFlight, Approved, Declined, Failed, Unknown, WaitingForDeposit }
}

impl PaymentAttemptStatus {
    /// Still waiting for its outcome: it blocks another attempt, a cancel and the expiry of its order.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            PaymentAttemptStatus::InFlight | PaymentAttemptStatus::Unknown | PaymentAttemptStatus::WaitingForDeposit
        )
    }
}
