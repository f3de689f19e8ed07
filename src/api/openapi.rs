//! The OpenAPI document, generated from the route handlers and the types they exchange.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{analyses, gates, health, judge};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Augury",
        description = "Canary judge daemon: analyses comparing a canary with its baseline, their verdicts, stateless judgments and controller gates."
    ),
    paths(
        analyses::create,
        analyses::list,
        analyses::detail,
        analyses::verdict,
        analyses::cancel,
        judge::judge,
        gates::flagger,
        health::healthz,
        health::readyz,
        health::metrics,
        document,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "analyses", description = "Analyses and their verdicts"),
        (name = "judge", description = "One-shot judgments"),
        (name = "gates", description = "Rollout controller webhooks"),
        (name = "health", description = "Liveness, readiness, own metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
