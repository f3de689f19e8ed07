//! API errors: one JSON shape for every refusal, `{"error": {"code", "message", "field"?}}`,
//! with the most precise status code that applies. `code` is stable (clients branch on
//! it); `message` is for people and names the input and what was wrong.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analysis::RequestError;
use crate::store::StoreError;

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_request`, `not_found`.
    pub code: String,
    /// What was wrong, for a person.
    pub message: String,
    /// The request field at fault, when there is one (e.g. `canary`, `metrics.latency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A refused or failed request.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// 400: the request is well-formed JSON but asks for something invalid.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn no_analysis(id: &str) -> ApiError {
        ApiError::not_found(format!("no analysis with id `{id}`"))
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> ApiError {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            // The database did not answer (locked, full disk, I/O): the client may retry.
            StoreError::Database(_) | StoreError::Interrupted => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            ),
            // Damage to the file does not go away by retrying: say so, and that it needs
            // an operator.
            StoreError::DatabaseCorrupt(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_corrupt",
                format!("{e}; retrying will not help: the database needs repair or a restore"),
            ),
            // One record is damaged; the message names it and the field.
            StoreError::Corrupt { .. } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_record",
                e.to_string(),
            ),
            StoreError::Migrate(_) | StoreError::Url(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"augury\""),
            );
        }
        response
    }
}

/// A query string read as `T` (axum's `Query`), refused as `invalid_query` in the JSON
/// error shape rather than axum's plain-text answer (a repeated parameter, a value of
/// the wrong type).
pub struct QueryParams<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| QueryParams(q))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}

/// A path parameter (axum's `Path`), refused as `invalid_path` in the JSON error shape
/// (a segment that is not UTF-8 once percent-decoded).
pub struct PathParam<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for PathParam<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(p)| PathParam(p))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))
    }
}

/// Parses a JSON request body. Syntax errors are `malformed_json` with the line and
/// column; a well-formed body of the wrong shape is `invalid_body` naming the field.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        body_error(inner, path)
    })?;
    de.end().map_err(|e| body_error(e, ".".into()))?;
    Ok(value)
}

fn body_error(e: serde_json::Error, path: String) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not valid JSON: {e}"),
        ),
        Category::Data => {
            let message = e.to_string();
            // The path names the field at fault, an unknown one included; a missing
            // field is reported at its parent, "." for the root.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            let field = match (path.as_str(), missing) {
                (".", Some(name)) => Some(name.to_string()),
                (".", None) => None,
                (p, Some(name)) => Some(format!("{p}.{name}")),
                (p, None) => Some(p.to_string()),
            };
            let error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("request body: {message}"),
            );
            match field {
                Some(f) => error.with_field(f),
                None => error,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::AnalysisRequest;

    #[test]
    fn syntax_errors_are_malformed_json_with_a_position() {
        let e = parse_json::<AnalysisRequest>(b"{\"key\": \"a\",,}").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "malformed_json");
        assert!(e.message.contains("line 1 column 13"), "{}", e.message);
        let e = parse_json::<AnalysisRequest>(b"{\"key\": ").unwrap_err();
        assert_eq!(e.code, "malformed_json");
        let e = parse_json::<serde_json::Value>(b"{} {}").unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = parse_json::<AnalysisRequest>(
            br#"{"key": "k", "model": "m", "baseline": {"a": 1}, "canary": {}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_body");
        assert_eq!(e.field.as_deref(), Some("baseline.a"));
        let e = parse_json::<AnalysisRequest>(
            br#"{"key": "k", "model": "m", "baseline": {}, "canary": {}, "colour": 1}"#,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("colour"));
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
        let e = parse_json::<AnalysisRequest>(br#"{"key": "k"}"#).unwrap_err();
        assert_eq!(e.code, "invalid_body");
        assert!(e.message.contains("missing field `model`"), "{}", e.message);
        assert_eq!(e.field.as_deref(), Some("model"));
    }
}
