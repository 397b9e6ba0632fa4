//! The accounts load: clients that log in (or refresh) in a loop for a while, against a running
//! settle-api, with latencies by outcome. What `scripts/bench-auth` measures logins and refreshes with,
//! and the login storm it runs beside V3 issuance.

use crate::latency::quantile;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct AccountsArgs {
    /// Base URL of settle-api.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// login or refresh.
    #[arg(long, default_value = "login")]
    mode: String,
    /// Accounts signed up for the load (client n uses account n modulo this).
    #[arg(long, default_value_t = 64)]
    accounts: usize,
    /// Clients, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Wait out a 503's Retry-After before trying again, as a well-behaved client does (off: a raw flood).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    honor_retry_after: bool,
    /// Keeps the e-mail addresses of separate runs apart.
    #[arg(long, default_value = "bench")]
    tag: String,
}

const PASSWORD: &str = "plum orbit canyon ledger";

/// Latencies in microseconds of the answers a client got, by kind.
#[derive(Default)]
struct Tally {
    ok: Vec<u64>,
    busy: Vec<u64>,
    other: usize,
}

pub async fn run(args: AccountsArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let emails: Vec<String> = (0..args.accounts).map(|n| format!("{}-{n}@bench-auth.test", args.tag)).collect();
    for email in &emails {
        sign_up(&client, &args.url, email).await?;
    }
    let mut tokens = Vec::new();
    if args.mode == "refresh" {
        for email in &emails {
            tokens.push(
                login(&client, &args.url, email).await?.1["refreshToken"].as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    let until = Instant::now() + Duration::from_secs(args.duration_secs);
    let started = Instant::now();
    let clients: Vec<_> = (0..args.clients)
        .map(|n| {
            let (client, url, mode) = (client.clone(), args.url.clone(), args.mode.clone());
            let patient = args.honor_retry_after;
            let email = emails[n % emails.len()].clone();
            let token = tokens.get(n % tokens.len().max(1)).cloned().unwrap_or_default();
            tokio::spawn(drive(Load { client, url, mode, patient }, email, token, until))
        })
        .collect();
    let mut tally = Tally::default();
    for client in clients {
        let part = client.await.context("a load client")?;
        tally.ok.extend(part.ok);
        tally.busy.extend(part.busy);
        tally.other += part.other;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "RESULT mode={} patient={} clients={} ok={} busy={} other={} seconds={seconds:.2} ok_per_s={:.0} p50_ok_ms={:.1} p99_ok_ms={:.1} p99_busy_ms={:.1}",
        args.mode,
        args.honor_retry_after,
        args.clients,
        tally.ok.len(),
        tally.busy.len(),
        tally.other,
        tally.ok.len() as f64 / seconds,
        quantile(&mut tally.ok, 0.5),
        quantile(&mut tally.ok, 0.99),
        quantile(&mut tally.busy, 0.99),
    );
    Ok(())
}

/// What one client does.
struct Load {
    client: reqwest::Client,
    url: String,
    mode: String,
    /// Honours Retry-After.
    patient: bool,
}

async fn drive(load: Load, email: String, mut token: String, until: Instant) -> Tally {
    let Load { client, url, mode, patient } = load;
    let mut tally = Tally::default();
    while Instant::now() < until {
        let started = Instant::now();
        let answer = if mode == "refresh" {
            post(&client, &format!("{url}/api/v1/users/refresh-token"), json!({ "refreshToken": token })).await
        } else {
            login(&client, &url, &email).await
        };
        let micros = started.elapsed().as_micros() as u64;
        match answer {
            Ok((200, body)) => {
                if let Some(next) = body["refreshToken"].as_str() {
                    token = next.to_owned();
                }
                tally.ok.push(micros);
            }
            Ok((503, _)) => {
                tally.busy.push(micros);
                if patient {
                    // The API says 1 s; waiting it out is what its contract asks of a client.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            _ => tally.other += 1,
        }
    }
    tally
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<(u16, Value)> {
    let response = client.post(url).json(&body).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or_default()))
}

async fn login(client: &reqwest::Client, url: &str, email: &str) -> anyhow::Result<(u16, Value)> {
    post(client, &format!("{url}/api/v1/users/login"), json!({ "email": email, "password": PASSWORD })).await
}

/// Signs `email` up, waiting out a busy hashing pool; an address that exists already is fine.
async fn sign_up(client: &reqwest::Client, url: &str, email: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        let body = json!({ "email": email, "password": PASSWORD, "name": "Bench Shopper" });
        match post(client, &format!("{url}/api/v1/users/signup"), body).await?.0 {
            201 | 409 => return Ok(()),
            503 => tokio::time::sleep(Duration::from_millis(50)).await,
            status => bail!("signing up {email}: HTTP {status}"),
        }
    }
    bail!("signing up {email}: the hashing pool stayed busy")
}
