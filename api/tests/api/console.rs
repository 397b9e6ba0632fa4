//! The operations console from outside, as a browser sees it: who gets a page (an admin signed in with a
//! session cookie; not a user, not an anonymous visitor, not a bearer token), the cookie's flags, the CSRF
//! tokens every form carries, the headers every page carries, and the Jobs page's rows and URL filters.

use crate::helpers::{spawn_app, TestApp};
use domain::Role;
use reqwest::{header, redirect::Policy, Response, StatusCode};
use serde_json::json;
use std::collections::HashMap;

const ADMIN_PASSWORD: &str = "pelican-meadow-54-quartz";
const USER_PASSWORD: &str = "otter-canyon-26-saffron";

/// A browser without JavaScript: it keeps the cookies it is given and follows no redirect by itself.
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        let http = reqwest::Client::builder().redirect(Policy::none()).build().expect("a client");
        Browser { app, http, cookies: HashMap::new() }
    }

    async fn get(&mut self, path: &str) -> Response {
        let request = self.http.get(self.app.url(path));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let request = self.http.post(self.app.url(path)).form(form);
        self.send(request).await
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Response {
        let jar: Vec<String> = self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let request = if jar.is_empty() { request } else { request.header(header::COOKIE, jar.join("; ")) };
        let response = request.send().await.expect("request");
        for set in set_cookies(&response) {
            let (pair, _) = set.split_once(';').unwrap_or((&set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }

    /// Opens the sign-in page and posts its form with these credentials.
    async fn sign_in(&mut self, email: &str, password: &str) -> Response {
        let form = self.get("/console/login").await.text().await.expect("page");
        let csrf = hidden_csrf(&form);
        self.post("/console/login", &[("csrf", &csrf), ("email", email), ("password", password)]).await
    }
}

fn set_cookies(response: &Response) -> Vec<String> {
    let values = response.headers().get_all(header::SET_COOKIE).iter();
    values.map(|value| value.to_str().expect("ascii").to_owned()).collect()
}

fn location(response: &Response) -> Option<&str> {
    response.headers().get(header::LOCATION).and_then(|value| value.to_str().ok())
}

/// The value of the page's first hidden `csrf` field.
fn hidden_csrf(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    page[at..].split('"').next().expect("a value").to_owned()
}

/// Signs an account up through the API (so it has a real password hash); an admin by role afterwards.
async fn account(app: &TestApp, name: &str, password: &str, role: Role) -> (i64, String) {
    let email = format!("{name}@console.test");
    let body = json!({ "email": email, "password": password, "name": name });
    let response = app.post_json("/api/v1/users/signup", "", &body).await;
    assert_eq!(response.status(), 201, "signing up {name}");
    let id = response.json::<serde_json::Value>().await.expect("json")["id"].as_i64().expect("id");
    sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(id)
        .bind(role.as_str())
        .execute(&app.env.pool)
        .await
        .expect("role");
    (id, email)
}

#[tokio::test]
async fn only_an_admin_signed_in_with_the_consoles_cookie_gets_a_page() {
    let app = spawn_app().await;
    let (admin_id, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let (_, user) = account(&app, "shopper", USER_PASSWORD, Role::User).await;

    let mut anonymous = Browser::new(&app);
    let refused = anonymous.get("/console/jobs").await;
    assert_eq!((refused.status(), location(&refused)), (StatusCode::SEE_OTHER, Some("/console/login")));
    let bearer = anonymous.http.get(app.url("/console/jobs")).bearer_auth(app.token(admin_id, Role::Admin));
    let with_bearer = bearer.send().await.expect("request");
    assert_eq!(with_bearer.status(), StatusCode::SEE_OTHER, "the API's bearer token opens no console page");

    let mut shopper = Browser::new(&app);
    let answer = shopper.sign_in(&user, USER_PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.expect("page").contains("may not use the console"));
    assert!(!shopper.cookies.contains_key("settle_console"), "no session for a user");
    assert_eq!(shopper.get("/console/jobs").await.status(), StatusCode::SEE_OTHER);

    let mut operator = Browser::new(&app);
    let wrong = operator.sign_in(&admin, "not-the-password-at-all").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let signed_in = operator.sign_in(&admin, ADMIN_PASSWORD).await;
    assert_eq!((signed_in.status(), location(&signed_in)), (StatusCode::SEE_OTHER, Some("/console")));
    let session = set_cookies(&signed_in).into_iter().find(|set| set.starts_with("settle_console=")).expect("cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
    assert!(!session.contains("Secure"), "served over plain HTTP here: {session}");

    let jobs = operator.get("/console/jobs").await;
    assert_eq!(jobs.status(), StatusCode::OK);
    let policy = jobs.headers().get(header::CONTENT_SECURITY_POLICY).expect("a CSP").to_str().expect("ascii");
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(jobs.headers().get(header::CACHE_CONTROL).map(|v| v.as_bytes()), Some(&b"no-store"[..]));
    assert!(jobs.text().await.expect("page").contains(&admin), "the page names who is signed in");

    // The console's cookie is no API credential either.
    let cookie = format!("settle_console={}", operator.cookies["settle_console"]);
    let api = app.client.get(app.url("/api/v1/users/me")).header(header::COOKIE, cookie).send().await.expect("api");
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_signing_out_or_a_password_change_ends_the_session() {
    let app = spawn_app().await;
    let (admin_id, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let mut operator = Browser::new(&app);
    operator.get("/console/login").await;
    let forged = [("csrf", "forged"), ("email", admin.as_str()), ("password", ADMIN_PASSWORD)];
    let forged = operator.post("/console/login", &forged).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "a sign-in posted from elsewhere");
    assert!(!operator.cookies.contains_key("settle_console"));

    assert_eq!(operator.sign_in(&admin, ADMIN_PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let page = operator.get("/console/jobs").await.text().await.expect("page");
    let csrf = hidden_csrf(&page);
    assert_eq!(operator.post("/console/logout", &[]).await.status(), StatusCode::FORBIDDEN, "no token");
    assert_eq!(operator.post("/console/logout", &[("csrf", "0000")]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(operator.get("/console/jobs").await.status(), StatusCode::OK, "still signed in");

    let kept = operator.cookies.clone();
    let out = operator.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status(), location(&out)), (StatusCode::SEE_OTHER, Some("/console/login")));
    operator.cookies = kept;
    assert_eq!(operator.get("/console/jobs").await.status(), StatusCode::SEE_OTHER, "the old cookie is dead");

    assert_eq!(operator.sign_in(&admin, ADMIN_PASSWORD).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(operator.get("/console/jobs").await.status(), StatusCode::OK);
    let change = json!({ "currentPassword": ADMIN_PASSWORD, "newPassword": "kestrel-orchard-17-cobalt" });
    let changed = app.post_json("/api/v1/users/me/password", &app.token(admin_id, Role::Admin), &change).await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(operator.get("/console/jobs").await.status(), StatusCode::SEE_OTHER, "revoked with the password");
}

async fn execution(app: &TestApp, job: &str, status: &str, message: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO batch_job_executions (job_name, job_key, parameters, status, ended_at, rows_read, exit_message)
         VALUES ($1, '2026-12-01', '{\"partitions\": 4}', $2, CASE WHEN $2 <> 'STARTED' THEN now() END, 1200, $3)
         RETURNING id",
    )
    .bind(job)
    .bind(status)
    .bind(message)
    .fetch_one(&app.env.pool)
    .await
    .expect("an execution")
}

#[tokio::test]
async fn the_jobs_page_shows_the_days_counters_and_the_executions_its_url_filters_for() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let done = execution(&app, "reconcile-points", "COMPLETED", None).await;
    let failed = execution(&app, "settle-sales", "FAILED", Some("gate orders_settled_once failed")).await;
    let running = execution(&app, "settle-sales", "STARTED", None).await;
    sqlx::query(
        "INSERT INTO batch_partition_checkpoints (execution_id, partition_no, status) VALUES ($1, 0, 'COMPLETED')",
    )
    .bind(failed)
    .execute(&app.env.pool)
    .await
    .expect("a checkpoint");
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;

    let all = operator.get("/console/jobs").await.text().await.expect("page");
    for id in [done, failed, running] {
        assert!(all.contains(&format!(r#"data-execution="{id}""#)), "execution {id} listed");
    }
    let failed_counter = all.split(r#"data-status="FAILED" href"#).nth(1).expect("the failed counter");
    assert!(failed_counter.contains(r#"<span class="count">1</span>"#), "one failed in 24 h");

    let only_failed = operator.get("/console/jobs?job=settle-sales&status=failed").await.text().await.expect("page");
    assert!(only_failed.contains(&format!(r#"data-execution="{failed}""#)));
    assert!(!only_failed.contains(&format!(r#"data-execution="{running}""#)), "another status");
    assert!(!only_failed.contains(&format!(r#"data-execution="{done}""#)), "another job");
    assert!(only_failed.contains("gate orders_settled_once failed") && only_failed.contains("1 / 4"));

    let bogus = operator.get("/console/jobs?status=EXPLODED").await;
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);
    assert!(bogus.text().await.expect("page").contains("no such status"));
}

/// A settled day as settle-sales leaves it: the day, its totals by method, two lines, its gates; and a
/// day whose gate failed.
async fn settled_days(app: &TestApp) {
    let statements = [
        "INSERT INTO settlement_days (business_date, status, timezone, execution_id, sales, paid, fee, net, gross, closed_at)
         VALUES ('2026-12-01', 'CLOSED', 'Asia/Seoul', 7, 2, 30000, 990, 29010, 30000, now()),
                ('2026-12-02', 'FAILED', 'Asia/Seoul', 8, 1, 5000, 165, 4835, 5000, NULL)",
        "INSERT INTO settlement_summary_by_method (business_date, payment_method, lines, gross, coupon_discount, points, paid, fee, net)
         VALUES ('2026-12-01', 'CARD', 2, 30000, 0, 0, 30000, 990, 29010)",
        "INSERT INTO settlement_lines (business_date, event, order_id, option_id, product_id, quantity, unit_price, gross,
                                       coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee, net, execution_id)
         VALUES ('2026-12-01', 'SALE', 41, 5, 3, 1, 10000, 10000, 0, 0, 10000, 'CARD', 'sbx_41', 330, 330, 9670, 7),
                ('2026-12-01', 'SALE', 42, 5, 3, 2, 10000, 20000, 0, 0, 20000, 'CARD', 'sbx_42', 330, 660, 19340, 7)",
        "INSERT INTO settlement_gate_results (business_date, execution_id, gate, passed, expected, actual, detail)
         VALUES ('2026-12-01', 7, 'lines_add_up', true, 30000, 30000, NULL),
                ('2026-12-02', 8, 'orders_settled_once', false, 2, 1, 'order 43 has no line')",
    ];
    for statement in statements {
        sqlx::query(statement).execute(&app.env.pool).await.expect(statement);
    }
}

#[tokio::test]
async fn the_settlement_pages_show_each_day_its_totals_and_gates_and_download_its_lines_as_csv() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    settled_days(&app).await;
    let mut anonymous = Browser::new(&app);
    let csv_refused = anonymous.get("/console/settlement/2026-12-01/lines.csv").await;
    assert_eq!(csv_refused.status(), StatusCode::SEE_OTHER, "no lines without a session");

    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;
    let days = operator.get("/console/settlement").await.text().await.expect("page");
    assert!(days.contains(r#"data-day="2026-12-01""#) && days.contains(r#"data-day="2026-12-02""#));
    assert!(days.contains("29,010"), "the closed day's net");
    let failed = operator.get("/console/settlement/2026-12-02").await.text().await.expect("page");
    assert!(failed.contains("failed gate") && failed.contains("order 43 has no line"));

    let closed = operator.get("/console/settlement/2026-12-01").await.text().await.expect("page");
    assert!(closed.contains(r#"data-gate="lines_add_up""#) && closed.contains("30,000"));
    let csv = operator.get("/console/settlement/2026-12-01/lines.csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    let disposition = csv.headers()[header::CONTENT_DISPOSITION].to_str().expect("ascii").to_owned();
    assert_eq!(disposition, r#"attachment; filename="settlement-2026-12-01.csv""#);
    let text = csv.text().await.expect("csv");
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "a header and the day's two lines: {text}");
    assert!(rows[0].starts_with("business_date,event,order_id,option_id"));
    assert!(rows[1].starts_with("2026-12-01,SALE,41,5,3,1,10000,10000,0,0,10000,CARD,sbx_41,330,330,9670"));

    let mut stream = operator.get("/console/settlement/stream").await;
    sqlx::query("UPDATE settlement_days SET status = 'CLOSED', closed_at = now() WHERE business_date = '2026-12-02'")
        .execute(&app.env.pool)
        .await
        .expect("the day closes after a rerun");
    let closed_now = r#"<tr data-day="2026-12-02"><td><a href="/console/settlement/2026-12-02">2026-12-02</a></td><td><span class="status" data-status="CLOSED">"#;
    let shown =
        live_event(&mut stream, "settlement", std::time::Duration::from_secs(2), |data| data.contains(closed_now));
    assert!(shown.await.is_some(), "the stream shows the day closed within 2 s");

    for (path, status) in [
        ("/console/settlement/2026-13-01", StatusCode::BAD_REQUEST),
        ("/console/settlement/2026-11-30", StatusCode::NOT_FOUND),
        ("/console/settlement/2026-11-30/lines.csv", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(operator.get(path).await.status(), status, "{path}");
    }
}

/// Every console route, as the router has them (a new route gets a row here).
const ROUTES: [(&str, &str); 23] = [
    ("GET", "/console"),
    ("GET", "/console/workers/stream"),
    ("GET", "/console/jobs/stream"),
    ("GET", "/console/jobs/1/restart"),
    ("POST", "/console/jobs/1/restart"),
    ("GET", "/console/schedule/reconcile-points/run"),
    ("POST", "/console/schedule/reconcile-points/run"),
    ("GET", "/console/lookup?q=1"),
    ("GET", "/console/lookup?user=1"),
    ("GET", "/console/now"),
    ("GET", "/console/now/stream"),
    ("GET", "/console/workers"),
    ("GET", "/console/workers/outbox/1/redrive"),
    ("POST", "/console/workers/outbox/1/redrive"),
    ("GET", "/console/jobs"),
    ("GET", "/console/jobs?status=FAILED"),
    ("GET", "/console/jobs/1/stop"),
    ("POST", "/console/jobs/1/stop"),
    ("GET", "/console/settlement"),
    ("GET", "/console/settlement/stream"),
    ("GET", "/console/settlement/2026-12-01"),
    ("GET", "/console/settlement/2026-12-01/lines.csv"),
    ("POST", "/console/logout"),
];

#[tokio::test]
async fn no_console_route_answers_an_anonymous_visitor_a_user_or_a_bearer_token_with_data() {
    let app = spawn_app().await;
    settled_days(&app).await;
    let user = app.create_user("shopper@console.test", Role::User).await;
    let admin = app.create_user("operator@console.test", Role::Admin).await;
    let browser = Browser::new(&app);
    for token in [None, Some(app.token(user, Role::User)), Some(app.token(admin, Role::Admin))] {
        for (method, path) in ROUTES {
            let request = browser.http.request(method.parse().expect("method"), app.url(path));
            let request = match &token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            let answer = request.send().await.expect("request");
            let status = answer.status();
            let to = location(&answer).map(str::to_owned);
            let body = answer.text().await.expect("body");
            assert_eq!((status, to.as_deref()), (StatusCode::SEE_OTHER, Some("/console/login")), "{method} {path}");
            assert!(body.is_empty(), "{method} {path} answered {body}");
        }
    }
}

/// Follows the action link on `page` to its confirmation page: the path its form posts to, and its token.
async fn confirmation(operator: &mut Browser<'_>, path: &str) -> (String, String) {
    let page = operator.get(path).await.text().await.expect("page");
    let at = page.find(r#"form class="confirm" method="post" action=""#).expect("a confirm form");
    let action = page[at..].split("action=\"").nth(1).expect("action").split('"').next().expect("path").to_owned();
    (action, hidden_csrf(&page[at..]))
}

async fn actions_recorded(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT action, target, outcome FROM console_actions ORDER BY id")
        .fetch_all(&app.env.pool)
        .await
        .expect("actions")
}

#[tokio::test]
async fn an_admin_stops_a_running_execution_after_confirming_and_a_finished_one_is_refused_and_both_are_recorded() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let running = execution(&app, "settle-sales", "STARTED", None).await;
    let done = execution(&app, "reconcile-points", "COMPLETED", None).await;
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;
    let jobs = operator.get("/console/jobs").await.text().await.expect("page");
    assert!(jobs.contains(&format!(r#"href="/console/jobs/{running}/stop""#)), "a running execution has Stop");
    assert!(!jobs.contains(&format!(r#"href="/console/jobs/{done}/stop""#)), "a completed one has not");

    let (path, csrf) = confirmation(&mut operator, &format!("/console/jobs/{running}/stop")).await;
    assert_eq!(path, format!("/console/jobs/{running}/stop"));
    assert!(actions_recorded(&app).await.is_empty(), "the confirmation page changes nothing");
    assert_eq!(operator.post(&path, &[("csrf", "stale")]).await.status(), StatusCode::FORBIDDEN);
    let stopped = operator.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(stopped.status(), StatusCode::OK);
    assert!(stopped.text().await.expect("page").contains("Stop requested"));
    let requested: bool =
        sqlx::query_scalar("SELECT stop_requested_at IS NOT NULL FROM batch_job_executions WHERE id = $1")
            .bind(running)
            .fetch_one(&app.env.pool)
            .await
            .expect("row");
    assert!(requested, "the same request as settle-batch stop");

    let after = operator.get("/console/jobs").await.text().await.expect("page");
    assert!(!after.contains(&format!(r#"href="/console/jobs/{running}/stop""#)), "stopping: no second Stop");
    let refused = operator.post(&format!("/console/jobs/{done}/stop"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.expect("page").contains("is COMPLETED: only a running one can be stopped"));
    let who: String =
        sqlx::query_scalar("SELECT DISTINCT u.email FROM console_actions a JOIN users u ON u.id = a.user_id")
            .fetch_one(&app.env.pool)
            .await
            .expect("who");
    assert_eq!(who, admin);
    let expected = [
        ("STOP_EXECUTION".to_owned(), format!("execution {running}"), "DONE".to_owned()),
        ("STOP_EXECUTION".to_owned(), format!("execution {done}"), "REFUSED".to_owned()),
    ];
    assert_eq!(actions_recorded(&app).await, expected);
}

#[tokio::test]
async fn an_admin_re_drives_a_parked_outbox_row_once_from_the_workers_page() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let row: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, attempts, last_error, parked_at)
         VALUES (gen_random_uuid(), 'order', '77', 'OrderPaid', '{}', 5, 'broker refused: message too large', now())
         RETURNING id",
    )
    .fetch_one(&app.env.pool)
    .await
    .expect("a parked row");
    sqlx::query(
        "INSERT INTO coupon_issue_dead_letters (request_id, policy_id, user_id, requested_at, reason)
         VALUES (gen_random_uuid(), 1, 2, now(), 'USER_NOT_FOUND'), (gen_random_uuid(), 1, 3, now(), 'USER_NOT_FOUND')",
    )
    .execute(&app.env.pool)
    .await
    .expect("dead letters");
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;
    let workers = operator.get("/console/workers").await.text().await.expect("page");
    let dead = workers.split(r#"data-dead-letters="USER_NOT_FOUND""#).nth(1).expect("the dead letters' row");
    assert!(dead.starts_with(r#"><td>USER_NOT_FOUND</td><td class="num">2</td><td class="num">2</td>"#), "{dead}");
    let parked = workers.split(r#"data-counter="outbox-parked""#).nth(1).expect("the parked counter");
    assert!(parked.contains(r#"<span class="count">1</span>"#), "one parked");
    assert!(workers.contains("broker refused: message too large"));

    let (path, csrf) = confirmation(&mut operator, &format!("/console/workers/outbox/{row}/redrive")).await;
    assert_eq!(operator.post(&path, &[]).await.status(), StatusCode::FORBIDDEN, "no token");
    let redriven = operator.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(redriven.status(), StatusCode::OK);
    let (parked_at, attempts): (Option<chrono::DateTime<chrono::Utc>>, i32) =
        sqlx::query_as("SELECT parked_at, attempts FROM outbox_events WHERE id = $1")
            .bind(row)
            .fetch_one(&app.env.pool)
            .await
            .expect("row");
    assert_eq!((parked_at, attempts), (None, 0), "queued again, as settle-batch outbox retry does");
    assert_eq!(operator.post(&path, &[("csrf", &csrf)]).await.status(), StatusCode::CONFLICT, "once");

    let after = operator.get("/console/workers").await.text().await.expect("page");
    assert!(after.contains(&admin) && after.contains(&format!("outbox row {row}")), "the re-drive with who did it");
    let mut stream = operator.get("/console/workers/stream").await;
    let parked_again = format!(r#"data-outbox-row="{row}""#);
    let absent =
        live_event(&mut stream, "workers", std::time::Duration::from_secs(2), |data| !data.contains(&parked_again));
    assert!(absent.await.is_some(), "the stream shows the row no longer parked");
    sqlx::query("UPDATE outbox_events SET parked_at = now(), attempts = 5 WHERE id = $1")
        .bind(row)
        .execute(&app.env.pool)
        .await
        .expect("parked again");
    let shown =
        live_event(&mut stream, "workers", std::time::Duration::from_secs(2), |data| data.contains(&parked_again));
    assert!(shown.await.is_some(), "a row parked since shows on the stream within 2 s");
    let outcomes: Vec<String> = actions_recorded(&app).await.into_iter().map(|(_, _, outcome)| outcome).collect();
    assert_eq!(outcomes, ["DONE", "REFUSED"]);
}

/// Reads the Server-Sent Events of `stream` until a `name` event satisfies `wanted`, for at most `within`:
/// that event's data.
async fn live_event(
    stream: &mut Response,
    name: &str,
    within: std::time::Duration,
    wanted: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut text = String::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.ok()?.expect("the stream")?;
        text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let data: String = event.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
            if event.lines().any(|line| line == format!("event: {name}")) && wanted(&data) {
                return Some(data);
            }
        }
    }
}

#[tokio::test]
async fn the_now_page_shows_a_policys_stock_left_and_its_stream_sends_a_change_within_two_seconds() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let policy = crate::coupons::support::create_policy(&app, crate::coupons::support::policy_body(50)).await;
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;

    let page = operator.get("/console/now").await.text().await.expect("page");
    let row = page.split(&format!(r#"data-policy="{policy}""#)).nth(1).expect("the policy's row");
    assert!(row.contains(r#"<td class="num left">50</td>"#), "all 50 left: {row}");
    assert!(
        page.contains(r#"sse-connect="/console/now/stream""#) && page.contains("/console/assets/htmx-2.0.11.min.js")
    );
    for bulkhead in ["issuance", "points", "shop", "accounts"] {
        assert!(page.contains(&format!(r#"data-bulkhead="{bulkhead}""#)), "bulkhead {bulkhead}");
    }

    let shopper = app.create_user("shopper@console.test", Role::User).await;
    let issue = json!({ "couponPolicyId": policy });
    let asked = app.post_json("/api/v3/coupons", &app.token(shopper, Role::User), &issue).await.status().as_u16();
    // Every open page shares one reading a second: the answer shows by the next one.
    let counted = format!(r#"data-status-code="{asked}">1<"#);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while !operator.get("/console/now").await.text().await.expect("page").contains(&counted) {
        assert!(tokio::time::Instant::now() < deadline, "the V3 answer ({asked}) counted within 2 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let mut stream = operator.get("/console/now/stream").await;
    assert_eq!(stream.headers()[header::CONTENT_TYPE], "text/event-stream");
    let two_seconds = std::time::Duration::from_secs(2);
    let first = live_event(&mut stream, "now", two_seconds, |data| data.contains("data-policy")).await;
    assert!(first.is_some(), "an event within 2 s");
    sqlx::query("UPDATE coupon_policies SET issued_quantity = 13 WHERE id = $1")
        .bind(policy)
        .execute(&app.env.pool)
        .await
        .expect("issued");
    let left_37 = r#"<td class="num left">37</td>"#;
    let changed = live_event(&mut stream, "now", two_seconds, |data| data.contains(left_37)).await;
    assert!(changed.is_some(), "the change reached the stream within 2 s");
}

#[tokio::test]
async fn support_looks_up_an_order_with_its_history_and_its_buyer_with_balance_lots_and_sign_ins() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let (buyer, buyer_email) = account(&app, "shopper", USER_PASSWORD, Role::User).await;
    crate::shop::support::earn(&app, buyer, 5_000).await;
    let (product, options) = crate::shop::support::product(&app, 12_000, &[("one size", 0, 5)]).await;
    let body = crate::shop::support::order_body(&[(product, options[0], 1)], json!({ "points": 2_000 }));
    let placed: serde_json::Value = crate::shop::support::place(&app, buyer, &body).await.json().await.expect("json");
    let order = placed["id"].as_i64().expect("order id");
    let mut browser = Browser::new(&app);
    browser.sign_in(&buyer_email, USER_PASSWORD).await;
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;

    let by_order = operator.get(&format!("/console/lookup?q={order}")).await.text().await.expect("page");
    assert!(by_order.contains(&format!(r#"data-order="{order}""#)) && by_order.contains("PENDING_PAYMENT"));
    assert!(by_order.contains(&format!(r#"href="/console/lookup?user={buyer}""#)), "links its buyer");
    assert!(by_order.contains(placed["paymentOrderId"].as_str().expect("ref")));

    let by_email = operator.get(&format!("/console/lookup?q={buyer_email}")).await.text().await.expect("page");
    assert!(by_email.contains(&format!(r#"data-user="{buyer}""#)));
    assert!(by_email.contains(r#"data-balance="3000""#), "the balance after the order's 2,000 points");
    assert!(by_email.contains(r#"data-login="OK""#), "the buyer's sign-in");
    assert!(by_email.contains(&format!(r#"href="/console/lookup?q={order}""#)), "the order among the latest");
    let by_id = operator.get(&format!("/console/lookup?user={buyer}")).await.text().await.expect("page");
    assert!(by_id.contains(&format!(r#"data-user="{buyer}""#)));

    for (path, status) in [
        ("/console/lookup?q=abc", StatusCode::BAD_REQUEST),
        ("/console/lookup?q=0", StatusCode::BAD_REQUEST),
        ("/console/lookup?q=999999", StatusCode::NOT_FOUND),
        ("/console/lookup?q=nobody%40console.test", StatusCode::NOT_FOUND),
        ("/console/lookup?user=999999", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(operator.get(path).await.status(), status, "{path}");
    }
}

#[tokio::test]
async fn an_admin_asks_the_leading_scheduler_to_run_an_entry_now_and_an_unknown_entry_is_refused() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    sqlx::query(
        "INSERT INTO scheduler_entries (name, cron, timezone, runs, next_at, published_by)
         VALUES ('reconcile-points', '0 30 0 * * *', 'Asia/Seoul', 'settle-batch reconcile-points --date {yesterday}',
                 now() + interval '5 hours', 'scheduler-a')",
    )
    .execute(&app.env.pool)
    .await
    .expect("a published entry");
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;
    let jobs = operator.get("/console/jobs").await.text().await.expect("page");
    assert!(jobs.contains(r#"data-entry="reconcile-points""#) && jobs.contains("settle-batch reconcile-points"));

    let (path, csrf) = confirmation(&mut operator, "/console/schedule/reconcile-points/run").await;
    let queued = operator.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(queued.status(), StatusCode::OK);
    let (entry, by): (String, String) = sqlx::query_as("SELECT entry_name, requested_by FROM scheduler_run_requests")
        .fetch_one(&app.env.pool)
        .await
        .expect("one request");
    assert_eq!((entry.as_str(), by), ("reconcile-points", format!("console:{admin}")));
    let after = operator.get("/console/jobs").await.text().await.expect("page");
    assert!(after.contains("requested…") && !after.contains(r#"href="/console/schedule/reconcile-points/run""#));

    let refused = operator.post("/console/schedule/nightly-nothing/run", &[("csrf", &csrf)]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let outcomes: Vec<String> = actions_recorded(&app).await.into_iter().map(|(_, _, outcome)| outcome).collect();
    assert_eq!(outcomes, ["DONE", "REFUSED"]);
}

#[tokio::test]
async fn an_admin_asks_for_a_restart_of_a_failed_execution_once_and_a_completed_one_is_refused() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let failed = execution(&app, "settle-sales", "FAILED", Some("gate failed")).await;
    let done = execution(&app, "reconcile-points", "COMPLETED", None).await;
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;
    let jobs = operator.get("/console/jobs").await.text().await.expect("page");
    assert!(jobs.contains(&format!(r#"href="/console/jobs/{failed}/restart""#)));
    assert!(!jobs.contains(&format!(r#"href="/console/jobs/{done}/restart""#)), "a completed one has no Restart");

    let (path, csrf) = confirmation(&mut operator, &format!("/console/jobs/{failed}/restart")).await;
    assert_eq!(operator.post(&path, &[("csrf", &csrf)]).await.status(), StatusCode::OK);
    let asked: Vec<(i64, String)> = sqlx::query_as("SELECT execution_id, requested_by FROM scheduler_run_requests")
        .fetch_all(&app.env.pool)
        .await
        .expect("requests");
    assert_eq!(asked, [(failed, format!("console:{admin}"))]);
    let again = operator.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "once at a time");
    assert!(again.text().await.expect("page").contains("RESTART_REQUESTED"));
    let refused = operator.post(&format!("/console/jobs/{done}/restart"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let after = operator.get("/console/jobs").await.text().await.expect("page");
    assert!(after.contains("restart requested…"));
    let outcomes: Vec<String> = actions_recorded(&app).await.into_iter().map(|(_, _, outcome)| outcome).collect();
    assert_eq!(outcomes, ["DONE", "REFUSED", "REFUSED"]);
}

#[tokio::test]
async fn the_jobs_pages_stream_shows_an_execution_that_failed_since_within_two_seconds() {
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;
    let page = operator.get("/console/jobs?status=FAILED").await.text().await.expect("page");
    assert!(
        page.contains(r#"sse-connect="/console/jobs/stream?job=&amp;status=FAILED""#),
        "the stream keeps the filter"
    );

    let mut stream = operator.get("/console/jobs/stream?status=FAILED").await;
    let two_seconds = std::time::Duration::from_secs(2);
    assert!(live_event(&mut stream, "jobs", two_seconds, |data| data.contains("No execution matches")).await.is_some());
    let failed = execution(&app, "settle-sales", "FAILED", Some("gate failed at 01:00")).await;
    let running = execution(&app, "reconcile-points", "STARTED", None).await;
    let shown = format!(r#"data-execution="{failed}""#);
    let event = live_event(&mut stream, "jobs", two_seconds, |data| data.contains(&shown)).await.expect("within 2 s");
    assert!(!event.contains(&format!(r#"data-execution="{running}""#)), "the filter holds on the stream");
}

#[tokio::test]
async fn the_workers_page_shows_each_groups_lag_by_partition_and_its_stream_follows_a_commit() {
    use infra::kafka::{Kafka, Topic};
    use rdkafka::{
        consumer::{CommitMode, Consumer},
        producer::FutureRecord,
        Offset, TopicPartitionList,
    };
    let app = spawn_app().await;
    let (_, admin) = account(&app, "operator", ADMIN_PASSWORD, Role::Admin).await;
    let kafka = Kafka::new(app.env.kafka.clone());
    let topic = kafka.topic_name(Topic::CouponIssueRequested);
    kafka.ensure_topics(&[Topic::CouponIssueRequested]).await.expect("the topic");
    let producer = kafka.producer().expect("producer");
    let mut ends = HashMap::new();
    for user in 0..7 {
        let key = format!("user-{user}");
        let record = FutureRecord::to(&topic).key(&key).payload("{}");
        let delivery = producer.send(record, std::time::Duration::from_secs(10)).await.expect("produced");
        ends.insert(delivery.partition, delivery.offset + 1);
    }
    let mut operator = Browser::new(&app);
    operator.sign_in(&admin, ADMIN_PASSWORD).await;

    let page = operator.get("/console/workers").await.text().await.expect("page");
    let counter = page.split(r#"data-counter="lag-coupon-issuance""#).nth(1).expect("the group's counter");
    assert!(counter.starts_with(r#"><span class="count">7</span>"#), "7 records not yet committed: {counter}");
    for (partition, end) in &ends {
        let row = format!(r#"data-lag-group="coupon-issuance" data-partition="{partition}">"#);
        let row = page.split(&row).nth(1).expect("the partition's row");
        assert!(row.contains(&format!(r#"<td class="num">none</td><td class="num">{end}</td>"#)), "{row}");
    }
    assert!(
        page.contains(r#"data-chart-from="lag-data""#) && page.contains(r#"id="lag-data""#),
        "the chart and its numbers"
    );

    // The group commits everything, as its workers would after handling the records.
    let group = kafka.consumer(infra::kafka::ConsumerGroup::CouponIssuance.name()).expect("the group");
    let mut done = TopicPartitionList::new();
    for (partition, end) in &ends {
        done.add_partition_offset(&topic, *partition, Offset::Offset(*end)).expect("offset");
    }
    group.assign(&done).expect("assigned");
    group.commit(&done, CommitMode::Sync).expect("committed");
    let mut stream = operator.get("/console/workers/stream").await;
    let caught_up = r#"data-counter="lag-coupon-issuance"><span class="count">0</span>"#;
    let shown = live_event(&mut stream, "workers", std::time::Duration::from_secs(2), |data| data.contains(caught_up));
    assert!(shown.await.is_some(), "the stream shows the group caught up within 2 s");
}
