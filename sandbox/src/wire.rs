//! The provider's shapes as its public documentation shows them (Toss Payments API v1): the Payment object,
//! its cancels and virtual account, the error object `{code, message}`, and a settlement record. Field
//! names are the provider's (camelCase); `method` is the provider's Korean name of the method.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Ready,
    WaitingForDeposit,
    Done,
    Canceled,
    Aborted,
    Expired,
}

/// The methods the sandbox takes, under the names the provider answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "카드")]
    Card,
    #[serde(rename = "계좌이체")]
    Transfer,
    #[serde(rename = "가상계좌")]
    VirtualAccount,
    #[serde(rename = "휴대폰")]
    MobilePhone,
}

impl Method {
    /// The fee the sandbox charges for the method, in basis points of the amount (sandbox figures).
    pub fn fee_bps(self) -> i64 {
        match self {
            Method::Card => 250,
            Method::Transfer => 150,
            Method::VirtualAccount => 100,
            Method::MobilePhone => 350,
        }
    }

    /// The provider's English code of the method (what a checkout names).
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "CARD" => Some(Method::Card),
            "TRANSFER" | "BANK_TRANSFER" => Some(Method::Transfer),
            "VIRTUAL_ACCOUNT" => Some(Method::VirtualAccount),
            "MOBILE_PHONE" | "MOBILE" => Some(Method::MobilePhone),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub m_id: String,
    pub version: String,
    pub payment_key: String,
    pub order_id: String,
    pub order_name: String,
    pub currency: String,
    pub method: Method,
    pub status: PaymentStatus,
    pub total_amount: i64,
    pub balance_amount: i64,
    pub requested_at: DateTime<FixedOffset>,
    pub approved_at: Option<DateTime<FixedOffset>>,
    pub last_transaction_key: Option<String>,
    pub cancels: Option<Vec<Cancel>>,
    pub virtual_account: Option<VirtualAccount>,
    /// For a virtual account: the value the deposit callback carries, to be compared by the merchant.
    pub secret: Option<String>,
    pub failure: Option<ErrorBody>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub cancel_amount: i64,
    pub cancel_reason: String,
    pub canceled_at: DateTime<FixedOffset>,
    pub transaction_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualAccount {
    pub account_number: String,
    pub bank: String,
    pub customer_name: String,
    pub due_date: DateTime<FixedOffset>,
}

/// What every refusal answers with, beside its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmRequest {
    pub payment_key: String,
    pub order_id: String,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequest {
    pub cancel_reason: String,
}

/// One line of `GET /v1/settlements`: a sale (or its cancel) and what the provider pays out for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settlement {
    pub m_id: String,
    pub payment_key: String,
    pub transaction_key: String,
    pub order_id: String,
    pub currency: String,
    pub method: Method,
    /// Negative for a cancel.
    pub amount: i64,
    pub fees: Vec<Fee>,
    pub pay_out_amount: i64,
    pub approved_at: DateTime<FixedOffset>,
    pub sold_date: NaiveDate,
    pub paid_out_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fee {
    #[serde(rename = "type")]
    pub kind: String,
    pub fee: i64,
}

/// The provider's DEPOSIT_CALLBACK webhook body: a deposit into a virtual account (`DONE`), or one taken
/// back. `createdAt` is Korean time without an offset, as the provider writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositCallback {
    pub created_at: String,
    pub secret: String,
    pub status: PaymentStatus,
    pub transaction_key: String,
    pub order_id: String,
}
