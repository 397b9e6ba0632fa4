//! The payment provider behind one port. `PaymentGateway` is what the shop needs of a provider (confirm a
//! payment, look one up by order, cancel one, list settlements); `TossPayments` implements it once, over
//! the provider's public HTTP API (Toss Payments v1). In development and tests it talks to
//! `settle-sandbox`, which speaks the same protocol on a local port; nothing in settle fakes the provider.
//!
//! Every call says what is known about its outcome: a refusal the provider answered (nothing happened),
//! `Unavailable` (the request never reached the provider: nothing happened), or `Unknown` (a timeout, a
//! dropped answer, a 5xx: it may have happened). An unknown outcome is settled later by asking again
//! (`payment_of_order`), never guessed.

mod toss;

pub use toss::TossPayments;

use chrono::{DateTime, FixedOffset, NaiveDate};
use std::future::Future;

/// How the buyer paid, as the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderMethod {
    Card,
    Transfer,
    VirtualAccount,
    MobilePhone,
    Other,
}

impl ProviderMethod {
    /// The provider's English code of the method, as settle stores and shows it.
    pub fn code(self) -> &'static str {
        match self {
            ProviderMethod::Card => "CARD",
            ProviderMethod::Transfer => "TRANSFER",
            ProviderMethod::VirtualAccount => "VIRTUAL_ACCOUNT",
            ProviderMethod::MobilePhone => "MOBILE_PHONE",
            ProviderMethod::Other => "OTHER",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Opened by the buyer, not confirmed by the merchant.
    Ready,
    /// A virtual account was handed out; the money has not arrived.
    WaitingForDeposit,
    /// The provider holds the money.
    Done,
    /// Given back in full.
    Canceled,
    /// Given back in part.
    PartialCanceled,
    /// Failed or expired: no money was taken.
    Failed,
}

/// A payment as the provider knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    pub payment_key: String,
    pub order_id: String,
    pub status: ProviderStatus,
    pub method: ProviderMethod,
    pub total_amount: i64,
    /// What the provider still holds (total minus what was given back).
    pub balance_amount: i64,
    pub approved_at: Option<DateTime<FixedOffset>>,
    pub virtual_account: Option<VirtualAccountDue>,
    /// For a virtual account: what the deposit callback must carry.
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAccountDue {
    pub account_number: String,
    pub bank: String,
    pub due_date: DateTime<FixedOffset>,
}

/// One settlement line: a sale (or a cancel, negative) and what the provider pays out for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementLine {
    pub payment_key: String,
    pub transaction_key: String,
    pub order_id: String,
    pub method: ProviderMethod,
    pub amount: i64,
    pub fee: i64,
    pub pay_out_amount: i64,
    pub sold_date: NaiveDate,
    pub paid_out_date: NaiveDate,
}

/// Why a call did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The buyer's payment was refused (card company, balance, limits): nothing was taken.
    #[error("declined by the provider: {code}: {message}")]
    Declined { code: String, message: String },
    /// The payment was confirmed (or cancelled) before: look it up for its state.
    #[error("already processed at the provider: {code}")]
    AlreadyProcessed { code: String },
    /// The provider knows no such payment (or session).
    #[error("unknown to the provider: {code}")]
    NotFound { code: String },
    /// The provider refused the request itself (a bad amount, key or argument): nothing happened.
    #[error("refused by the provider: {code}: {message}")]
    Refused { code: String, message: String },
    /// The request never reached the provider (refused connection, breaker open): nothing happened.
    #[error("the provider could not be reached: {0}")]
    Unavailable(String),
    /// Sent, but no answer says what happened (timeout, dropped answer, 5xx): ask again later.
    #[error("the outcome at the provider is unknown: {0}")]
    Unknown(String),
}

impl GatewayError {
    /// Whether the call may have taken effect at the provider.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, GatewayError::Unknown(_))
    }
}

pub type GatewayResult<T> = Result<T, GatewayError>;

/// What the shop needs of a payment provider. Every POST carries the caller's idempotency key: a retry
/// with the same key gets the first call's answer and never pays or refunds twice.
pub trait PaymentGateway: Send + Sync {
    /// Confirms (approves) the payment the buyer opened for `order_id` and `amount`.
    fn confirm(
        &self,
        payment_key: &str,
        order_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> impl Future<Output = GatewayResult<ProviderPayment>> + Send;

    /// The payment of `order_id`, if the provider has one.
    fn payment_of_order(&self, order_id: &str) -> impl Future<Output = GatewayResult<Option<ProviderPayment>>> + Send;

    /// Gives the whole payment back to the buyer.
    fn cancel(
        &self,
        payment_key: &str,
        reason: &str,
        idempotency_key: &str,
    ) -> impl Future<Output = GatewayResult<ProviderPayment>> + Send;

    /// The settlement lines of the days from `start` to `end`, one page.
    fn settlements(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        page: u32,
        size: u32,
    ) -> impl Future<Output = GatewayResult<Vec<SettlementLine>>> + Send;
}
