//! The authorization matrix: every operation of the OpenAPI document (a route added without a row
//! fails the test) called by {no token, user A, user B who owns nothing of A's, an admin} against
//! real resources of A, each answer's status compared with the table. The columns run one after
//! another over every row (B's before A's), and A's data is compared before and after B's column:
//! nobody reads or changes another user's coupon, points, cart, order, login history or profile.

use crate::coupons::support::{create_policy, policy_body};
use crate::helpers::{spawn_app, TestApp};
use crate::shop::support::{product, shipping};
use domain::Role;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Each account's own password (none built from its name, which the sign-up rules refuse).
fn password(name: &str) -> &'static str {
    match name {
        "owner" => "quokka-lantern-71-fjord",
        "stranger" => "wombat-harbor-38-ember",
        "admin" => "pelican-meadow-54-quartz",
        "guest" => "otter-canyon-26-saffron",
        _ => "heron-glacier-93-velvet",
    }
}

/// The public routes that act for whoever presents A's refresh token in the body.
const OWNER_SECRET_ROUTES: [&str; 2] = ["/api/v1/users/refresh-token", "/api/v1/users/logout"];

/// Who calls, in the order the columns run.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    Stranger,
    Owner,
    Admin,
}

const CALLERS: [Caller; 4] = [Caller::Anonymous, Caller::Stranger, Caller::Owner, Caller::Admin];

struct Account {
    id: i64,
    token: String,
}

/// A's resources, and the other callers.
struct Fixture {
    owner: Account,
    stranger: Account,
    admin: Account,
    product: i64,
    options: Vec<i64>,
    policy: i64,
    issue_policies: [i64; 3],
    coupon: i64,
    coupon_order: i64,
    order: i64,
    point_use: i64,
    request: String,
    refresh_tokens: [String; 2],
}

struct Row {
    method: Method,
    template: &'static str,
    path: String,
    body: Option<Value>,
    /// Status for the anonymous caller, B, A and the admin.
    expected: [u16; 4],
}

fn row(method: Method, template: &'static str, path: String, body: Option<Value>, expected: [u16; 4]) -> Row {
    Row { method, template, path, body, expected }
}

/// A row for a path without parameters, with a body.
fn fixed(method: Method, path: &'static str, body: Value, expected: [u16; 4]) -> Row {
    row(method, path, path.into(), Some(body), expected)
}

async fn signup(app: &TestApp, name: &str) -> i64 {
    let body = json!({ "email": format!("{name}@matrix.test"), "password": password(name), "name": name });
    let response = app.post_json("/api/v1/users/signup", "", &body).await;
    assert_eq!(response.status(), 201, "signing up {name}");
    response.json::<Value>().await.expect("json")["id"].as_i64().expect("user id")
}

async fn login(app: &TestApp, name: &str) -> String {
    let body = json!({ "email": format!("{name}@matrix.test"), "password": password(name) });
    let response = app.post_json("/api/v1/users/login", "", &body).await;
    assert_eq!(response.status(), 200, "logging in {name}");
    response.json::<Value>().await.expect("json")["refreshToken"].as_str().expect("refresh token").to_owned()
}

async fn created_id(response: reqwest::Response, what: &str) -> i64 {
    assert!(response.status().is_success(), "{what}: {}", response.status());
    let body: Value = response.json().await.expect("json");
    body["id"].as_i64().or_else(|| body["pointId"].as_i64()).expect(what)
}

async fn fixture(app: &TestApp) -> Fixture {
    let (owner, stranger, admin) =
        (signup(app, "owner").await, signup(app, "stranger").await, signup(app, "admin").await);
    signup(app, "guest").await;
    sqlx::query("UPDATE users SET role = 'ADMIN' WHERE id = $1")
        .bind(admin)
        .execute(&app.env.pool)
        .await
        .expect("admin");
    let account = |id| Account { id, token: app.token(id, if id == admin { Role::Admin } else { Role::User }) };
    let (owner, stranger, admin) = (account(owner), account(stranger), account(admin));
    let refresh_tokens = [login(app, "owner").await, login(app, "owner").await];

    let (product, options) = product(app, 10_000, &[("S", 0, 1_000), ("M", 0, 1_000)]).await;
    let mut policy = policy_body(100);
    policy["minimumOrderAmount"] = json!(0);
    let policy_id = create_policy(app, policy.clone()).await;
    let issue_policies = [
        create_policy(app, policy.clone()).await,
        create_policy(app, policy.clone()).await,
        create_policy(app, policy.clone()).await,
    ];
    let request_policy = create_policy(app, policy).await;

    let issued = app.post_json("/api/v1/coupons", &owner.token, &json!({ "couponPolicyId": policy_id })).await;
    let coupon = created_id(issued, "A's coupon").await;
    let queued = app.post_json("/api/v3/coupons", &owner.token, &json!({ "couponPolicyId": request_policy })).await;
    assert_eq!(queued.status(), 202);
    let request = queued.json::<Value>().await.expect("json")["requestId"].as_str().expect("request id").to_owned();

    for option in &options {
        let line = json!({ "productId": product, "optionId": option, "quantity": 1 });
        assert_eq!(app.post_json("/api/v1/carts", &owner.token, &line).await.status(), 200, "A's cart line");
    }
    let order_body = json!({ "items": [{ "productId": product, "optionId": options[0], "quantity": 1 }],
        "shipping": shipping(), "paymentMethod": "CARD" });
    let order = created_id(app.post_json("/api/v3/orders", &owner.token, &order_body).await, "A's order").await;
    let coupon_order = created_id(app.post_json("/api/v3/orders", &owner.token, &order_body).await, "A's order").await;

    let earn = json!({ "userId": owner.id, "amount": 1_000 });
    assert_eq!(app.post_json("/api/v2/points/earn", &admin.token, &earn).await.status(), 200);
    let spent = app.post_json("/api/v2/points/use", &owner.token, &json!({ "amount": 100 })).await;
    let point_use = created_id(spent, "A's point use").await;
    Fixture {
        owner,
        stranger,
        admin,
        product,
        options,
        policy: policy_id,
        issue_policies,
        coupon,
        coupon_order,
        order,
        point_use,
        request,
        refresh_tokens,
    }
}

/// Every documented operation, with what each caller gets. A's column runs after B's, so a change A
/// makes (a cancel, a cleared cart) is what the admin then meets. One row a line: it is a table.
#[rustfmt::skip]
fn matrix(f: &Fixture) -> Vec<Row> {
    use Method as M;
    let (a, p, o) = (f.owner.id, f.product, f.options[0]);
    let line = json!([{ "productId": p, "optionId": o, "quantity": 1 }]);
    let shipping = shipping();
    vec![
        // Carts: B naming A meets an unknown user (404, as for any id B may not see); A and the admin may.
        fixed(M::POST, "/api/v1/carts", json!({ "productId": p, "optionId": o, "quantity": 1, "userId": a }), [401, 404, 200, 200]),
        row(M::PUT, "/api/v1/carts/product/{product_id}/option/{option_id}", format!("/api/v1/carts/product/{p}/option/{o}"),
            Some(json!({ "optionId": o, "quantity": 3, "userId": a })), [401, 404, 200, 200]),
        row(M::GET, "/api/v1/carts/{user_id}", format!("/api/v1/carts/{a}"), None, [401, 404, 200, 200]),
        fixed(M::DELETE, "/api/v1/carts", json!({ "items": [{ "productId": p, "optionId": f.options[1] }], "userId": a }), [401, 404, 200, 200]),
        // Issuance: each caller for themselves (one policy per version, so each first ask succeeds).
        fixed(M::POST, "/api/v1/coupons", json!({ "couponPolicyId": f.issue_policies[0] }), [401, 201, 201, 201]),
        fixed(M::POST, "/api/v2/coupons", json!({ "couponPolicyId": f.issue_policies[1] }), [401, 201, 201, 201]),
        fixed(M::POST, "/api/v3/coupons", json!({ "couponPolicyId": f.issue_policies[2] }), [401, 202, 202, 202]),
        row(M::GET, "/api/v3/coupons", "/api/v3/coupons".into(), None, [401, 200, 200, 200]),
        row(M::GET, "/api/v3/coupons/requests/{id}", format!("/api/v3/coupons/requests/{}", f.request), None, [401, 404, 200, 200]),
        row(M::POST, "/api/v3/coupons/{id}/use", format!("/api/v3/coupons/{}/use", f.coupon), Some(json!({ "orderId": f.coupon_order })), [401, 404, 200, 404]),
        row(M::POST, "/api/v3/coupons/{id}/cancel", format!("/api/v3/coupons/{}/cancel", f.coupon), None, [401, 404, 200, 404]),
        // Policies: admins only.
        row(M::GET, "/api/v3/coupon-policies", "/api/v3/coupon-policies".into(), None, [401, 403, 403, 200]),
        fixed(M::POST, "/api/v3/coupon-policies", policy_body(5), [401, 403, 403, 201]),
        row(M::GET, "/api/v3/coupon-policies/{id}", format!("/api/v3/coupon-policies/{}", f.policy), None, [401, 403, 403, 200]),
        // Catalogue: anyone browses, admins change.
        row(M::GET, "/api/v1/products", "/api/v1/products".into(), None, [200, 200, 200, 200]),
        row(M::GET, "/api/v1/products/{product_id}", format!("/api/v1/products/{p}"), None, [200, 200, 200, 200]),
        fixed(M::POST, "/api/v1/products", json!({ "name": "Lamp", "price": 100 }), [401, 403, 403, 201]),
        row(M::PATCH, "/api/v1/products/{product_id}", format!("/api/v1/products/{p}"), Some(json!({ "price": 10_000 })), [401, 403, 403, 200]),
        row(M::POST, "/api/v1/products/{product_id}/options", format!("/api/v1/products/{p}/options"), Some(json!({ "name": "XL" })), [401, 403, 403, 201]),
        row(M::PATCH, "/api/v1/products/{product_id}/options/{option_id}", format!("/api/v1/products/{p}/options/{o}"),
            Some(json!({ "extraPrice": 0 })), [401, 403, 403, 200]),
        row(M::POST, "/api/v1/products/{product_id}/options/{option_id}/stock", format!("/api/v1/products/{p}/options/{o}/stock"),
            Some(json!({ "add": 1 })), [401, 403, 403, 200]),
        row(M::PUT, "/api/v1/products/{product_id}/options/{option_id}/stock", format!("/api/v1/products/{p}/options/{o}/stock"),
            Some(json!({ "stock": 500 })), [401, 403, 403, 200]),
        // Orders: B neither reads, lists nor cancels A's; A's cart order empties A's cart for the admin.
        row(M::GET, "/api/v3/orders", format!("/api/v3/orders?userId={a}"), None, [401, 404, 200, 200]),
        row(M::GET, "/api/v3/orders/{order_id}", format!("/api/v3/orders/{}", f.order), None, [401, 404, 200, 200]),
        fixed(M::POST, "/api/v3/orders", json!({ "items": line, "shipping": shipping, "paymentMethod": "CARD" }), [401, 201, 201, 201]),
        fixed(M::POST, "/api/v3/orders/cart", json!({ "shipping": shipping, "paymentMethod": "CARD" }), [401, 409, 201, 409]),
        fixed(M::POST, "/api/v3/orders/cancel", json!({ "orderId": f.order }), [401, 404, 200, 409]),
        row(M::GET, "/api/v3/orders/{order_id}/history", format!("/api/v3/orders/{}/history", f.order), None, [401, 404, 200, 200]),
        // Shipping and delivery are the admin's; A's order is unpaid (or cancelled by A above), so the
        // admin is refused by the lifecycle, not by the role.
        row(M::POST, "/api/v3/orders/{order_id}/ship", format!("/api/v3/orders/{}/ship", f.order),
            Some(json!({ "carrier": "CJ Logistics", "trackingNumber": "1" })), [401, 403, 403, 409]),
        row(M::POST, "/api/v3/orders/{order_id}/deliver", format!("/api/v3/orders/{}/deliver", f.order), None, [401, 403, 403, 409]),
        // Paying is the buyer's: B's payment of A's order is refused before the provider; A cancelled the
        // order in the row above, so A's is refused by the lifecycle; the admin is not the buyer.
        row(M::POST, "/api/v3/orders/{order_id}/payment", format!("/api/v3/orders/{}/payment", f.order),
            Some(json!({ "paymentKey": "sbx_not_opened", "amount": 1 })), [401, 404, 409, 404]),
        // Purchase confirmation is the buyer's alone: to anyone else, an admin included, the order is unknown.
        row(M::POST, "/api/v3/orders/{order_id}/confirm", format!("/api/v3/orders/{}/confirm", f.order), None, [401, 404, 409, 404]),
        // A refund is the buyer's too; A's order is cancelled, so A's is refused by the lifecycle.
        row(M::POST, "/api/v3/orders/{order_id}/refund", format!("/api/v3/orders/{}/refund", f.order),
            Some(json!({ "reason": "does not fit" })), [401, 404, 409, 404]),
        // The after-sales refund is the admin's; A's order was cancelled, so the admin is refused by the lifecycle.
        row(M::POST, "/api/v3/orders/{order_id}/after-sales-refund", format!("/api/v3/orders/{}/after-sales-refund", f.order),
            Some(json!({ "reason": "returned after confirmation" })), [401, 403, 403, 409]),
        // The provider's deposit callback carries no token: every caller is answered alike (no such account).
        fixed(M::POST, "/api/v3/payments/callbacks/deposit",
            json!({ "createdAt": "2026-12-06T21:30:00", "secret": "s", "status": "DONE", "orderId": "settle-order-999999" }), [404, 404, 404, 404]),
        row(M::DELETE, "/api/v1/carts/{user_id}/all", format!("/api/v1/carts/{a}/all"), None, [401, 404, 200, 200]),
        // Points: B may not name A nor touch A's entries; only admins earn.
        fixed(M::POST, "/api/v2/points/earn", json!({ "userId": a, "amount": 10 }), [401, 403, 403, 200]),
        fixed(M::POST, "/api/v2/points/use", json!({ "userId": a, "amount": 10 }), [401, 404, 200, 200]),
        row(M::GET, "/api/v2/points/users/{user_id}/balance", format!("/api/v2/points/users/{a}/balance"), None, [401, 404, 200, 200]),
        row(M::GET, "/api/v2/points/users/{user_id}/history", format!("/api/v2/points/users/{a}/history"), None, [401, 404, 200, 200]),
        row(M::GET, "/api/v2/points/users/{user_id}/expiring", format!("/api/v2/points/users/{a}/expiring"), None, [401, 404, 200, 200]),
        row(M::POST, "/api/v2/points/{point_id}/cancel", format!("/api/v2/points/{}/cancel", f.point_use), None, [401, 404, 200, 409]),
        // Accounts: /me is always the caller's own; the public routes act on what they are given.
        row(M::GET, "/api/v1/users/me", "/api/v1/users/me".into(), None, [401, 200, 200, 200]),
        fixed(M::PUT, "/api/v1/users/me", json!({ "name": "Renamed" }), [401, 200, 200, 200]),
        row(M::GET, "/api/v1/users/me/login-history", "/api/v1/users/me/login-history".into(), None, [401, 200, 200, 200]),
        fixed(M::POST, "/api/v1/users/validate-token", json!({ "token": f.owner.token }), [200, 200, 200, 200]),
        fixed(M::POST, "/api/v1/users/login", json!({ "email": "guest@matrix.test", "password": password("guest") }), [200, 200, 200, 200]),
        fixed(M::POST, "/api/v1/users/refresh-token", json!({ "refreshToken": f.refresh_tokens[0] }), [200, 401, 401, 401]),
        fixed(M::POST, "/api/v1/users/logout", json!({ "refreshToken": f.refresh_tokens[1] }), [204, 204, 204, 204]),
        fixed(M::POST, "/api/v1/users/signup", json!({ "email": "late@matrix.test", "password": password("late"), "name": "Late" }), [201, 409, 409, 409]),
        // The body names A's password: only A's own account has it.
        fixed(M::POST, "/api/v1/users/me/password", json!({ "currentPassword": password("owner"), "newPassword": "bison-thunder-17-copper" }), [401, 401, 204, 401]),
    ]
}

fn documented_operations() -> BTreeSet<(String, String)> {
    let document = settle_api::openapi::document();
    document
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = [
                ("GET", item.get.is_some()),
                ("PUT", item.put.is_some()),
                ("POST", item.post.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
            ];
            methods
                .into_iter()
                .filter(|(_, present)| *present)
                .map(move |(method, _)| (method.to_owned(), path.clone()))
        })
        .collect()
}

async fn call(app: &TestApp, fixture: &Fixture, caller: Caller, row: &Row) -> u16 {
    let mut request = app.client.request(row.method.clone(), app.url(&row.path));
    let token = match caller {
        Caller::Anonymous => None,
        Caller::Stranger => Some(&fixture.stranger.token),
        Caller::Owner => Some(&fixture.owner.token),
        Caller::Admin => Some(&fixture.admin.token),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &row.body {
        request = request.json(body);
    }
    request.send().await.expect("request").status().as_u16()
}

/// `row` called by `caller`, and what differs from the matrix's `column` for it.
async fn answer_differs(app: &TestApp, fixture: &Fixture, caller: Caller, column: usize, row: &Row) -> Option<String> {
    let status = call(app, fixture, caller, row).await;
    let expected = row.expected[column];
    (status != expected).then(|| format!("{caller:?} {} {}: {status}, expected {expected}", row.method, row.path))
}

/// Everything of A's that another caller could read or change, as the database holds it.
async fn owner_state(app: &TestApp, owner: i64) -> Value {
    sqlx::query_scalar(
        "SELECT json_build_object(
            'profile', (SELECT row_to_json(u) FROM (SELECT email, name, role, password_hash FROM users WHERE id = $1) u),
            'cart', (SELECT json_agg(c ORDER BY c.option_id) FROM (SELECT option_id, quantity FROM cart_items WHERE user_id = $1) c),
            'orders', (SELECT json_agg(o ORDER BY o.id) FROM (SELECT id, status FROM orders WHERE user_id = $1) o),
            'coupons', (SELECT json_agg(k ORDER BY k.id) FROM (SELECT id, status, order_id FROM coupons WHERE user_id = $1) k),
            'points', (SELECT json_agg(p ORDER BY p.id) FROM (SELECT id, amount FROM points WHERE user_id = $1) p),
            'balance', (SELECT balance FROM point_balances WHERE user_id = $1),
            'logins', (SELECT count(*) FROM login_history WHERE user_id = $1),
            'sessions', (SELECT json_agg(r ORDER BY r.id) FROM (SELECT id, revoked_at FROM refresh_token_families WHERE user_id = $1) r))::text",
    )
    .bind(owner)
    .fetch_one(&app.env.pool)
    .await
    .map(|text: String| serde_json::from_str(&text).expect("json"))
    .expect("A's state")
}

#[tokio::test]
async fn every_operation_answers_each_caller_as_the_matrix_says_and_b_never_touches_a() {
    let app = spawn_app().await;
    let fixture = fixture(&app).await;
    let rows = matrix(&fixture);

    let in_matrix: BTreeSet<_> = rows.iter().map(|row| (row.method.to_string(), row.template.to_owned())).collect();
    assert_eq!(in_matrix.len(), rows.len(), "an operation has two rows");
    let documented = documented_operations();
    let missing: Vec<_> = documented.difference(&in_matrix).collect();
    let unknown: Vec<_> = in_matrix.difference(&documented).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "operations without a row: {missing:?}; rows without an operation: {unknown:?}"
    );

    let mut mismatches = Vec::new();
    for (column, caller) in CALLERS.into_iter().enumerate() {
        // Rows whose body holds one of A's secrets (password, refresh token) act as A for anyone
        // holding it: they run after the check that this caller changed nothing of A's.
        let (own_rights, owners_secrets): (Vec<&Row>, Vec<&Row>) =
            rows.iter().partition(|row| !OWNER_SECRET_ROUTES.contains(&row.template));
        let before = owner_state(&app, fixture.owner.id).await;
        for row in own_rights {
            mismatches.extend(answer_differs(&app, &fixture, caller, column, row).await);
        }
        if matches!(caller, Caller::Anonymous | Caller::Stranger) {
            let after = owner_state(&app, fixture.owner.id).await;
            assert_eq!(before, after, "{caller:?} changed A's data");
        }
        for row in owners_secrets {
            mismatches.extend(answer_differs(&app, &fixture, caller, column, row).await);
        }
    }
    assert!(mismatches.is_empty(), "{} answers differ from the matrix:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[tokio::test]
async fn a_strangers_lists_hold_nothing_of_the_owners() {
    let app = spawn_app().await;
    let fixture = fixture(&app).await;
    let token = &fixture.stranger.token;
    let ids = |page: &Value, field: &str| -> Vec<i64> {
        page[field].as_array().expect(field).iter().map(|item| item["id"].as_i64().expect("id")).collect()
    };
    assert_eq!(ids(&app.get_json("/api/v3/coupons", token).await, "items"), Vec::<i64>::new());
    assert_eq!(ids(&app.get_json("/api/v3/orders", token).await, "items"), Vec::<i64>::new());
    let history = app.get_json("/api/v1/users/me/login-history", token).await;
    assert!(history["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|attempt| attempt["userId"].is_null() || attempt["userId"] == fixture.stranger.id));
    let me = app.get_json("/api/v1/users/me", token).await;
    assert_eq!((me["id"].as_i64(), me["email"].as_str()), (Some(fixture.stranger.id), Some("stranger@matrix.test")));
    // The owner's own lists do hold them, so the empty lists above are not an empty database.
    let owner_coupons = ids(&app.get_json("/api/v3/coupons", &fixture.owner.token).await, "items");
    assert!(owner_coupons.contains(&fixture.coupon));
    let owner_orders = ids(&app.get_json("/api/v3/orders", &fixture.owner.token).await, "items");
    assert!(owner_orders.contains(&fixture.order));
}
