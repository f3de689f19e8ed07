//! HTTP transport: `POST /v1/traces` with `application/x-protobuf` or `application/json`
//! bodies, optionally `Content-Encoding: gzip`.
//!
//! Answers follow OTLP/HTTP: 200 with an `ExportTraceServiceResponse` (partial success
//! when spans were rejected); errors carry a `google.rpc.Status` encoded like the request
//! (400 undecodable, 413 too large, 429 busy with `Retry-After`); 415 (plain text) when the
//! content type or encoding is not one OTLP defines. Cheap header checks run first (a
//! declared length past `max_body_bytes` is refused before anything is read), then the
//! body is read, never past `max_body_bytes`, its bytes taken from the in-flight budget
//! as they arrive; only then does the request take a decode permit. A request refused
//! for load has its body read to the end (and discarded) before the 429 goes out, so the
//! answer reaches the sender on a connection still in order, never as a reset.

use std::future::Future;
use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt as _;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};

use super::{Counters, IngestOutcome, OtlpError, RpcStatus, Shared, ingest_protobuf_with, observe};
use crate::net::{Listener, serve_http};

pub(super) const TRACES_PATH: &str = "/v1/traces";
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

pub(super) async fn serve(
    listener: Listener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OtlpError> {
    let app = Router::new()
        .route(TRACES_PATH, post(export))
        .with_state(shared);
    serve_http(listener, app, shutdown)
        .await
        .map_err(|e| OtlpError::Serve {
            transport: "HTTP",
            message: e.to_string(),
        })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Payload {
    Protobuf,
    Json,
}

impl Payload {
    fn content_type(self) -> &'static str {
        match self {
            Payload::Protobuf => PROTOBUF,
            Payload::Json => JSON,
        }
    }
}

/// A request the receiver refuses for its headers (415), saying what to send instead.
#[derive(Debug, thiserror::Error)]
enum Unsupported {
    #[error("missing Content-Type: send {p} or {j}", p = PROTOBUF, j = JSON)]
    NoContentType,
    #[error("unsupported Content-Type {0:?}: send {p} or {j}", p = PROTOBUF, j = JSON)]
    ContentType(String),
    #[error("unsupported Content-Encoding {0:?}: send gzip or no encoding")]
    ContentEncoding(String),
}

/// Media type without parameters (`; charset=utf-8`), compared case-insensitively.
fn payload_of(headers: &HeaderMap) -> Result<Payload, Unsupported> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Unsupported::NoContentType);
    };
    let text = value.to_str().unwrap_or("");
    let media = text.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(PROTOBUF) {
        Ok(Payload::Protobuf)
    } else if media.eq_ignore_ascii_case(JSON) {
        Ok(Payload::Json)
    } else {
        Err(Unsupported::ContentType(text.to_string()))
    }
}

/// Whether the body is gzip-compressed; refuses any other coding.
fn gzipped(headers: &HeaderMap) -> Result<bool, Unsupported> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(true)
    } else if text.is_empty() || text.eq_ignore_ascii_case("identity") {
        Ok(false)
    } else {
        Err(Unsupported::ContentEncoding(text.to_string()))
    }
}

async fn export(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let counters = &shared.http;
    let payload = match payload_of(&headers) {
        Ok(p) => p,
        Err(e) => return unsupported(counters, e.to_string()),
    };
    let gzip = match gzipped(&headers) {
        Ok(g) => g,
        Err(e) => return unsupported(counters, e.to_string()),
    };
    let limit = shared.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > limit as u64) {
        Counters::bump(&counters.too_large);
        return too_large(payload, len, limit);
    }

    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(shared.config.request_timeout_seconds);
    // The body's bytes stay counted in the in-flight budget until it is answered.
    let (raw, _held) = match read_body(&shared, body, declared, deadline).await {
        BodyRead::Body(raw, held) => (raw, held),
        BodyRead::Busy => {
            Counters::bump(&counters.throttled);
            return busy(&shared, payload);
        }
        BodyRead::TimedOut => {
            Counters::bump(&counters.invalid);
            return error(
                payload,
                StatusCode::REQUEST_TIMEOUT,
                4,
                format!(
                    "the request body did not arrive within {} s",
                    shared.config.request_timeout_seconds
                ),
            );
        }
        BodyRead::TooLarge => {
            Counters::bump(&counters.too_large);
            return error(
                payload,
                StatusCode::PAYLOAD_TOO_LARGE,
                8,
                format!("request body is larger than the limit of {limit} bytes"),
            );
        }
        BodyRead::Failed(e) => {
            Counters::bump(&counters.invalid);
            return error(
                payload,
                StatusCode::BAD_REQUEST,
                3,
                format!("reading the request body: {e}"),
            );
        }
    };
    // Decoding takes a permit; the body is already in, so nobody slow holds one.
    let Ok(_permit) = Arc::clone(&shared.gate).try_acquire_owned() else {
        Counters::bump(&counters.throttled);
        return busy(&shared, payload);
    };

    let inflated;
    let bytes: &[u8] = if gzip {
        match gunzip(&raw, limit) {
            Ok(out) => {
                inflated = out;
                &inflated
            }
            Err(Gunzip::TooLarge) => {
                Counters::bump(&counters.too_large);
                return error(
                    payload,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    8,
                    format!("gzip body inflates past the limit of {limit} bytes"),
                );
            }
            Err(Gunzip::Corrupt(e)) => {
                Counters::bump(&counters.invalid);
                return error(
                    payload,
                    StatusCode::BAD_REQUEST,
                    3,
                    format!("gzip body cannot be decompressed: {e}"),
                );
            }
        }
    } else {
        &raw
    };

    let decoded = match payload {
        Payload::Protobuf => ingest_protobuf_with(&shared, bytes),
        Payload::Json => observe::ingest_json(&shared.windows, bytes),
    };
    match decoded {
        Ok(outcome) => {
            counters.outcome(&outcome);
            success(payload, outcome)
        }
        Err(e) => {
            Counters::bump(&counters.invalid);
            error(
                payload,
                StatusCode::BAD_REQUEST,
                3,
                format!("undecodable ExportTraceServiceRequest: {e}"),
            )
        }
    }
}

/// How reading a request body ended.
enum BodyRead {
    /// All of it, with the in-flight bytes it holds.
    Body(Vec<u8>, Option<tokio::sync::OwnedSemaphorePermit>),
    /// The in-flight budget had no room: the rest of the body was read and discarded.
    Busy,
    TimedOut,
    /// Past `max_body_bytes`.
    TooLarge,
    Failed(axum::Error),
}

/// Reads `body` until `deadline`, never past `max_body_bytes`, taking its bytes from the
/// in-flight budget as they arrive. When the budget has no room, the rest of the body is
/// still read (and dropped, up to the size limit and the deadline), so that the 429 that
/// follows finds the connection in order rather than being lost to a reset.
async fn read_body(
    shared: &Shared,
    body: Body,
    declared: Option<u64>,
    deadline: tokio::time::Instant,
) -> BodyRead {
    let limit = shared.config.max_body_bytes;
    let mut body = body;
    // A declared length (within the limit) sizes the buffer once.
    let mut raw = Vec::with_capacity(declared.map_or(0, |n| (n as usize).min(limit)));
    let mut held = None;
    let mut seen = 0usize;
    let mut busy = false;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return BodyRead::TimedOut,
            Ok(None) => break,
            Ok(Some(Err(e))) => return BodyRead::Failed(e),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            return BodyRead::TooLarge;
        }
        if busy {
            continue;
        }
        if shared.take_bytes(data.len(), &mut held) {
            raw.extend_from_slice(&data);
        } else {
            busy = true;
            raw = Vec::new();
            held = None;
        }
    }
    if busy {
        BodyRead::Busy
    } else {
        BodyRead::Body(raw, held)
    }
}

/// 429 with `Retry-After`: the receiver is at one of its load limits.
fn busy(shared: &Shared, payload: Payload) -> Response {
    let mut response = error(
        payload,
        StatusCode::TOO_MANY_REQUESTS,
        14,
        shared.busy_message(),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(shared.config.retry_after_seconds),
    );
    response
}

enum Gunzip {
    TooLarge,
    Corrupt(std::io::Error),
}

/// Inflates at most `limit` bytes; one byte more means the body is too large.
fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, Gunzip> {
    let mut out = Vec::with_capacity((raw.len() * 4).min(limit));
    flate2::read::MultiGzDecoder::new(raw)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(Gunzip::Corrupt)?;
    if out.len() > limit {
        return Err(Gunzip::TooLarge);
    }
    Ok(out)
}

fn success(payload: Payload, outcome: IngestOutcome) -> Response {
    let partial = outcome.rejection.map(|message| ExportTracePartialSuccess {
        rejected_spans: outcome.rejected as i64,
        error_message: message,
    });
    let body = match payload {
        Payload::Protobuf => prost::Message::encode_to_vec(&ExportTraceServiceResponse {
            partial_success: partial,
        }),
        // Written by hand: OTLP/JSON wants int64 as a string, which the generated serde
        // mapping does not do for `rejectedSpans`.
        Payload::Json => match partial {
            None => b"{}".to_vec(),
            Some(p) => serde_json::json!({
                "partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }
            })
            .to_string()
            .into_bytes(),
        },
    };
    ([(header::CONTENT_TYPE, payload.content_type())], body).into_response()
}

/// An OTLP error answer: `google.rpc.Status` with a gRPC code, encoded like the request.
fn error(payload: Payload, status: StatusCode, code: i32, message: String) -> Response {
    let body = match payload {
        Payload::Protobuf => prost::Message::encode_to_vec(&RpcStatus { code, message }),
        Payload::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    };
    (
        status,
        [(header::CONTENT_TYPE, payload.content_type())],
        body,
    )
        .into_response()
}

fn too_large(payload: Payload, len: u64, limit: usize) -> Response {
    error(
        payload,
        StatusCode::PAYLOAD_TOO_LARGE,
        8,
        format!("request body of {len} bytes is larger than the limit of {limit} bytes"),
    )
}

/// 415 in plain text: the sender's encoding is unknown, so no OTLP body can be chosen.
fn unsupported(counters: &Counters, message: String) -> Response {
    Counters::bump(&counters.unsupported);
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}
