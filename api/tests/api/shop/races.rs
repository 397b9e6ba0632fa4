//! Hundreds of orders, each raced by a random mix of payment, cancel, expiry and the refund path, in a
//! random interleaving: every order ends in one status that agrees with what the provider holds, and
//! stock, coupons and points add up. The seed is printed, so a failing interleaving can be replayed
//! (`RACE_SEED=<seed>`).

use super::payments::{app_with_sandbox, pay, resolve, resolve_after};
use super::support::{assert_invariants, cancel, coupon, discount, earn, order_body, place, product};
use crate::coupons::support::{admin_token, create_users};
use crate::helpers::TestApp;
use domain::Role;
use futures::{stream, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use testkit::sandbox::OwnSandbox;

const ORDERS: usize = 200;
/// The provider's timeout here; the passes treat an attempt as unanswered after twice that, as the
/// worker does (a confirm the client gave up on may still be approved until then).
const TIMEOUT_MS: u64 = 2_000;
const STOCK: i32 = 1_000;

/// xorshift64*: enough randomness to pick actions, reproducible from its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % sides
    }
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Pay,
    Cancel,
    /// The payment window closes and a resolution pass runs.
    Expire,
    /// Ship, deliver and ask for a refund (each refused while the order is not there yet).
    ShipDeliverRefund,
}

async fn act(app: &TestApp, sandbox: &OwnSandbox, buyer_token: &str, order: &Value, act: Act) {
    let id = order["id"].as_i64().expect("id");
    match act {
        Act::Pay => {
            if let Ok(key) =
                sandbox.checkout(order["paymentOrderId"].as_str().unwrap_or(""), amount(order), "CARD").await
            {
                let _ = pay(app, buyer_token, order, &key, amount(order)).await;
            }
        }
        Act::Cancel => {
            let _ = cancel(app, buyer_token, id).await;
        }
        Act::Expire => {
            // The window ends now (as it would have, had the order been placed 15 minutes ago): the time is
            // taken once the row is locked, so an attempt that began before stays inside the window.
            sqlx::query(
                "UPDATE orders SET payment_due_at = clock_timestamp() WHERE id = $1 AND status = 'PENDING_PAYMENT'",
            )
            .bind(id)
            .execute(&app.env.pool)
            .await
            .expect("closing the window");
            resolve_after(app, sandbox, Duration::from_millis(2 * TIMEOUT_MS)).await;
        }
        Act::ShipDeliverRefund => {
            let admin = admin_token(app);
            let parcel = json!({ "carrier": "CJ Logistics", "trackingNumber": format!("R{id}") });
            let _ = app.post_json(&format!("/api/v3/orders/{id}/ship"), &admin, &parcel).await;
            let _ = app.post_json(&format!("/api/v3/orders/{id}/deliver"), &admin, &json!(null)).await;
            let refund = json!({ "reason": "raced" });
            let _ = app.post_json(&format!("/api/v3/orders/{id}/refund"), buyer_token, &refund).await;
        }
    }
}

fn amount(order: &Value) -> i64 {
    order["amountToPay"].as_i64().expect("amount")
}

#[tokio::test]
async fn payment_expiry_cancel_and_refund_racing_on_each_order_leave_it_consistent_with_the_provider() {
    let seed = std::env::var("RACE_SEED").ok().and_then(|raw| raw.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64 | 1
    });
    println!("RACE_SEED={seed}");
    let mut dice = Dice(seed);
    let (app, sandbox) = app_with_sandbox(TIMEOUT_MS).await;
    let buyers = create_users(&app, 10).await;
    let (product, options) = product(&app, 10_000, &[("one size", 0, STOCK)]).await;
    let mut orders = Vec::new();
    for (n, &buyer) in buyers.iter().cycle().take(ORDERS).enumerate() {
        let extra = match n % 3 {
            0 => json!({ "couponId": coupon(&app, buyer, discount("FIXED_AMOUNT", 1_000, 0, None)).await }),
            1 => {
                earn(&app, buyer, 500).await;
                json!({ "points": 500 })
            }
            _ => json!({}),
        };
        let placed = place(&app, buyer, &order_body(&[(product, options[0], 1)], extra)).await;
        assert_eq!(placed.status(), 201);
        orders.push((buyer, placed.json::<Value>().await.expect("json")));
    }
    // Per order: the payment, racing some of the other acts; then the rest, racing each other (so the
    // refund path meets a paid order, as well as one still waiting for its payment).
    let plans: Vec<(Vec<Act>, Vec<Act>)> = (0..ORDERS)
        .map(|_| {
            let all = [Act::Pay, Act::Cancel, Act::Expire, Act::ShipDeliverRefund];
            let (mut first, mut then) = (vec![Act::Pay], Vec::new());
            for _ in 0..1 + dice.roll(3) {
                let act = all[dice.roll(4) as usize];
                if dice.roll(2) == 0 {
                    first.push(act)
                } else {
                    then.push(act)
                }
            }
            (first, then)
        })
        .collect();

    stream::iter(orders.iter().zip(&plans))
        .for_each_concurrent(16, |((buyer, order), (first, then))| {
            let (app, sandbox) = (&app, &sandbox);
            async move {
                let token = app.token(*buyer, Role::User);
                futures::future::join_all(first.iter().map(|&step| act(app, sandbox, &token, order, step))).await;
                futures::future::join_all(then.iter().map(|&step| act(app, sandbox, &token, order, step))).await;
            }
        })
        .await;
    // What an answer never said is settled by the resolution, as the worker would: once every attempt
    // is older than the worker's stale_after (not a wait for a condition: the time is the rule).
    tokio::time::sleep(Duration::from_millis(2 * TIMEOUT_MS)).await;
    for _ in 0..5 {
        if resolve(&app, &sandbox).await == Default::default() {
            break;
        }
    }

    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for (_, order) in &orders {
        let id = order["id"].as_i64().expect("id");
        let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(&app.env.pool)
            .await
            .expect("status");
        let at_provider =
            sandbox.payment_of_order(order["paymentOrderId"].as_str().expect("ref")).await.expect("look-up");
        let held = at_provider
            .as_ref()
            .filter(|payment| payment["status"] == "DONE")
            .and_then(|payment| payment["balanceAmount"].as_i64())
            .unwrap_or(0);
        let keeps_money = matches!(status.as_str(), "PAID" | "SHIPPED" | "DELIVERED" | "CONFIRMED");
        let expected = if keeps_money { amount(order) } else { 0 };
        assert_eq!(
            held,
            expected,
            "order {id} is {status} while the provider holds {held} (seed {seed}, plan {:?}): {at_provider:?}",
            plans[orders.iter().position(|(_, o)| o["id"] == id).unwrap_or(0)]
        );
        *statuses.entry(status).or_default() += 1;
    }
    println!("final statuses: {statuses:?}");
    for outcome in ["PAID", "CANCELLED", "EXPIRED", "REFUNDED"] {
        assert!(statuses.contains_key(outcome), "the races reached no {outcome} order: {statuses:?} (seed {seed})");
    }
    assert_invariants(&app, &[(options[0], STOCK)]).await;
}
