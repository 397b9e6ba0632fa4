use super::support::{create_policy, create_users, policy_body, wait_for_verdicts, Worker};
use crate::helpers::{assert_problem, spawn_app};
use domain::Role;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_request_reads_pending_then_issued_to_its_owner_only() {
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (owner, stranger) = (users[0], users[1]);
    let policy = create_policy(&app, policy_body(5)).await;

    let accepted: Value = app
        .post_json("/api/v3/coupons", &app.token(owner, Role::User), &json!({ "couponPolicyId": policy }))
        .await
        .json()
        .await
        .expect("json");
    let request_id = accepted["requestId"].as_str().expect("request id").to_owned();
    let status_url = app.url(&format!("/api/v3/coupons/requests/{request_id}"));
    let read = |user: i64| app.client.get(&status_url).bearer_auth(app.token(user, Role::User)).send();

    let pending: Value = read(owner).await.expect("request").json().await.expect("json");
    assert_eq!(pending["status"], "PENDING", "no worker runs yet: {pending}");
    assert_problem(read(stranger).await.expect("request"), 404, "REQUEST_NOT_FOUND").await;

    let worker = Worker::start(&app);
    wait_for_verdicts(&app, 1).await;
    let issued: Value = read(owner).await.expect("request").json().await.expect("json");
    assert_eq!(issued["status"], "ISSUED", "{issued}");
    assert_problem(read(stranger).await.expect("request"), 404, "REQUEST_NOT_FOUND").await;

    let mine = app.get_json("/api/v3/coupons", &app.token(owner, Role::User)).await;
    assert_eq!(mine["items"][0]["id"], issued["couponId"]);
    let theirs = app.get_json("/api/v3/coupons", &app.token(stranger, Role::User)).await;
    assert_eq!(theirs["items"], json!([]));
    worker.stop().await;
}

#[tokio::test]
async fn the_user_comes_from_the_token_never_from_the_body() {
    let app = spawn_app().await;
    let users = create_users(&app, 1).await;
    let policy = create_policy(&app, policy_body(5)).await;
    let body = json!({ "couponPolicyId": policy, "userId": 999 });
    let response = app.post_json("/api/v2/coupons", &app.token(users[0], Role::User), &body).await;
    assert_problem(response, 422, "INVALID_BODY").await;
    let unknown = app
        .client
        .get(app.url(&format!("/api/v3/coupons/requests/{}", uuid::Uuid::new_v4())))
        .bearer_auth(app.token(users[0], Role::User))
        .send()
        .await
        .expect("request");
    assert_problem(unknown, 404, "REQUEST_NOT_FOUND").await;
}
