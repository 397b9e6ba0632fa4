//! The sandbox's state: payments by key, the answers given under each idempotency key, the faults it was
//! told to play, and how often each endpoint was called. Every change to a payment or an answer is one
//! JSON line appended to the journal (flushed before the answer goes out), and a start replays it: a
//! restart, or a kill, loses nothing that was answered. The webhook URL the merchant registered and the
//! deposit callbacks owed to it are journaled too, so a restart still delivers what it owed (`webhooks`).

use crate::wire::{
    Cancel, ConfirmRequest, DepositCallback, ErrorBody, Method, Payment, PaymentStatus, Settlement, VirtualAccount,
};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::Path,
    time::Instant,
};

/// A fault the sandbox plays on confirm, for one payment key or for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Fault {
    /// The card company refuses (403 `REJECT_CARD_PAYMENT`); nothing is approved.
    Decline,
    /// 500 `FAILED_INTERNAL_SYSTEM_PROCESSING`; nothing is approved.
    ServerError,
    /// No answer before the client gives up; nothing is approved.
    Hang,
    /// Approved, then no answer: the client cannot know that it was.
    DropAnswer,
}

/// A distortion of a payment's settlement lines, to show a reconciliation each kind of mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SettlementFault {
    /// The payment's lines are left out.
    Omit,
    /// The lines say 100 won more than was taken.
    Amount,
    /// The fee is one won more than the method's rate gives.
    Fee,
    /// The payout comes a day later than usual.
    PayoutDate,
}

/// A payment the provider approved in the past (tests and benchmarks backfill days gone by).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettledPayment {
    /// The key to give it (a new one when absent), e.g. to mirror a merchant's records.
    #[serde(default)]
    pub payment_key: Option<String>,
    pub order_id: String,
    pub amount: i64,
    pub method: Method,
    pub approved_at: DateTime<FixedOffset>,
    /// When the provider gave it all back, if it did.
    #[serde(default)]
    pub canceled_at: Option<DateTime<FixedOffset>>,
}

/// A recorded answer: its status and body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Payment(Box<Payment>),
    Answer {
        key: String,
        answer: Answer,
    },
    /// The merchant's deposit callback URL (none: no webhook is sent).
    Webhook {
        url: Option<String>,
    },
    /// A deposit callback owed to the merchant.
    Callback {
        id: u64,
        body: DepositCallback,
    },
    /// Delivered (answered 2xx), or given up after the provider's last try.
    CallbackEnded {
        id: u64,
        delivered: bool,
    },
}

/// A deposit callback not delivered yet: how often it was sent and when it is sent next.
#[derive(Debug, Clone)]
pub struct OwedCallback {
    pub body: DepositCallback,
    pub sends: u32,
    pub next_at: Instant,
}

pub struct Store {
    merchant: String,
    payments: HashMap<String, Payment>,
    by_order: HashMap<String, String>,
    /// Order ids a payment was approved (or an account issued) under, cancelled since or not: the provider
    /// takes no other payment under them.
    spent_order_ids: HashSet<String>,
    answers: HashMap<String, Answer>,
    faults: HashMap<Option<String>, (Fault, Option<u32>)>,
    settlement_faults: HashMap<String, SettlementFault>,
    /// The lines of the last range asked for, while nothing changed: a listing is read page by page.
    settlement_cache: Option<((NaiveDate, NaiveDate), Vec<Settlement>)>,
    pub calls: BTreeMap<&'static str, u64>,
    journal: File,
    next_key: u64,
    deposit_callback_url: Option<String>,
    owed_callbacks: BTreeMap<u64, OwedCallback>,
    next_callback: u64,
}

/// Korea's offset: the provider answers in KST.
fn kst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("a valid offset")
}

fn now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&kst())
}

fn error(code: &str, message: &str) -> ErrorBody {
    ErrorBody { code: code.to_owned(), message: message.to_owned() }
}

/// The provider's refusal of a second payment under an order id: one approved payment per order id, even
/// once it is cancelled.
fn duplicated_order_id() -> ErrorBody {
    error("DUPLICATED_ORDER_ID", "이미 승인 및 취소가 진행된 중복된 주문번호 입니다. 다른 주문번호로 진행해주세요.")
}

/// What a confirm comes to.
pub enum Confirmed {
    Answer(u16, serde_json::Value),
    /// Play this fault; for `DropAnswer` the payment is approved already.
    Fault(Fault),
}

impl Store {
    pub fn open(journal: &Path, merchant: &str) -> anyhow::Result<Self> {
        if let Some(parent) = journal.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut store = Self {
            merchant: merchant.to_owned(),
            payments: HashMap::new(),
            by_order: HashMap::new(),
            spent_order_ids: HashSet::new(),
            answers: HashMap::new(),
            faults: HashMap::new(),
            settlement_faults: HashMap::new(),
            settlement_cache: None,
            calls: BTreeMap::new(),
            journal: OpenOptions::new().create(true).append(true).open(journal)?,
            next_key: 0,
            deposit_callback_url: None,
            owed_callbacks: BTreeMap::new(),
            next_callback: 0,
        };
        for line in BufReader::new(File::open(journal)?).lines() {
            match serde_json::from_str::<Line>(&line?)? {
                Line::Payment(payment) => store.remember(*payment),
                Line::Answer { key, answer } => {
                    store.answers.insert(key, answer);
                }
                Line::Webhook { url } => store.deposit_callback_url = url,
                Line::Callback { id, body } => {
                    store.owed_callbacks.insert(id, OwedCallback { body, sends: 0, next_at: Instant::now() });
                    store.next_callback = store.next_callback.max(id + 1);
                }
                Line::CallbackEnded { id, .. } => {
                    store.owed_callbacks.remove(&id);
                }
            }
        }
        store.next_key = store.payments.len() as u64;
        Ok(store)
    }

    /// Keeps `payment`; the order's look-up shows it unless another key of the order holds money or waits
    /// for a deposit: a window opened again for a paid order does not hide the payment that holds its
    /// money.
    fn remember(&mut self, payment: Payment) {
        let holds = |status: PaymentStatus| matches!(status, PaymentStatus::Done | PaymentStatus::WaitingForDeposit);
        let shown = self.by_order(&payment.order_id);
        if !shown.is_some_and(|shown| shown.payment_key != payment.payment_key && holds(shown.status)) {
            self.by_order.insert(payment.order_id.clone(), payment.payment_key.clone());
        }
        if payment.approved_at.is_some() || payment.virtual_account.is_some() {
            self.spent_order_ids.insert(payment.order_id.clone());
        }
        self.payments.insert(payment.payment_key.clone(), payment);
    }

    fn write(&mut self, line: &Line) -> anyhow::Result<()> {
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        self.journal.write_all(text.as_bytes())?;
        self.journal.flush()?;
        Ok(())
    }

    fn save(&mut self, payment: Payment) -> anyhow::Result<Payment> {
        self.write(&Line::Payment(Box::new(payment.clone())))?;
        self.settlement_cache = None;
        self.remember(payment.clone());
        Ok(payment)
    }

    pub fn count(&mut self, endpoint: &'static str) {
        *self.calls.entry(endpoint).or_default() += 1;
    }

    /// The answer already given under `key`, if any (the provider answers a repeated key the same way).
    pub fn answer_of(&self, key: &str) -> Option<Answer> {
        self.answers.get(key).cloned()
    }

    pub fn record_answer(&mut self, key: String, answer: Answer) -> anyhow::Result<()> {
        self.write(&Line::Answer { key: key.clone(), answer: answer.clone() })?;
        self.answers.insert(key, answer);
        Ok(())
    }

    /// The buyer's checkout, as the provider's payment window does it: a payment key for this order and
    /// amount, to be confirmed by the merchant's server; refused for an order id a payment was approved
    /// under before, as the provider refuses it.
    pub fn checkout(
        &mut self,
        order_id: &str,
        order_name: &str,
        amount: i64,
        method: Method,
    ) -> anyhow::Result<Result<Payment, ErrorBody>> {
        if self.spent_order_ids.contains(order_id) {
            return Ok(Err(duplicated_order_id()));
        }
        let payment = self.ready(order_id, order_name, amount, method);
        Ok(Ok(self.save(payment)?))
    }

    /// A new payment waiting for the merchant's confirm (not kept yet).
    fn ready(&mut self, order_id: &str, order_name: &str, amount: i64, method: Method) -> Payment {
        self.next_key += 1;
        let payment_key = format!("sbx_{}_{}", self.next_key, uuid::Uuid::new_v4().simple());
        Payment {
            m_id: self.merchant.clone(),
            version: "2022-11-16".to_owned(),
            payment_key,
            order_id: order_id.to_owned(),
            order_name: order_name.to_owned(),
            currency: "KRW".to_owned(),
            method,
            status: PaymentStatus::Ready,
            total_amount: amount,
            balance_amount: amount,
            requested_at: now(),
            approved_at: None,
            last_transaction_key: None,
            cancels: None,
            virtual_account: None,
            secret: None,
            failure: None,
        }
    }

    pub fn set_fault(&mut self, payment_key: Option<String>, fault: Option<Fault>, times: Option<u32>) {
        match fault {
            Some(fault) => self.faults.insert(payment_key, (fault, times)),
            None => self.faults.remove(&payment_key),
        };
    }

    /// The fault to play for `payment_key` now, if any (a per-key fault before the global one).
    fn take_fault(&mut self, payment_key: &str) -> Option<Fault> {
        let slot = [Some(payment_key.to_owned()), None].into_iter().find(|slot| self.faults.contains_key(slot))?;
        let (fault, times) = self.faults.get_mut(&slot)?;
        let fault = *fault;
        match times {
            Some(0) => return None,
            Some(left) => *left -= 1,
            None => {}
        }
        Some(fault)
    }

    pub fn confirm(&mut self, request: &ConfirmRequest) -> anyhow::Result<Confirmed> {
        let Some(payment) = self.payments.get(&request.payment_key).cloned() else {
            let body = error("NOT_FOUND_PAYMENT_SESSION", "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.");
            return Ok(Confirmed::Answer(404, serde_json::to_value(body)?));
        };
        if payment.order_id != request.order_id || payment.total_amount != request.amount {
            let body = error("INVALID_REQUEST", "요청한 주문번호 또는 결제 금액이 결제 요청과 다릅니다.");
            return Ok(Confirmed::Answer(400, serde_json::to_value(body)?));
        }
        if payment.status != PaymentStatus::Ready {
            let body = error("ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다.");
            return Ok(Confirmed::Answer(400, serde_json::to_value(body)?));
        }
        if self.spent_order_ids.contains(&payment.order_id) {
            return Ok(Confirmed::Answer(400, serde_json::to_value(duplicated_order_id())?));
        }
        let fault = self.take_fault(&request.payment_key);
        match fault {
            Some(Fault::Decline) => {
                let body = error("REJECT_CARD_PAYMENT", "한도초과 혹은 잔액부족으로 결제에 실패했습니다.");
                return Ok(Confirmed::Answer(403, serde_json::to_value(body)?));
            }
            Some(fault @ (Fault::ServerError | Fault::Hang)) => return Ok(Confirmed::Fault(fault)),
            Some(Fault::DropAnswer) | None => {}
        }
        let approved = self.save(approve(payment))?;
        match fault {
            Some(Fault::DropAnswer) => Ok(Confirmed::Fault(Fault::DropAnswer)),
            _ => Ok(Confirmed::Answer(200, serde_json::to_value(approved)?)),
        }
    }

    pub fn by_order(&self, order_id: &str) -> Option<&Payment> {
        self.by_order.get(order_id).and_then(|key| self.payments.get(key))
    }

    pub fn by_key(&self, payment_key: &str) -> Option<&Payment> {
        self.payments.get(payment_key)
    }

    /// The buyer paid into the virtual account of `order_id`: the payment is DONE.
    pub fn deposit(&mut self, order_id: &str) -> anyhow::Result<Option<Payment>> {
        let Some(mut payment) = self.by_order(order_id).cloned() else { return Ok(None) };
        if payment.status != PaymentStatus::WaitingForDeposit {
            return Ok(None);
        }
        payment.status = PaymentStatus::Done;
        payment.approved_at = Some(now());
        payment.last_transaction_key = Some(transaction_key());
        let payment = self.save(payment)?;
        if self.deposit_callback_url.is_some() {
            let body = DepositCallback {
                created_at: now().naive_local().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                secret: payment.secret.clone().unwrap_or_default(),
                status: payment.status,
                transaction_key: payment.last_transaction_key.clone().unwrap_or_default(),
                order_id: payment.order_id.clone(),
            };
            let id = self.next_callback;
            self.write(&Line::Callback { id, body: body.clone() })?;
            self.next_callback += 1;
            self.owed_callbacks.insert(id, OwedCallback { body, sends: 0, next_at: Instant::now() });
        }
        Ok(Some(payment))
    }

    /// Registers the merchant's deposit callback URL (as in the provider's developer centre); `None` stops
    /// the callbacks of later deposits.
    pub fn set_deposit_callback_url(&mut self, url: Option<String>) -> anyhow::Result<()> {
        if url != self.deposit_callback_url {
            self.write(&Line::Webhook { url: url.clone() })?;
            self.deposit_callback_url = url;
        }
        Ok(())
    }

    /// The callbacks due at `now`, with the URL to send them to (none while no URL is registered), and
    /// when the next one not due yet is.
    pub fn due_callbacks(&self, now: Instant) -> (Vec<(u64, String, DepositCallback)>, Option<Instant>) {
        let Some(url) = &self.deposit_callback_url else { return (Vec::new(), None) };
        let due = self.owed_callbacks.iter().filter(|(_, owed)| owed.next_at <= now);
        let due = due.map(|(id, owed)| (*id, url.clone(), owed.body.clone())).collect();
        let next = self.owed_callbacks.values().map(|owed| owed.next_at).filter(|at| *at > now).min();
        (due, next)
    }

    /// Records a send of callback `id`: delivered, or sent again after `retry_after(sends)`, until the
    /// provider's last try.
    pub fn callback_sent(
        &mut self,
        id: u64,
        delivered: bool,
        retry_after: impl Fn(u32) -> Option<std::time::Duration>,
    ) -> anyhow::Result<()> {
        let Some(owed) = self.owed_callbacks.get_mut(&id) else { return Ok(()) };
        owed.sends += 1;
        let retry = if delivered { None } else { retry_after(owed.sends) };
        match retry {
            Some(wait) => owed.next_at = Instant::now() + wait,
            None => {
                self.owed_callbacks.remove(&id);
                self.write(&Line::CallbackEnded { id, delivered })?;
            }
        }
        Ok(())
    }

    /// Cancels the whole balance of a payment (the provider's full cancel).
    pub fn cancel(&mut self, payment_key: &str, reason: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        let Some(mut payment) = self.payments.get(payment_key).cloned() else {
            return Ok((404, serde_json::to_value(error("NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."))?));
        };
        match payment.status {
            PaymentStatus::Done | PaymentStatus::WaitingForDeposit => {}
            PaymentStatus::Canceled => {
                let body = error("ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다.");
                return Ok((400, serde_json::to_value(body)?));
            }
            _ => {
                let body = error("NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다.");
                return Ok((403, serde_json::to_value(body)?));
            }
        }
        let transaction_key = transaction_key();
        let cancel = Cancel {
            cancel_amount: payment.balance_amount,
            cancel_reason: reason.to_owned(),
            canceled_at: now(),
            transaction_key: transaction_key.clone(),
        };
        payment.cancels.get_or_insert_with(Vec::new).push(cancel);
        payment.balance_amount = 0;
        payment.status = PaymentStatus::Canceled;
        payment.last_transaction_key = Some(transaction_key);
        Ok((200, serde_json::to_value(self.save(payment)?)?))
    }

    /// Records payments the provider approved in the past, as its settlement listing shows them.
    pub fn backfill(&mut self, payments: &[SettledPayment]) -> anyhow::Result<Vec<Payment>> {
        let mut saved = Vec::with_capacity(payments.len());
        for settled in payments {
            let mut payment = self.ready(&settled.order_id, "backfilled", settled.amount, settled.method);
            if let Some(key) = &settled.payment_key {
                payment.payment_key.clone_from(key);
            }
            payment.status = PaymentStatus::Done;
            // The provider answers in Korean time, and its listing's days are Korean days.
            let approved_at = settled.approved_at.with_timezone(&kst());
            payment.requested_at = approved_at;
            payment.approved_at = Some(approved_at);
            payment.last_transaction_key = Some(transaction_key());
            if let Some(canceled_at) = settled.canceled_at.map(|at| at.with_timezone(&kst())) {
                let transaction_key = transaction_key();
                let cancel_reason = "backfilled".to_owned();
                let cancel_amount = payment.balance_amount;
                payment.cancels = Some(vec![Cancel { cancel_amount, cancel_reason, canceled_at, transaction_key }]);
                (payment.balance_amount, payment.status) = (0, PaymentStatus::Canceled);
            }
            saved.push(self.save(payment)?);
        }
        Ok(saved)
    }

    pub fn set_settlement_fault(&mut self, payment_key: String, fault: Option<SettlementFault>) {
        match fault {
            Some(fault) => self.settlement_faults.insert(payment_key, fault),
            None => self.settlement_faults.remove(&payment_key),
        };
        self.settlement_cache = None;
    }

    /// One page (from 1) of the settlement lines of the days from `start` to `end`.
    pub fn settlement_page(&mut self, start: NaiveDate, end: NaiveDate, page: usize, size: usize) -> Vec<Settlement> {
        if self.settlement_cache.as_ref().is_none_or(|(range, _)| *range != (start, end)) {
            self.settlement_cache = Some(((start, end), self.settlements(start, end)));
        }
        let lines = self.settlement_cache.as_ref().map(|(_, lines)| lines.as_slice()).unwrap_or_default();
        lines.iter().skip((page - 1) * size).take(size).cloned().collect()
    }

    /// The settlement lines of payments approved (sales) and cancelled (negative lines) on the days from
    /// `start` to `end`, Korean time, oldest first; paid out two days after the sale. The fee is the
    /// method's rate of the amount, rounded toward zero.
    fn settlements(&self, start: NaiveDate, end: NaiveDate) -> Vec<Settlement> {
        let mut lines: Vec<Settlement> = Vec::new();
        for payment in self.payments.values() {
            let Some(approved_at) = payment.approved_at else { continue };
            let fault = self.settlement_faults.get(&payment.payment_key).copied();
            if fault == Some(SettlementFault::Omit) {
                continue;
            }
            let mut events = vec![(approved_at, payment.total_amount, payment.last_transaction_key.clone())];
            for cancel in payment.cancels.iter().flatten() {
                events.push((cancel.canceled_at, -cancel.cancel_amount, Some(cancel.transaction_key.clone())));
            }
            for (at, amount, transaction_key) in events {
                let sold_date = at.date_naive();
                if sold_date < start || sold_date > end {
                    continue;
                }
                let mut amount = amount;
                if fault == Some(SettlementFault::Amount) {
                    amount += amount.signum() * 100;
                }
                let mut fee = amount * payment.method.fee_bps() / 10_000;
                if fault == Some(SettlementFault::Fee) {
                    fee += amount.signum();
                }
                let payout_days = if fault == Some(SettlementFault::PayoutDate) { 3 } else { 2 };
                lines.push(Settlement {
                    m_id: self.merchant.clone(),
                    payment_key: payment.payment_key.clone(),
                    transaction_key: transaction_key.unwrap_or_default(),
                    order_id: payment.order_id.clone(),
                    currency: payment.currency.clone(),
                    method: payment.method,
                    amount,
                    fees: vec![crate::wire::Fee { kind: "BASE".to_owned(), fee }],
                    pay_out_amount: amount - fee,
                    approved_at,
                    sold_date,
                    paid_out_date: sold_date + Duration::days(payout_days),
                });
            }
        }
        lines.sort_by(|a, b| (a.sold_date, &a.transaction_key).cmp(&(b.sold_date, &b.transaction_key)));
        lines
    }
}

fn transaction_key() -> String {
    uuid::Uuid::new_v4().simple().to_string().to_uppercase()
}

/// A confirmed payment: a card (and the others) is DONE at once; a virtual account waits for its deposit.
fn approve(mut payment: Payment) -> Payment {
    let at = now();
    payment.last_transaction_key = Some(transaction_key());
    if payment.method == Method::VirtualAccount {
        payment.status = PaymentStatus::WaitingForDeposit;
        payment.secret = Some(uuid::Uuid::new_v4().simple().to_string());
        payment.virtual_account = Some(VirtualAccount {
            account_number: format!("X{}", &payment.payment_key[payment.payment_key.len() - 12..]),
            bank: "88".to_owned(),
            customer_name: "구매자".to_owned(),
            due_date: at + Duration::days(1),
        });
    } else {
        payment.status = PaymentStatus::Done;
        payment.approved_at = Some(at);
    }
    payment
}
