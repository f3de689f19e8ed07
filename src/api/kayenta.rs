//! Kayenta's REST API, at its own paths on a listener of its own (`--kayenta-listen`),
//! so that a client of Kayenta changes only the address it calls: Argo Rollouts'
//! `kayenta` metric provider, Spinnaker's canary stage.
//!
//! Routes (docs/kayenta.md, "Kayenta's REST API", says which are compatible and how):
//! `GET|POST /canaryConfig`, `GET|PUT|DELETE /canaryConfig/{id}`, `POST /canary/{configId}`,
//! `GET /canary/{id}`, `GET /credentials`, `GET /judges`.
//!
//! A canary config is a stored Kayenta config (converted to a model by
//! `kayenta::config::convert` when it is stored and when it runs) or any model of the
//! daemon's catalog, listed with the id `model:<name>`. An execution is an analysis made
//! by the same path `POST /api/v1/analyses` takes (validation, notifications, the
//! runner), judging the request's window in one look; its id is the analysis's id.
//!
//! Every refusal is Kayenta's error JSON, `{"message"}` (with `status`, `error` and,
//! when known, `field`), whatever part of the stack refused.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::error::{PathParam, QueryParams};
use super::{ApiError, AppState, ErrorBody, JsonBody};
use crate::clock::{now_ms, rfc3339};
use crate::kayenta::config::{ImportOptions, convert};
use crate::kayenta::execution::{
    ExecutionContext, ExecutionRequest, ModelSource, analysis_request, status,
};
use crate::model::Model;
use crate::store::KayentaConfig;

/// The id prefix of the catalog's models among canary configs.
pub const MODEL_ID_PREFIX: &str = "model:";

/// Route templates, as `augury_http_requests_total{route}` shows them.
pub mod routes {
    pub const CONFIGS: &str = "/canaryConfig";
    pub const CONFIG: &str = "/canaryConfig/{id}";
    pub const CANARY: &str = "/canary/{id}";
    pub const CREDENTIALS: &str = "/credentials";
    pub const JUDGES: &str = "/judges";
    pub const ALL: [&str; 5] = [CONFIGS, CONFIG, CANARY, CREDENTIALS, JUDGES];
}

/// Kayenta's API, ready to serve on its own listener. No token is asked: neither Argo
/// Rollouts' provider nor Spinnaker sends one (docs/kayenta.md says how to protect it).
pub fn router(state: AppState) -> Router {
    use routes::*;
    Router::new()
        .route(CONFIGS, get(list_configs).post(create_config))
        .route(
            CONFIG,
            get(get_config).put(update_config).delete(delete_config),
        )
        .route(CANARY, post(start).get(execution))
        .route(CREDENTIALS, get(credentials))
        .route(JUDGES, get(judges))
        .fallback(unknown_route)
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::declared_length,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::deadline,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::observe,
        ))
        .layer(middleware::from_fn(kayenta_errors))
        .with_state(state)
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {} on the Kayenta listener (docs/kayenta.md lists the routes served)",
        request.method(),
        request.uri().path()
    ))
}

/// Turns every refusal in Augury's error JSON into Kayenta's, `{"message"}` with the
/// status (Spring's `status` and `error` too, and `field` when known).
async fn kayenta_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let Ok(error) = serde_json::from_slice::<ErrorBody>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut out = json!({
        "message": error.error.message,
        "status": parts.status.as_u16(),
        "error": parts.status.canonical_reason().unwrap_or(""),
        "code": error.error.code,
    });
    if let Some(field) = error.error.field {
        out["field"] = json!(field);
    }
    let body = serde_json::to_vec(&out).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// The query string's parameters, each name with every value given (a repeated name, or
/// values joined by commas, as Spring binds a list).
fn query(pairs: Vec<(String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        out.entry(k).or_default().push(v);
    }
    out
}

fn first(q: &BTreeMap<String, Vec<String>>, name: &str) -> Option<String> {
    q.get(name)
        .and_then(|v| v.first())
        .filter(|v| !v.is_empty())
        .cloned()
}

/// One line of `GET /canaryConfig`.
fn listing(id: &str, name: &str, updated_ms: i64, applications: &[String]) -> Value {
    json!({
        "id": id,
        "name": name,
        "updatedTimestamp": updated_ms,
        "updatedTimestampIso": rfc3339(updated_ms),
        "applications": applications,
    })
}

/// `GET /canaryConfig?application=&configurationAccountName=`: stored configs (of those
/// applications, when given), then every model of the catalog as `model:<name>`, listed
/// under the applications asked for (a model serves any).
async fn list_configs(
    State(state): State<AppState>,
    QueryParams(raw): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let q = query(raw);
    let wanted: Vec<String> = q
        .get("application")
        .into_iter()
        .flatten()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let mut out = Vec::new();
    for c in state.store.kayenta_configs().await? {
        if wanted.is_empty() || c.applications.iter().any(|a| wanted.contains(a)) {
            out.push(listing(&c.id, &c.name, c.updated_ms, &c.applications));
        }
    }
    for m in state.catalog.models() {
        out.push(listing(
            &format!("{MODEL_ID_PREFIX}{}", m.name),
            &m.name,
            0,
            &wanted,
        ));
    }
    Ok(Json(out))
}

fn no_config(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no canary config `{id}` (stored configs and `model:<name>` for the daemon's models; \
         GET /canaryConfig lists them)"
    ))
}

/// `GET /canaryConfig/{id}`: a stored config as stored, or a catalog model described in
/// Kayenta's terms (its metrics, groups and thresholds) with the model itself under
/// `augury`.
async fn get_config(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some(name) = id.strip_prefix(MODEL_ID_PREFIX) {
        let model = state.catalog.get(name).ok_or_else(|| no_config(&id))?;
        return Ok(Json(describe(&id, model)));
    }
    let c = state
        .store
        .kayenta_config(&id)
        .await?
        .ok_or_else(|| no_config(&id))?;
    Ok(Json(c.config))
}

fn describe(id: &str, m: &Model) -> Value {
    let metrics: Vec<Value> = m
        .metrics
        .iter()
        .map(|x| json!({"name": x.name, "groups": [x.group()], "scopeName": "default"}))
        .collect();
    json!({
        "id": id,
        "name": m.name,
        "description": m.description,
        "applications": [],
        "configVersion": "1",
        "judge": {"name": "augury", "judgeConfigurations": {}},
        "metrics": metrics,
        "templates": {},
        "classifier": {
            "groupWeights": m.groups.iter().map(|(k, g)| (k.clone(), json!(g.weight))).collect::<serde_json::Map<_, _>>(),
            "scoreThresholds": {"pass": m.thresholds.pass, "marginal": m.thresholds.marginal},
        },
        "augury": m,
    })
}

/// Kayenta's checks of a config written to it, then the conversion: the config's name,
/// applications and model, or the refusal.
fn checked(config: &Value) -> Result<(String, Vec<String>, Vec<Value>), ApiError> {
    let Some(object) = config.as_object() else {
        return Err(ApiError::invalid(
            "(config)",
            "a canary config is a JSON object",
        ));
    };
    let name = object.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::invalid(
            "name",
            "Canary config must specify a name.",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(
            "name",
            format!(
                "Canary config cannot be named '{name}'. Names must contain only letters, \
                 numbers, dashes (-) and underscores (_)."
            ),
        ));
    }
    let applications: Vec<String> = match object.get("applications") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    if applications.is_empty() {
        return Err(ApiError::invalid(
            "applications",
            "Canary config must specify at least one application.",
        ));
    }
    let imported = convert(config, &ImportOptions::default()).map_err(|e| {
        ApiError::invalid(
            e.field.clone(),
            format!("this config cannot be judged by Augury: {e}"),
        )
    })?;
    let unmapped = imported
        .unmapped
        .iter()
        .map(|u| json!({"field": u.field, "reason": u.reason}))
        .collect();
    Ok((name.to_string(), applications, unmapped))
}

/// Sets what Kayenta sets on a stored config: its id and timestamps.
fn stamped(mut config: Value, id: &str, created_ms: i64, updated_ms: i64) -> Value {
    if let Some(o) = config.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.insert("createdTimestamp".into(), json!(created_ms));
        o.insert("createdTimestampIso".into(), json!(rfc3339(created_ms)));
        o.insert("updatedTimestamp".into(), json!(updated_ms));
        o.insert("updatedTimestampIso".into(), json!(rfc3339(updated_ms)));
    }
    config
}

/// `POST /canaryConfig`: stores a config Augury can judge by (409 when its id is taken);
/// answers `{"canaryConfigId"}` and the fields that had no counterpart (`unmapped`).
async fn create_config(
    State(state): State<AppState>,
    JsonBody(config): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let id = match config.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => uuid::Uuid::now_v7().to_string(),
    };
    if id.starts_with(MODEL_ID_PREFIX) || id.contains('/') {
        return Err(ApiError::invalid(
            "id",
            format!(
                "`{id}`: ids starting with `{MODEL_ID_PREFIX}` name the daemon's models, and ids cannot hold `/`"
            ),
        ));
    }
    let (name, applications, unmapped) = checked(&config)?;
    let now = now_ms();
    let created = config
        .get("createdTimestamp")
        .and_then(Value::as_i64)
        .unwrap_or(now);
    let stored = KayentaConfig {
        config: stamped(config, &id, created, created),
        id: id.clone(),
        name,
        applications,
        created_ms: created,
        updated_ms: created,
    };
    if !state.store.insert_kayenta_config(&stored).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "config_exists",
            format!("Canary config '{id}' already exists."),
        )
        .with_field("id"));
    }
    Ok(Json(json!({"canaryConfigId": id, "unmapped": unmapped})))
}

/// `PUT /canaryConfig/{id}`: replaces a stored config (404 when there is none).
async fn update_config(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    JsonBody(config): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    if id.starts_with(MODEL_ID_PREFIX) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "read_only",
            format!("`{id}` is one of the daemon's models, read from its model files"),
        ));
    }
    let (name, applications, unmapped) = checked(&config)?;
    let existing = state
        .store
        .kayenta_config(&id)
        .await?
        .ok_or_else(|| no_config(&id))?;
    let now = now_ms();
    let stored = KayentaConfig {
        config: stamped(config, &id, existing.created_ms, now),
        id: id.clone(),
        name,
        applications,
        created_ms: existing.created_ms,
        updated_ms: now,
    };
    if !state.store.update_kayenta_config(&stored).await? {
        return Err(no_config(&id));
    }
    Ok(Json(json!({"canaryConfigId": id, "unmapped": unmapped})))
}

/// `DELETE /canaryConfig/{id}`: 204, or 404 when there is no such stored config.
async fn delete_config(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_kayenta_config(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_config(&id))
    }
}

/// `POST /canary/{configId}?application&parentPipelineExecutionId&metricsAccountName&configurationAccountName&storageAccountName`:
/// starts an execution, an analysis of the request's window; answers exactly 200
/// `{"canaryExecutionId"}`.
async fn start(
    State(state): State<AppState>,
    PathParam(config_id): PathParam<String>,
    QueryParams(raw): QueryParams<Vec<(String, String)>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw);
    let request: ExecutionRequest = serde_path_to_error::deserialize(&body).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid(path, format!("request body: {}", e.into_inner()))
    })?;
    let (model, stored_config, from_catalog) =
        if let Some(name) = config_id.strip_prefix(MODEL_ID_PREFIX) {
            let model = state
                .catalog
                .get(name)
                .ok_or_else(|| no_config(&config_id))?;
            (model.clone(), None, true)
        } else {
            let stored = state
                .store
                .kayenta_config(&config_id)
                .await?
                .ok_or_else(|| no_config(&config_id))?;
            let imported = convert(&stored.config, &ImportOptions::default()).map_err(|e| {
                ApiError::invalid(
                    e.field.clone(),
                    format!("canary config `{config_id}` cannot be judged by Augury: {e}"),
                )
            })?;
            (imported.model, Some(stored.config), false)
        };
    let source = if from_catalog {
        ModelSource::Catalog(&model)
    } else {
        ModelSource::Converted(&model)
    };
    let key = format!("kayenta/{}", uuid::Uuid::now_v7().simple());
    let analysis = analysis_request(&request, source, &key)
        .map_err(|e| ApiError::invalid(e.field, e.message))?;
    let valid = state.validate(analysis)?;
    let recipients = state.notifiers.recipients(None)?;
    let context = ExecutionContext {
        application: first(&q, "application"),
        parent_pipeline_execution_id: first(&q, "parentPipelineExecutionId"),
        canary_config_id: Some(config_id.clone()),
        metrics_account_name: first(&q, "metricsAccountName"),
        configuration_account_name: first(&q, "configurationAccountName"),
        storage_account_name: first(&q, "storageAccountName"),
        request: Some(body),
        config: stored_config,
    };
    let text = serde_json::to_string(&context)
        .map_err(|e| ApiError::internal(format!("execution context: {e}")))?;
    state.store.put_kayenta_execution(&key, &text).await?;
    let (analysis, _) = match super::analyses::create_watched(&state, &valid, &recipients).await? {
        Ok(made) => made,
        Err(refused) => return Err(refusal(refused).await),
    };
    Ok(Json(json!({"canaryExecutionId": analysis.id})))
}

/// A refusal already rendered as a response, back as an error.
async fn refusal(response: Response) -> ApiError {
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
    ApiError::new(status, "refused", message)
}

/// `GET /canary/{id}`: the execution's status, exactly 200 (404 for an unknown id).
async fn execution(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    let analysis = state
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no canary execution `{id}`")))?;
    state.verdicts.asked(&state.store, &analysis, now_ms());
    let context = match state.store.kayenta_execution(&analysis.key).await? {
        Some(text) => serde_json::from_str(&text).unwrap_or_default(),
        None => ExecutionContext::default(),
    };
    Ok(Json(status(&analysis, &context)).into_response())
}

/// `GET /credentials`: the accounts Kayenta would list; Augury has one store for
/// configs and results, and Prometheus for metrics when configured. Account names sent
/// by clients are accepted and echoed, never needed.
async fn credentials(State(state): State<AppState>) -> Json<Value> {
    let mut accounts = vec![json!({
        "name": "augury",
        "type": "augury",
        "supportedTypes": ["CONFIGURATION_STORE", "OBJECT_STORE"],
    })];
    if state.packs.is_some() {
        accounts.push(json!({
            "name": "prometheus",
            "type": "prometheus",
            "supportedTypes": ["METRICS_STORE"],
        }));
    }
    Json(Value::Array(accounts))
}

/// `GET /judges`: Augury's judge, by the rules a model chooses.
async fn judges() -> Json<Value> {
    Json(json!([
        {"name": "augury", "visible": true},
        {"name": "augury-kayenta-rules", "visible": true},
    ]))
}
