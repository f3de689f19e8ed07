//! The OpenAPI document, generated from the route handlers and the types they exchange.
//!
//! It states what the server enforces: required fields, lengths, ranges, patterns,
//! enums, `additionalProperties: false` where a type refuses unknown fields, every
//! status a route can answer with its body, and the links from a created analysis to
//! the routes that take its id. Rules that span several fields (a scope must hold every
//! name its model lists, `lifetime` at least `interval`, a model's group weights at most
//! 100) cannot be written in JSON Schema; the descriptions say them.
//!
//! Three parts depend on how the daemon runs and are filled in per request from its
//! state ([`for_state`]): the model names it knows (`ModelName`'s enum), the notifiers
//! configured (`notify`'s items) and whether mutating routes need a bearer token.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{AppState, analyses, gates, health, judge};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Augury",
        description = "Canary judge daemon: analyses comparing a canary with its baseline, their verdicts, stateless judgments and controller gates.\n\nEvery refusal is a JSON `ErrorBody` with the most precise status. Every route is bounded: request bodies to 1 MiB (413 beyond), each request to 10 s, reading its body included (503 `timeout` beyond). POST routes take `Content-Type: application/json` only (415 otherwise). When the daemon is started with API tokens, POST and DELETE routes need `Authorization: Bearer <token>` (401 otherwise; the Flagger gate also takes the token from its metadata)."
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

/// Operations that change something: they need a token when auth is on.
const MUTATING: [(&str, &str); 4] = [
    ("/api/v1/analyses", "post"),
    ("/api/v1/analyses/{id}", "delete"),
    ("/api/v1/judge", "post"),
    ("/api/v1/gates/flagger", "post"),
];

/// Operations that read analyses: they need a token once read-only tokens exist.
const READING: [(&str, &str); 3] = [
    ("/api/v1/analyses", "get"),
    ("/api/v1/analyses/{id}", "get"),
    ("/api/v1/analyses/{id}/verdict", "get"),
];

/// The document of this daemon: [`ApiDoc`] with the parts that depend on its state.
pub fn for_state(state: &AppState) -> Value {
    let names: Vec<String> = state.catalog.names().map(str::to_string).collect();
    let notifiers: Vec<String> = state.notifiers.notifiers.keys().cloned().collect();
    complete(
        serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null),
        &names,
        &notifiers,
        state.auth.is_some(),
        state.auth.as_ref().is_some_and(|t| !t.read.is_empty()),
    )
}

/// Fills in what the derive cannot say: `models` are the model names the daemon
/// knows, `notifiers` the configured notifier names, `auth` whether tokens are needed
/// to change anything, `reads` whether they are needed to read analyses too.
pub fn complete(
    mut doc: Value,
    models: &[String],
    notifiers: &[String],
    auth: bool,
    reads: bool,
) -> Value {
    let schemas = &mut doc["components"]["schemas"];
    schemas["ModelName"] = json!({
        "type": "string",
        "description": "The name of a model this daemon knows (built-in or from `--models`).",
        "enum": models,
    });
    schemas["ModelRef"] = json!({
        "description": "A model: the name of one the daemon knows, or an inline model object, validated as a model file is.",
        "oneOf": [
            {"$ref": "#/components/schemas/ModelName"},
            {"$ref": "#/components/schemas/Model"},
        ],
    });
    // Names the config file does not define are refused; with none configured, `notify`
    // can only be empty.
    schemas["AnalysisRequest"]["properties"]["notify"]["items"] = if notifiers.is_empty() {
        json!({"type": "string"})
    } else {
        json!({"type": "string", "enum": notifiers})
    };
    if notifiers.is_empty() {
        schemas["AnalysisRequest"]["properties"]["notify"]["maxItems"] = json!(0);
    }
    schemas["Histogram"] = histogram_schema();
    schemas["HistogramSide"]["properties"]["histogram"] =
        json!({"$ref": "#/components/schemas/Histogram"});

    // The list's parameters: an empty value is the same as none (`?status=` lists all).
    if let Some(params) = doc["paths"]["/api/v1/analyses"]["get"]["parameters"].as_array_mut() {
        for p in params {
            match p["name"].as_str() {
                Some("status") => {
                    p["schema"] = json!({"type": "string",
                        "enum": ["running", "pass", "fail", "inconclusive", "cancelled", ""]});
                }
                Some("limit") => {
                    p["schema"] = json!({"anyOf": [
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        {"type": "string", "maxLength": 0},
                    ]});
                }
                _ => {}
            }
        }
    }

    for (path, method) in MUTATING
        .into_iter()
        .chain(READING.into_iter().filter(|_| reads))
    {
        let operation = &mut doc["paths"][path][method];
        if auth {
            operation["security"] = json!([{"bearer": []}]);
        } else if let Some(o) = operation.as_object_mut() {
            o.remove("security");
        }
    }
    doc
}

/// A log-bucketed histogram as the API reads it (`stats::histogram`'s stored form).
fn histogram_schema() -> Value {
    json!({
        "type": "object",
        "description": "A log-bucketed histogram of non-negative values: `counts[i]` observations fell in bucket `offset + i` (bucket k holds values in (gamma^(k-1), gamma^k], gamma = 1.01/0.99), `zero` were at or near 0. Buckets lie within -1036..=1727; the total count fits in 64 bits; `sum` is finite and >= 0 (0 when empty); `min` and `max` are null when empty, else they fall in the first and last non-empty buckets.",
        "required": ["offset", "counts", "zero", "sum"],
        "properties": {
            "offset": {"type": "integer", "format": "int32"},
            "counts": {"type": "array", "items": {"type": "integer", "format": "int64", "minimum": 0}},
            "zero": {"type": "integer", "format": "int64", "minimum": 0},
            "sum": {"type": "number", "minimum": 0},
            "min": {"type": ["number", "null"]},
            "max": {"type": ["number", "null"]},
        },
    })
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    responses(
        (status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s); retry", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    )
)]
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(for_state(&state))
}
