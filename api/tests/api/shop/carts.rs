use super::support::product;
use crate::coupons::support::{admin_token, create_users};
use crate::helpers::{assert_problem, spawn_app, TestApp};
use domain::Role;
use serde_json::{json, Value};

async fn add(app: &TestApp, token: &str, product: i64, option: i64, quantity: i32) -> reqwest::Response {
    app.post_json("/api/v1/carts", token, &json!({ "productId": product, "optionId": option, "quantity": quantity }))
        .await
}

async fn ok(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "cart change");
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_cart_merges_lines_changes_options_and_prices_every_line_from_the_catalogue() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let token = app.token(user, Role::User);
    let (shirt, sizes) = product(&app, 10_000, &[("S", 0, 10), ("L", 1_000, 2)]).await;

    ok(add(&app, &token, shirt, sizes[0], 2).await).await;
    let cart = ok(add(&app, &token, shirt, sizes[0], 3).await).await;
    assert_eq!(cart["lines"].as_array().expect("lines").len(), 1, "the same option adds to its line");
    assert_eq!((cart["lines"][0]["quantity"].clone(), cart["total"].clone()), (json!(5), json!(50_000)));

    ok(add(&app, &token, shirt, sizes[1], 1).await).await;
    let moved = app
        .client
        .put(app.url(&format!("/api/v1/carts/product/{shirt}/option/{}", sizes[0])))
        .bearer_auth(&token)
        .json(&json!({ "optionId": sizes[1], "quantity": 2 }))
        .send()
        .await
        .expect("put");
    let cart = ok(moved).await;
    let lines = cart["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "moving onto an option already in the cart merges into its line");
    assert_eq!((lines[0]["optionId"].clone(), lines[0]["quantity"].clone()), (json!(sizes[1]), json!(3)));
    assert_eq!((lines[0]["unitPrice"].clone(), lines[0]["lineTotal"].clone()), (json!(11_000), json!(33_000)));
    assert_eq!(
        (lines[0]["available"].clone(), lines[0]["stockLeft"].clone()),
        (json!(false), json!(2)),
        "3 wanted, 2 left"
    );
    assert_eq!(cart["availableTotal"], 0);

    let removed = app
        .client
        .delete(app.url("/api/v1/carts"))
        .bearer_auth(&token)
        .json(&json!({ "items": [{ "productId": shirt, "optionId": sizes[1] }] }))
        .send()
        .await
        .expect("delete");
    assert!(ok(removed).await["lines"].as_array().expect("lines").is_empty());
    ok(add(&app, &token, shirt, sizes[0], 1).await).await;
    let cleared = app
        .client
        .delete(app.url(&format!("/api/v1/carts/{user}/all")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("clear");
    assert_eq!(ok(cleared).await["total"], 0);
}

#[tokio::test]
async fn carts_are_private_and_bad_lines_are_refused_with_their_codes() {
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (owner, stranger) = (users[0], users[1]);
    let (token, stranger_token) = (app.token(owner, Role::User), app.token(stranger, Role::User));
    let (shirt, sizes) = product(&app, 10_000, &[("S", 0, 10)]).await;
    let (other, other_sizes) = product(&app, 1_000, &[("one", 0, 10)]).await;
    ok(add(&app, &token, shirt, sizes[0], 1).await).await;

    let theirs = app
        .client
        .get(app.url(&format!("/api/v1/carts/{owner}")))
        .bearer_auth(&stranger_token)
        .send()
        .await
        .expect("get");
    assert_problem(theirs, 404, "USER_NOT_FOUND").await;
    let clear_theirs = app
        .client
        .delete(app.url(&format!("/api/v1/carts/{owner}/all")))
        .bearer_auth(&stranger_token)
        .send()
        .await
        .expect("clear");
    assert_problem(clear_theirs, 404, "USER_NOT_FOUND").await;
    let named = app
        .post_json(
            "/api/v1/carts",
            &stranger_token,
            &json!({ "productId": shirt, "optionId": sizes[0], "quantity": 1, "userId": owner }),
        )
        .await;
    assert_problem(named, 404, "USER_NOT_FOUND").await;
    let by_admin = app
        .post_json(
            "/api/v1/carts",
            &admin_token(&app),
            &json!({ "productId": shirt, "optionId": sizes[0], "quantity": 1, "userId": owner }),
        )
        .await;
    assert_eq!(ok(by_admin).await["lines"][0]["quantity"], 2, "an admin may fill a named user's cart");
    let read = app.get_json(&format!("/api/v1/carts/{owner}"), &token).await;
    assert_eq!(read["lines"][0]["quantity"], 2, "and the stranger's attempts changed nothing");

    assert_problem(add(&app, &token, shirt, other_sizes[0], 1).await, 404, "OPTION_NOT_FOUND").await;
    assert_problem(add(&app, &token, 999_999, sizes[0], 1).await, 404, "PRODUCT_NOT_FOUND").await;
    assert_problem(add(&app, &token, shirt, sizes[0], 0).await, 422, "VALIDATION_FAILED").await;
    assert_problem(add(&app, &token, shirt, sizes[0], 998).await, 422, "QUANTITY_ABOVE_LIMIT").await;
    sqlx::query("UPDATE products SET status = 'STOPPED' WHERE id = $1")
        .bind(other)
        .execute(&app.env.pool)
        .await
        .expect("stop");
    assert_problem(add(&app, &token, other, other_sizes[0], 1).await, 409, "PRODUCT_NOT_AVAILABLE").await;
    let no_line = app
        .client
        .put(app.url(&format!("/api/v1/carts/product/{other}/option/{}", other_sizes[0])))
        .bearer_auth(&token)
        .json(&json!({ "optionId": other_sizes[0], "quantity": 1 }))
        .send()
        .await
        .expect("put");
    assert_problem(no_line, 404, "CART_LINE_NOT_FOUND").await;
}

#[tokio::test]
async fn a_cart_holds_at_most_50_lines_even_when_adds_race() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let token = app.token(user, Role::User);
    let options: Vec<(String, i64, i32)> = (0..60).map(|n| (format!("o{n}"), 0, 5)).collect();
    let named: Vec<(&str, i64, i32)> = options.iter().map(|(n, e, s)| (n.as_str(), *e, *s)).collect();
    let (shirt, ids) = product(&app, 100, &named).await;
    let adds = ids.iter().map(|option| add(&app, &token, shirt, *option, 1));
    let answers = futures::future::join_all(adds).await;
    let full = answers.iter().filter(|a| a.status() == 409).count();
    let cart = app.get_json(&format!("/api/v1/carts/{user}"), &token).await;
    assert_eq!(cart["lines"].as_array().expect("lines").len(), 50);
    assert_eq!(full, 10, "every add beyond the 50th is refused CART_FULL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_cart_changes_removals_and_cart_orders_of_one_user_never_deadlock() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let token = app.token(user, Role::User);
    let (shirt, sizes) = product(&app, 1_000, &[("S", 0, 10_000), ("M", 0, 10_000), ("L", 0, 10_000)]).await;
    let line = |option: i64| json!({ "productId": shirt, "optionId": option });
    for _ in 0..30 {
        for &size in &sizes {
            add(&app, &token, shirt, size, 1).await;
        }
        // Each of these holds some of the user's lines while it wants others: a cart order deletes them
        // all, a change moves one line onto another, a removal deletes two in the opposite order.
        let requests = [
            app.client
                .post(app.url("/api/v3/orders/cart"))
                .json(&json!({ "shipping": super::support::shipping(), "paymentMethod": "CARD" })),
            app.client
                .put(app.url(&format!("/api/v1/carts/product/{shirt}/option/{}", sizes[0])))
                .json(&json!({ "optionId": sizes[1], "quantity": 2 })),
            app.client
                .put(app.url(&format!("/api/v1/carts/product/{shirt}/option/{}", sizes[2])))
                .json(&json!({ "optionId": sizes[0], "quantity": 3 })),
            app.client.delete(app.url("/api/v1/carts")).json(&json!({ "items": [line(sizes[2]), line(sizes[1])] })),
        ];
        let answers = super::support::send_concurrently(4, requests.map(|request| request.bearer_auth(&token))).await;
        let failed: Vec<_> = answers.iter().filter(|(status, _)| *status >= 500).collect();
        assert!(failed.is_empty(), "a cart writer failed: {failed:?}");
    }
    let deadlocks: i64 =
        sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&app.env.pool)
            .await
            .expect("deadlocks");
    assert_eq!(deadlocks, 0, "cart writers of one user deadlocked");
}
