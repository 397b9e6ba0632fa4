//! `PaymentGateway` over the Toss Payments v1 HTTP API, as its public documentation describes it: Basic
//! authentication with the secret key (`<key>:`), JSON bodies, `Idempotency-Key` on every POST, and the
//! error object `{code, message}` beside the HTTP status.

use super::{
    GatewayError, GatewayResult, PaymentGateway, ProviderMethod, ProviderPayment, ProviderStatus, SettlementLine,
    VirtualAccountDue,
};
use crate::breaker::Breaker;
use crate::config::PaymentArgs;
use chrono::{DateTime, FixedOffset, NaiveDate};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::json;

#[derive(Clone)]
pub struct TossPayments {
    client: reqwest::Client,
    base_url: String,
    secret_key: String,
    breaker: Breaker,
}

impl TossPayments {
    pub fn new(args: &PaymentArgs, breaker: Breaker) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(args.timeout()).build()?;
        let base_url = args.gateway_url.trim_end_matches('/').to_owned();
        Ok(Self { client, base_url, secret_key: args.secret_key.clone(), breaker })
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    fn post(&self, path: &str, idempotency_key: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base_url))
            .basic_auth(&self.secret_key, Some(""))
            .header("Idempotency-Key", idempotency_key)
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base_url)).basic_auth(&self.secret_key, Some(""))
    }

    /// Sends `request` behind the breaker and reads a 2xx body as `T`; every other outcome becomes a
    /// `GatewayError` that says whether anything may have happened.
    async fn call<T: for<'de> Deserialize<'de>>(&self, request: RequestBuilder) -> GatewayResult<T> {
        let ticket = self.breaker.admit().map_err(|open| GatewayError::Unavailable(open.to_string()))?;
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                ticket.failed();
                return Err(transport_error(&error));
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => {
                ticket.failed();
                return Err(GatewayError::Unknown(format!("the answer was cut off: {error}")));
            }
        };
        if status.is_server_error() {
            ticket.failed();
        } else {
            ticket.succeeded();
        }
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|error| {
                GatewayError::Unknown(format!("an answer that is not the documented shape: {error}"))
            });
        }
        Err(refusal(status, &body))
    }
}

/// A failed send: a connection that was never made sent nothing; anything else may have been received.
fn transport_error(error: &reqwest::Error) -> GatewayError {
    if error.is_connect() {
        GatewayError::Unavailable(error.to_string())
    } else if error.is_timeout() {
        GatewayError::Unknown(format!("no answer in time: {error}"))
    } else {
        let mut chain = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            chain.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        GatewayError::Unknown(chain)
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// The provider's error object, by its documented codes.
fn refusal(status: StatusCode, body: &[u8]) -> GatewayError {
    let Ok(ErrorBody { code, message }) = serde_json::from_slice(body) else {
        let text = String::from_utf8_lossy(body).chars().take(200).collect::<String>();
        return GatewayError::Unknown(format!("{status} without an error object: {text}"));
    };
    match code.as_str() {
        "ALREADY_PROCESSED_PAYMENT" | "ALREADY_CANCELED_PAYMENT" => GatewayError::AlreadyProcessed { code },
        "NOT_FOUND_PAYMENT" | "NOT_FOUND_PAYMENT_SESSION" | "NOT_FOUND" => GatewayError::NotFound { code },
        // "Temporary error, try again": whether the request was processed is not said.
        "PROVIDER_ERROR" | "FAILED_INTERNAL_SYSTEM_PROCESSING" | "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING" => {
            GatewayError::Unknown(format!("{code}: {message}"))
        }
        _ if status.is_server_error() => GatewayError::Unknown(format!("{status} {code}: {message}")),
        _ if status == StatusCode::FORBIDDEN || code.starts_with("REJECT_") || code.contains("_REJECT_") => {
            GatewayError::Declined { code, message }
        }
        _ => GatewayError::Refused { code, message },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody {
    payment_key: String,
    order_id: String,
    status: String,
    method: Option<String>,
    total_amount: i64,
    balance_amount: i64,
    approved_at: Option<DateTime<FixedOffset>>,
    virtual_account: Option<VirtualAccountBody>,
    secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VirtualAccountBody {
    account_number: String,
    bank: String,
    due_date: DateTime<FixedOffset>,
}

/// The provider names methods in Korean by default, in English with `Accept-Language: en-US`.
fn method(name: Option<&str>) -> ProviderMethod {
    match name {
        Some("카드" | "CARD") => ProviderMethod::Card,
        Some("계좌이체" | "TRANSFER") => ProviderMethod::Transfer,
        Some("가상계좌" | "VIRTUAL_ACCOUNT") => ProviderMethod::VirtualAccount,
        Some("휴대폰" | "MOBILE_PHONE") => ProviderMethod::MobilePhone,
        _ => ProviderMethod::Other,
    }
}

impl TryFrom<PaymentBody> for ProviderPayment {
    type Error = GatewayError;

    fn try_from(body: PaymentBody) -> GatewayResult<Self> {
        let status = match body.status.as_str() {
            "READY" | "IN_PROGRESS" => ProviderStatus::Ready,
            "WAITING_FOR_DEPOSIT" => ProviderStatus::WaitingForDeposit,
            "DONE" => ProviderStatus::Done,
            "CANCELED" => ProviderStatus::Canceled,
            "PARTIAL_CANCELED" => ProviderStatus::PartialCanceled,
            "ABORTED" | "EXPIRED" => ProviderStatus::Failed,
            other => return Err(GatewayError::Unknown(format!("an undocumented payment status {other}"))),
        };
        Ok(ProviderPayment {
            payment_key: body.payment_key,
            order_id: body.order_id,
            status,
            method: method(body.method.as_deref()),
            total_amount: body.total_amount,
            balance_amount: body.balance_amount,
            approved_at: body.approved_at,
            virtual_account: body.virtual_account.map(|account| VirtualAccountDue {
                account_number: account.account_number,
                bank: account.bank,
                due_date: account.due_date,
            }),
            secret: body.secret,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettlementBody {
    payment_key: String,
    transaction_key: String,
    order_id: String,
    method: Option<String>,
    amount: i64,
    #[serde(default)]
    fees: Vec<FeeBody>,
    pay_out_amount: i64,
    sold_date: NaiveDate,
    paid_out_date: NaiveDate,
}

#[derive(Deserialize)]
struct FeeBody {
    fee: i64,
}

impl From<SettlementBody> for SettlementLine {
    fn from(body: SettlementBody) -> Self {
        SettlementLine {
            fee: body.fees.iter().map(|fee| fee.fee).sum(),
            payment_key: body.payment_key,
            transaction_key: body.transaction_key,
            order_id: body.order_id,
            method: method(body.method.as_deref()),
            amount: body.amount,
            pay_out_amount: body.pay_out_amount,
            sold_date: body.sold_date,
            paid_out_date: body.paid_out_date,
        }
    }
}

/// A path segment as the provider receives it: ids are ours or the provider's, never free text, but a
/// key with a `/` or `?` must not change the route.
fn segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl PaymentGateway for TossPayments {
    async fn confirm(
        &self,
        payment_key: &str,
        order_id: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> GatewayResult<ProviderPayment> {
        let body = json!({ "paymentKey": payment_key, "orderId": order_id, "amount": amount });
        let answer: PaymentBody = self.call(self.post("/v1/payments/confirm", idempotency_key).json(&body)).await?;
        answer.try_into()
    }

    async fn payment_of_order(&self, order_id: &str) -> GatewayResult<Option<ProviderPayment>> {
        match self.call::<PaymentBody>(self.get(&format!("/v1/payments/orders/{}", segment(order_id)))).await {
            Ok(answer) => answer.try_into().map(Some),
            Err(GatewayError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn cancel(&self, payment_key: &str, reason: &str, idempotency_key: &str) -> GatewayResult<ProviderPayment> {
        let path = format!("/v1/payments/{}/cancel", segment(payment_key));
        let body = json!({ "cancelReason": reason });
        let answer: PaymentBody = self.call(self.post(&path, idempotency_key).json(&body)).await?;
        answer.try_into()
    }

    async fn settlements(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        page: u32,
        size: u32,
    ) -> GatewayResult<Vec<SettlementLine>> {
        let query = [
            ("startDate", start.to_string()),
            ("endDate", end.to_string()),
            ("page", page.to_string()),
            ("size", size.to_string()),
        ];
        let lines: Vec<SettlementBody> = self.call(self.get("/v1/settlements").query(&query)).await?;
        Ok(lines.into_iter().map(SettlementLine::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real provider speaks HTTPS only: a client built without TLS would refuse the URL before any
    /// connection (a request error that says nothing of the provider). With TLS, a server that does not
    /// speak it fails the handshake: the provider is unreachable, and nothing was sent.
    #[tokio::test]
    async fn an_https_gateway_is_spoken_to_with_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket); // not TLS: the handshake cannot complete
            }
        });
        let args = PaymentArgs { gateway_url: format!("https://127.0.0.1:{port}"), ..PaymentArgs::default() };
        let gateway =
            TossPayments::new(&args, Breaker::new("payments-tls-test", &Default::default())).expect("a client");
        let answer = gateway.payment_of_order("settle-order-1").await;
        assert!(matches!(answer, Err(GatewayError::Unavailable(_))), "{answer:?}");
    }

    #[test]
    fn documented_error_codes_map_to_what_is_known_of_the_outcome() {
        let body = |code: &str| format!(r#"{{"code":"{code}","message":"m"}}"#).into_bytes();
        let cases = [
            (400, "ALREADY_PROCESSED_PAYMENT", "already"),
            (404, "NOT_FOUND_PAYMENT", "not found"),
            (404, "NOT_FOUND_PAYMENT_SESSION", "not found"),
            (403, "REJECT_CARD_PAYMENT", "declined"),
            (400, "INVALID_REJECT_CARD", "declined"),
            (400, "PROVIDER_ERROR", "unknown"),
            (500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "unknown"),
            (502, "ANYTHING", "unknown"),
            (400, "INVALID_REQUEST", "refused"),
            (401, "UNAUTHORIZED_KEY", "refused"),
        ];
        for (status, code, expected) in cases {
            let error = refusal(StatusCode::from_u16(status).expect("status"), &body(code));
            let kind = match error {
                GatewayError::AlreadyProcessed { .. } => "already",
                GatewayError::NotFound { .. } => "not found",
                GatewayError::Declined { .. } => "declined",
                GatewayError::Unknown(_) => "unknown",
                GatewayError::Refused { .. } => "refused",
                GatewayError::Unavailable(_) => "unavailable",
            };
            assert_eq!(kind, expected, "{status} {code}");
        }
        let html = refusal(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(html.outcome_unknown(), "a proxy's page says nothing of the outcome");
    }

    /// The documentation's example Payment (a card payment, abridged to the fields read) parses.
    #[test]
    fn the_documented_payment_example_parses() {
        let example = r#"{"mId":"tosspayments","version":"2022-11-16","lastTransactionKey":"B7103F204998813B889C77C043D09502",
            "paymentKey":"5zJ4xY7m0kODnyRpQWGrN2xqGlNvLrKwv1M9ENjbeoPaZdL6","orderId":"a4CWyWY5m89PNh7xJwhk1",
            "orderName":"토스 티셔츠 외 2건","currency":"KRW","method":"카드","status":"DONE",
            "requestedAt":"2024-02-13T12:17:57+09:00","approvedAt":"2024-02-13T12:18:14+09:00",
            "totalAmount":15000,"balanceAmount":15000,"suppliedAmount":13636,"vat":1364,"cancels":null,
            "secret":null,"failure":null,"virtualAccount":null}"#;
        let body: PaymentBody = serde_json::from_str(example).expect("the example");
        let payment = ProviderPayment::try_from(body).expect("a known status");
        assert_eq!(
            (payment.status, payment.method, payment.total_amount, payment.balance_amount),
            (ProviderStatus::Done, ProviderMethod::Card, 15_000, 15_000)
        );
        assert_eq!(payment.order_id, "a4CWyWY5m89PNh7xJwhk1");
    }

    #[test]
    fn a_path_segment_cannot_change_the_route() {
        assert_eq!(segment("order-17_a.b"), "order-17_a.b");
        assert_eq!(segment("../confirm?x=1"), "..%2Fconfirm%3Fx%3D1");
    }
}
