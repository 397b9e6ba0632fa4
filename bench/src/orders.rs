//! The orders load: `seed-orders` makes buyers (a third with a coupon, a third with points when asked)
//! and one order request line per buyer; `orders` sends every line once against a running settle-api and
//! reports placed orders per second and latencies by outcome. What `scripts/bench-orders` drives.

use crate::latency::quantile;
use anyhow::Context;
use domain::{Role, UserId};
use futures::{stream, StreamExt};
use infra::config::PostgresArgs;
use serde_json::json;
use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    time::{Duration, Instant},
};

#[derive(clap::Args, Debug)]
pub struct SeedOrdersArgs {
    /// Buyers to create; buyer n orders option `first_option + n mod (last - first + 1)`.
    #[arg(long)]
    users: u32,
    #[arg(long)]
    first_option: i64,
    #[arg(long)]
    last_option: i64,
    /// Give every third buyer a coupon to use and every third (the next ones) points to spend.
    #[arg(long)]
    with_discounts: bool,
    /// Where to write the "token<TAB>body" lines.
    #[arg(long)]
    out: PathBuf,
    /// Keeps the e-mail addresses of separate seedings apart.
    #[arg(long, default_value = "bench")]
    tag: String,
    #[command(flatten)]
    jwt: infra::config::JwtArgs,
}

pub async fn seed(postgres: &PostgresArgs, args: SeedOrdersArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let users: Vec<i64> = sqlx::query_scalar!(
        "INSERT INTO users (email, password_hash, name)
         SELECT $2 || '-' || g || '@bench-orders.test', 'x', 'Buyer ' || g FROM generate_series(1, $1) g RETURNING id",
        args.users as i32,
        args.tag
    )
    .fetch_all(&pool)
    .await
    .context("creating buyers")?;
    let with_coupon: Vec<i64> = users.iter().step_by(3).copied().collect();
    let with_points: Vec<i64> = users.iter().skip(1).step_by(3).copied().collect();
    let coupons = if args.with_discounts { grant(&pool, &with_coupon, &with_points).await? } else { BTreeMap::new() };
    let options = args.last_option - args.first_option + 1;
    anyhow::ensure!(options > 0, "--last-option must not be below --first-option");
    let products: BTreeMap<i64, i64> = sqlx::query!(
        "SELECT id, product_id FROM product_options WHERE id BETWEEN $1 AND $2",
        args.first_option,
        args.last_option
    )
    .fetch_all(&pool)
    .await?
    .into_iter()
    .map(|row| (row.id, row.product_id))
    .collect();
    let keys = args.jwt.keys()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.out)?);
    for (n, user) in users.iter().enumerate() {
        let option = args.first_option + n as i64 % options;
        let product = products.get(&option).with_context(|| format!("no option {option}"))?;
        let mut body = json!({
            "items": [{ "productId": product, "optionId": option, "quantity": 1 }],
            "shipping": { "receiverName": "Bench Buyer", "phone": "010-0000-0000", "address": "1 Bench-ro" },
            "paymentMethod": "CARD",
        });
        if let Some(coupon) = coupons.get(user) {
            body["couponId"] = json!(coupon);
        }
        if args.with_discounts && n % 3 == 1 {
            body["points"] = json!(200);
        }
        let token = keys.issue(UserId::parse(*user)?, Role::User, Duration::from_secs(6 * 3600))?;
        writeln!(out, "{token}\t{body}")?;
    }
    out.flush()?;
    println!(
        "seeded {} buyers ({} with a coupon, {} with points)",
        users.len(),
        coupons.len(),
        if args.with_discounts { with_points.len() } else { 0 }
    );
    Ok(())
}

/// One coupon (1,000 won off) per buyer of `coupon_holders`, 1,000 points per buyer of `point_holders`.
async fn grant(
    pool: &sqlx::PgPool,
    coupon_holders: &[i64],
    point_holders: &[i64],
) -> anyhow::Result<BTreeMap<i64, i64>> {
    let policy = sqlx::query_scalar!(
        "INSERT INTO coupon_policies (name, discount_type, discount_value, total_quantity, issue_starts_at,
         issue_ends_at, coupon_valid_days)
         VALUES ('bench orders', 'FIXED_AMOUNT', 1000, $1, now() - interval '1 minute', now() + interval '1 day', 7)
         RETURNING id",
        coupon_holders.len().max(1) as i32
    )
    .fetch_one(pool)
    .await?;
    let issued = sqlx::query!(
        "INSERT INTO coupons (policy_id, user_id, valid_until)
         SELECT $1, u, now() + interval '7 days' FROM unnest($2::bigint[]) u RETURNING id, user_id",
        policy,
        coupon_holders
    )
    .fetch_all(pool)
    .await?;
    sqlx::query!(
        "WITH b AS (INSERT INTO point_balances (user_id, balance, version)
                    SELECT u, 1000, 1 FROM unnest($1::bigint[]) u RETURNING user_id),
              earned AS (INSERT INTO points (user_id, kind, amount, reason)
                         SELECT user_id, 'EARN', 1000, 'bench' FROM b RETURNING id, user_id)
         INSERT INTO point_lots (user_id, source, amount, remaining, expires_at, point_id)
         SELECT user_id, 'ADMIN', 1000, 1000, now() + interval '365 days', id FROM earned",
        point_holders
    )
    .execute(pool)
    .await?;
    Ok(issued.into_iter().map(|row| (row.user_id, row.id)).collect())
}

#[derive(clap::Args, Debug)]
pub struct OrdersArgs {
    /// Base URL of settle-api.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// "token<TAB>body" lines from seed-orders; each is sent once.
    #[arg(long)]
    requests: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Pay each placed order through this payment sandbox (its checkout hands out the key, then the
    /// API's payment route confirms it): an answer counts as placed only once the order is PAID.
    #[arg(long)]
    pay_through: Option<String>,
}

/// One answer: its outcome, latency and when (since the start) it came back.
struct Answer {
    outcome: String,
    micros: u64,
    at_micros: u64,
}

pub async fn run(args: OrdersArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.requests).with_context(|| format!("reading {:?}", args.requests))?;
    let lines: Vec<(&str, &str)> = text.lines().filter_map(|line| line.split_once('\t')).collect();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v3/orders", args.url);
    let started = Instant::now();
    let answers: Vec<Answer> = stream::iter(lines)
        .map(|(token, body)| {
            let request =
                client.post(&url).bearer_auth(token).header("content-type", "application/json").body(body.to_owned());
            let (client, api, sandbox) = (&client, &args.url, args.pay_through.as_deref());
            async move {
                let sent = Instant::now();
                let outcome = match sandbox {
                    None => crate::latency::outcome(request.send().await).await,
                    Some(sandbox) => place_and_pay(client, api, sandbox, token, request).await,
                };
                let at_micros = started.elapsed().as_micros() as u64;
                Answer { outcome, micros: sent.elapsed().as_micros() as u64, at_micros }
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    report(&answers, seconds);
    Ok(())
}

/// Places the order, takes a payment key from the sandbox's checkout for its amount, and pays it: "201"
/// once the order is PAID (as when nothing was left to pay), else the first answer that was not.
async fn place_and_pay(
    client: &reqwest::Client,
    api: &str,
    sandbox: &str,
    token: &str,
    request: reqwest::RequestBuilder,
) -> String {
    let placed = match request.send().await {
        Ok(response) if response.status().as_u16() == 201 => {
            response.json::<serde_json::Value>().await.unwrap_or_default()
        }
        other => return crate::latency::outcome(other).await,
    };
    if placed["status"] == "PAID" {
        return "201".to_owned();
    }
    let (order_ref, amount) = (&placed["paymentOrderId"], &placed["amountToPay"]);
    let checkout = serde_json::json!({ "orderId": order_ref, "amount": amount, "method": "CARD" });
    let key = match client.post(format!("{sandbox}/sandbox/checkout")).json(&checkout).send().await {
        Ok(answer) => answer.json::<serde_json::Value>().await.unwrap_or_default()["paymentKey"].clone(),
        Err(error) => return format!("checkout error: {error}"),
    };
    let pay = serde_json::json!({ "paymentKey": key, "amount": amount });
    let paid =
        client.post(format!("{api}/api/v3/orders/{}/payment", placed["id"])).bearer_auth(token).json(&pay).send().await;
    match crate::latency::outcome(paid).await.as_str() {
        "200" => "201".to_owned(),
        other => format!("pay {other}"),
    }
}

fn report(answers: &[Answer], seconds: f64) {
    let mut placed: Vec<u64> = answers.iter().filter(|a| a.outcome == "201").map(|a| a.micros).collect();
    let refusals = || answers.iter().filter(|a| a.outcome == "409 OUT_OF_STOCK");
    let mut sold_out: Vec<u64> = refusals().map(|a| a.micros).collect();
    let selling_until = answers.iter().filter(|a| a.outcome == "201").map(|a| a.at_micros).max().unwrap_or(0);
    // Refusals answered while placed orders were still committing, and after the last one.
    let mut while_selling: Vec<u64> = refusals().filter(|a| a.at_micros <= selling_until).map(|a| a.micros).collect();
    let mut after_selling: Vec<u64> = refusals().filter(|a| a.at_micros > selling_until).map(|a| a.micros).collect();
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for answer in answers {
        *codes.entry(answer.outcome.as_str()).or_default() += 1;
    }
    let codes: Vec<String> = codes.iter().map(|(code, n)| format!("{}:{n}", code.replace(' ', "_"))).collect();
    let selling_seconds = selling_until as f64 / 1e6;
    println!(
        "RESULT attempts={} placed={} seconds={seconds:.2} attempts_per_s={:.0} placed_per_s={:.0} selling_seconds={selling_seconds:.2} placed_per_s_while_selling={:.0} p50_placed_ms={:.1} p99_placed_ms={:.1} sold_out={} p50_sold_out_ms={:.1} p99_sold_out_ms={:.1} sold_out_while_selling={} p99_sold_out_while_selling_ms={:.1} p99_sold_out_after_ms={:.1} codes={}",
        answers.len(),
        placed.len(),
        answers.len() as f64 / seconds,
        placed.len() as f64 / seconds,
        placed.len() as f64 / selling_seconds.max(1e-6),
        quantile(&mut placed, 0.5),
        quantile(&mut placed, 0.99),
        sold_out.len(),
        quantile(&mut sold_out, 0.5),
        quantile(&mut sold_out, 0.99),
        while_selling.len(),
        quantile(&mut while_selling, 0.99),
        quantile(&mut after_selling, 0.99),
        codes.join(","),
    );
}
