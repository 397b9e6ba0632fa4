//! The OpenAPI 3.1 document, generated from the handlers: each documented handler carries a
//! `#[utoipa::path]` and is registered through `utoipa_axum::routes!`, so the router and the document
//! come from the same registration. Served at `/api-docs/openapi.json`, browsable at `/docs` (Swagger UI,
//! assets compiled in); `api/openapi.json` is the committed copy a test compares with.

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
    /// Refused: the problem body's `code` says why (see the error catalogue).
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

/// The document's head (info, schemes, shared schemas) over `routes`, whose paths it collects.
pub fn with_routes(routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes)
}

/// The document as settle-api serves it (the routes do not depend on the protection's settings).
pub fn document() -> utoipa::openapi::OpenApi {
    with_routes(crate::routes::router(&Protection::new(&ResilienceArgs::default()))).into_openapi()
}

/// `/api-docs/openapi.json` and Swagger UI at `/docs`.
pub fn docs_router(document: utoipa::openapi::OpenApi) -> axum::Router {
    SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, document).into()
}
