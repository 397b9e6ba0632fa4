//! The OpenAPI 3.1 document, generated from the handlers: each documented handler carries a
//! `#[utoipa::path]` and is registered through `utoipa_axum::routes!`, so the router and the document
//! come from the same registration. Served at `/api-docs/openapi.json`, browsable at `/docs` (Swagger UI,
//! assets compiled in); `api/openapi.json` is the committed copy a test compares with.

pub mod error_codes;

use crate::{config::ResilienceArgs, http::error::ProblemBody, http::protect::Protection, AppState};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

pub const DOCUMENT_PATH: &str = "/api-docs/openapi.json";
pub const UI_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "settle-api",
        description = "The shop's API: coupon rushes, points, accounts, catalogue, carts and orders. Every \
                       error is an RFC 9457 problem body (application/problem+json) with a stable `code`; \
                       outages answer 503 with Retry-After."
    ),
    components(schemas(ProblemBody)),
    modifiers(&BearerToken),
    tags(
        (name = "coupons", description = "Coupon policies (admin), issuance V1/V2/V3, the caller's coupons"),
        (name = "accounts", description = "Sign-up, sessions (login, refresh, logout), profile, password, login history"),
        (name = "shop", description = "Catalogue (admins change it, anyone browses), carts, orders"),
        (name = "points", description = "The ledger: earn (admin), use, cancel, balance, history"),
    )
)]
pub struct ApiDoc;

/// The problem answers every operation may give: a refusal with its code, or an outage.
#[derive(utoipa::IntoResponses)]
pub enum Problems {
    /// Refused: the problem body's `code` says why (the Problem schema lists every code; any
    /// operation may refuse an unreadable request, a missing or bad token, or a limit).
    #[response(status = "4XX", content_type = "application/problem+json")]
    Refused(ProblemBody),
    /// A dependency is unavailable or the route group is at capacity; retry after `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(ProblemBody),
}

/// The bearer scheme every signed-in route names (`security(("bearer" = []))`).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The router of `routes` and the document of it: the head (info, schemes, shared schemas) with the
/// paths the routes registered, each operation narrowed to the error codes it declares.
pub fn split(routes: OpenApiRouter<AppState>) -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes).split_for_parts();
    error_codes::declare(&mut document);
    spell_link_fields(&mut document);
    describe_plain_answers(&mut document);
    (router, document)
}

/// A response must have a description (OpenAPI requires one); where the handler's body type says all
/// there is to say, it is the status's reason phrase.
fn describe_plain_answers(document: &mut utoipa::openapi::OpenApi) {
    for (status, response) in responses_mut(document) {
        let reason = status.parse().ok().and_then(|code| axum::http::StatusCode::from_u16(code).ok());
        if let (true, Some(reason)) = (response.description.is_empty(), reason.and_then(|r| r.canonical_reason())) {
            response.description = reason.to_owned();
        }
    }
}

/// Every operation of the document.
fn operations_mut(
    document: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    document.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
    })
}

/// Every inline response of every operation, with its status (`200`, `4XX`, ...).
fn responses_mut(
    document: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&String, &mut utoipa::openapi::Response)> {
    operations_mut(document).flat_map(|operation| {
        operation.responses.responses.iter_mut().filter_map(|(status, response)| match response {
            utoipa::openapi::RefOr::T(response) => Some((status, response)),
            utoipa::openapi::RefOr::Ref(_) => None,
        })
    })
}

/// utoipa 5.5 writes a Link object's `operationId` as `operation_id`, which no OpenAPI tool reads: the
/// field moves to the link's flattened extension map, which is written as named.
fn spell_link_fields(document: &mut utoipa::openapi::OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                let utoipa::openapi::RefOr::T(response) = response else { continue };
                for link in response.links.values_mut() {
                    let utoipa::openapi::RefOr::T(link) = link else { continue };
                    let operation_id = std::mem::take(&mut link.operation_id);
                    link.extensions
                        .get_or_insert_with(Default::default)
                        .insert("operationId".into(), operation_id.into());
                }
            }
        }
    }
}

/// The document as settle-api serves it (the routes do not depend on the protection's settings).
pub fn document() -> utoipa::openapi::OpenApi {
    split(crate::routes::router(&Protection::new(&ResilienceArgs::default()), &crate::config::RouteGroup::ALL)).1
}

/// `/api-docs/openapi.json` and Swagger UI at `/docs`.
pub fn docs_router(document: utoipa::openapi::OpenApi) -> axum::Router {
    SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, document).into()
}
