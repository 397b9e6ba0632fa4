//! SIGTERM in the middle of a V3 rush: settle-api (the real binary) stops taking connections, answers
//! every request it had begun, and exits 0; the issuance worker stopped mid-stream and started again
//! persists every accepted request once. (The worker runs in-process: its shutdown token is what the
//! binary's SIGTERM handler cancels, and `workers/tests/lifecycle.rs` covers the signal itself.)

use crate::coupons::support::{
    coupon_counts, coupons_of_requests, create_policy, create_users, holding_a_place, policy_body, wait_for_verdicts,
    Worker,
};
use crate::helpers::{spawn_app, SECRET};
use domain::Role;
use serde_json::{json, Value};
use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};
use testkit::process::{command_for, eventually, http_status, wait_until, Running};
use tokio::task::JoinSet;

const API: &str = env!("CARGO_BIN_EXE_settle-api");
const CLIENTS: usize = 16;

/// What one request came to: an HTTP answer, or the connection failing before any answer: refused
/// (the listener is closed) or cut (accepted by the kernel, closed by the stopping server before the
/// request was read).
#[derive(Debug, Clone)]
enum Outcome {
    Answered(u16, Value),
    Refused,
    Cut { user: i64, error: String },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_rush_answers_the_requests_in_flight_and_loses_no_accepted_one() {
    let app = spawn_app().await;
    let users = create_users(&app, 4_000).await;
    let policy = create_policy(&app, policy_body(10_000)).await;
    let port = testkit::broker::free_port();
    let mut api = Running::spawn(
        command_for(API.as_ref(), &app.env)
            .env("API_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
    .expect("settle-api");
    assert!(wait_until(Duration::from_secs(30), || http_status(port, "/health/ready") == Some(200)).await);
    let mut worker = Some(Worker::start(&app));

    let tokens: Vec<(i64, String)> = users.iter().map(|user| (*user, app.token(*user, Role::User))).collect();
    let queue = Arc::new(Mutex::new(tokens.into_iter()));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let (queue, outcomes) = (queue.clone(), outcomes.clone());
        // A connection per request: after the stop, a new request is refused rather than queued.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
        let url = format!("http://127.0.0.1:{port}/api/v3/coupons");
        let live = format!("http://127.0.0.1:{port}/health/live");
        clients.spawn(async move {
            loop {
                let next = queue.lock().expect("queue").next();
                // Out of users before the stop took effect (a fast machine): the rush goes on with probes,
                // which issue nothing, until the server refuses; so it outlasts the stop by construction.
                let Some((user, token)) = next else {
                    match client.get(&live).send().await {
                        Err(error) if error.is_connect() => {
                            outcomes.lock().expect("outcomes").push(Outcome::Refused);
                            return;
                        }
                        _ => continue,
                    }
                };
                let sent = client.post(&url).bearer_auth(token).json(&json!({ "couponPolicyId": policy })).send();
                let outcome = match sent.await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        Outcome::Answered(status, response.json().await.expect("a whole JSON body"))
                    }
                    Err(error) if error.is_connect() => Outcome::Refused,
                    Err(error) => Outcome::Cut { user, error: format!("{error:?}") },
                };
                let refused = matches!(outcome, Outcome::Refused);
                outcomes.lock().expect("outcomes").push(outcome);
                if refused {
                    return;
                }
            }
        });
    }
    let accepted = |outcomes: &Mutex<Vec<Outcome>>| {
        outcomes.lock().expect("outcomes").iter().filter(|o| matches!(o, Outcome::Answered(202, _))).count()
    };
    assert!(eventually(Duration::from_secs(60), || std::future::ready(accepted(&outcomes) >= 200)).await);
    worker.take().expect("worker").stop().await;
    assert!(eventually(Duration::from_secs(60), || std::future::ready(accepted(&outcomes) >= 600)).await);
    let exit = api.terminate(Duration::from_secs(30)).await.expect("settle-api stops on SIGTERM");
    while clients.join_next().await.is_some() {}
    assert!(exit.success(), "settle-api exits 0 after draining: {exit:?}");

    let outcomes = outcomes.lock().expect("outcomes").clone();
    let refused = outcomes.iter().filter(|o| matches!(o, Outcome::Refused)).count();
    let cut: Vec<(i64, &str)> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Cut { user, error } => Some((*user, error.as_str())),
            _ => None,
        })
        .collect();
    let answered: Vec<(u16, &Value)> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Answered(status, body) => Some((*status, body)),
            _ => None,
        })
        .collect();
    eprintln!("SIGTERM mid-rush: {} answered, {refused} refused after the stop, {} cut", answered.len(), cut.len());
    assert!(refused > 0, "the rush went on until settle-api had stopped listening");
    // A cut request was never read: it reserved nothing and issued nothing, so retrying it is safe.
    let cut_users: Vec<i64> = cut.iter().map(|(user, _)| *user).collect();
    let held = holding_a_place(&app, policy, &cut_users).await;
    assert!(held.is_empty(), "users {held:?} had their request cut ({cut:?}) yet hold a place");
    assert!(answered.iter().all(|(status, _)| *status == 202), "every answer was an acceptance");

    let ids: Vec<String> =
        answered.iter().map(|(_, body)| body["requestId"].as_str().expect("id").to_owned()).collect();
    let _worker = Worker::start(&app);
    wait_for_verdicts(&app, ids.len() as i64).await;
    assert_eq!(coupons_of_requests(&app, &ids).await, ids.len(), "every accepted request became a coupon");
    let (coupons, holders, _) = coupon_counts(&app, policy).await;
    assert_eq!((coupons, holders), (ids.len() as i64, ids.len() as i64), "once each, and none for a cut request");
}
