//! The OpenAPI document: served at /api-docs/openapi.json, equal to the committed `api/openapi.json`
//! (a route change that does not update it fails here), every documented operation answered by a real
//! route, and Swagger UI served at /docs from compiled-in assets.
//! Refresh the committed copy with `UPDATE_OPENAPI=1 cargo test -p settle-api --test api openapi`.

use crate::helpers::spawn_app;
use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

async fn served() -> Value {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/api-docs/openapi.json")).send().await.expect("document");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let served = served().await;
    assert_eq!(served["openapi"], "3.1.0");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        let text = serde_json::to_string_pretty(&served).expect("JSON") + "\n";
        std::fs::write(COMMITTED, text).expect("writing api/openapi.json");
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(COMMITTED).expect("api/openapi.json")).expect("JSON");
    assert!(
        served == committed,
        "api/openapi.json differs from the served document: refresh it with \
         `UPDATE_OPENAPI=1 cargo test -p settle-api --test api openapi` and review the diff"
    );
}

/// `path` with every `{parameter}` replaced by 1.
fn with_ids(path: &str) -> String {
    path.split('/').map(|segment| if segment.starts_with('{') { "1" } else { segment }).collect::<Vec<_>>().join("/")
}

#[tokio::test]
async fn every_documented_operation_is_a_route_and_names_its_errors_and_security() {
    let app = spawn_app().await;
    let document = served().await;
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 8, "the coupon routes at least: {:?}", paths.keys());
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let concrete = with_ids(path);
            let request = app.client.request(method.to_uppercase().parse().expect("method"), app.url(&concrete));
            let response = request.send().await.expect("request");
            let body: Value = response.json().await.unwrap_or_default();
            assert!(
                !["ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED"].contains(&body["code"].as_str().unwrap_or_default()),
                "{method} {path} is documented but not routed: {body}"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(responses.contains_key("4XX"), "{method} {path} documents its problem answers");
            for (status, response) in responses {
                assert!(
                    response["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}: no description"
                );
            }
            assert!(operation["security"].is_array(), "{method} {path} names its security");
        }
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    let schemas = &document["components"]["schemas"];
    for body in ["EarnBody", "PointUseBody"] {
        let amount = &schemas[body]["properties"]["amount"];
        assert_eq!(amount["maximum"], domain::points::MAX_POINTS_PER_ENTRY, "{body}.amount names the real bound");
    }
    assert!(document["components"]["schemas"]["Problem"].is_object());
}

/// The catalogue is the Problem schema's `code` enum, and each operation's problem answers name the
/// codes it declares (its row in `error_codes::BY_OPERATION`), each under the status it comes with.
#[test]
fn every_operation_declares_its_error_codes_from_the_catalogue() {
    use settle_api::{http::ErrorCode, openapi::error_codes};
    let document = serde_json::to_value(settle_api::openapi::document()).expect("JSON");
    let catalogue: Vec<&str> = document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the code enum")
        .iter()
        .map(|code| code.as_str().expect("code"))
        .collect();
    assert_eq!(catalogue, ErrorCode::ALL.iter().map(|code| code.as_str()).collect::<Vec<_>>());

    let mut operation_ids = Vec::new();
    for item in document["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("path item").values() {
            let id = operation["operationId"].as_str().expect("an operation id");
            let codes =
                error_codes::codes_of(id).unwrap_or_else(|| panic!("{id} has no row in error_codes::BY_OPERATION"));
            for (status, class) in [("4XX", 4), ("503", 5)] {
                let declared: Vec<&str> = operation["responses"][status]["content"]["application/problem+json"]
                    ["schema"]["allOf"][1]["properties"]["code"]["enum"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{id} {status} names its codes"))
                    .iter()
                    .map(|code| code.as_str().expect("code"))
                    .collect();
                let expected: Vec<&str> = codes
                    .iter()
                    .filter(|code| code.status().as_u16() / 100 == class)
                    .map(|code| code.as_str())
                    .collect();
                assert_eq!(declared, expected, "{id} {status}");
            }
            operation_ids.push(id.to_owned());
        }
    }
    let unused: Vec<_> =
        error_codes::BY_OPERATION.iter().filter(|(id, _)| !operation_ids.iter().any(|known| known == id)).collect();
    assert!(unused.is_empty(), "rows of error_codes::BY_OPERATION without an operation: {unused:?}");
}

#[tokio::test]
async fn swagger_ui_is_served_from_compiled_in_assets() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/docs/")).send().await.expect("docs");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("swagger-ui"));
    let script = app.client.get(app.url("/docs/swagger-ui-bundle.js")).send().await.expect("bundle");
    assert_eq!(script.status(), 200, "the UI's assets come from the binary, not the network");
}

/// Routes are registered only through `utoipa_axum::routes!` (which reads each handler's
/// `#[utoipa::path]`), so a route cannot be served without being documented.
#[test]
fn no_route_is_registered_around_the_document() {
    let mut plain = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("routes directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read_to_string(&path).expect("source").contains(".route(\"") {
                plain.push(path.display().to_string());
            }
        }
    }
    assert!(plain.is_empty(), "plain axum .route(...) calls (undocumented routes) in {plain:?}: use routes!()");
}

/// Stateful fuzzing follows the declared links: each names an operation of the document (written
/// `operationId`, as OpenAPI spells it) and parameters that operation takes.
#[test]
fn every_link_names_a_documented_operation_and_its_parameters() {
    let document = serde_json::to_value(settle_api::openapi::document()).expect("JSON");
    let operations: Vec<&Value> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .collect();
    let mut links = 0;
    for operation in &operations {
        for response in operation["responses"].as_object().expect("responses").values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let id =
                    link["operationId"].as_str().unwrap_or_else(|| panic!("link {name} names no operationId: {link}"));
                let target = operations
                    .iter()
                    .find(|op| op["operationId"] == id)
                    .unwrap_or_else(|| panic!("link {name}: no {id}"));
                for parameter in link["parameters"].as_object().expect("parameters").keys() {
                    let taken =
                        target["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == parameter.as_str());
                    assert!(taken, "link {name}: {id} takes no parameter {parameter}");
                }
                links += 1;
            }
        }
    }
    assert!(links >= 10, "the creating operations link to what reads and changes their result: {links}");
}
