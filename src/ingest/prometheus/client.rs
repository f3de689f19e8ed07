//! Client for the Prometheus HTTP query API (`/api/v1/query`, `/api/v1/query_range`),
//! which Thanos, Mimir, VictoriaMetrics and others also serve.
//!
//! Owns: authentication (bearer token, basic auth, custom headers), per-attempt timeouts,
//! retries with exponential back-off for failures that can pass (connection errors,
//! timeouts, 429, 5xx), and decoding every result type the API returns (vector, matrix,
//! scalar, string) together with the server's `warnings` and `infos`.
//! Never: interpreting results. What a result *means* for a metric (nodata, counts,
//! buckets) is decided by the caller; here a `NaN` sample is just an `f64::NAN`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::config::{MAX_BACKOFF, PrometheusConfig};

/// A configured API client. Cheap to clone (connections are pooled and shared).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// `base` without credentials, for messages.
    shown: String,
    retries: u32,
    backoff: Duration,
    timeout: Duration,
}

/// A `prometheus:` config that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("prometheus.url: `{url}` {reason}")]
    Url { url: String, reason: String },
    #[error("prometheus.headers.{name}: {reason}")]
    Header { name: String, reason: String },
    #[error("prometheus: {0}")]
    Auth(String),
    #[error("prometheus: cannot build the HTTP client: {0}")]
    Build(String),
}

/// A query that did not give a result. `attempts` counts every try, retries included.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("{url}: {reason} (after {attempts} attempt(s))")]
    Transport {
        url: String,
        attempts: u32,
        /// The attempt ran past the configured timeout.
        timed_out: bool,
        reason: String,
    },
    #[error("{url}: HTTP {status} (after {attempts} attempt(s)): {body}")]
    Status {
        url: String,
        attempts: u32,
        status: u16,
        /// The start of the response body.
        body: String,
    },
    #[error("{url}: Prometheus refused the query ({error_type}, HTTP {status}): {error}")]
    Api {
        url: String,
        attempts: u32,
        status: u16,
        /// `bad_data`, `execution`, `timeout`, `canceled`, `internal`, `unavailable`...
        error_type: String,
        error: String,
    },
    #[error("{url}: cannot read the response: {reason}")]
    Decode { url: String, reason: String },
}

impl QueryError {
    /// How many HTTP requests were made.
    pub fn attempts(&self) -> u32 {
        match self {
            QueryError::Transport { attempts, .. }
            | QueryError::Status { attempts, .. }
            | QueryError::Api { attempts, .. } => *attempts,
            QueryError::Decode { .. } => 1,
        }
    }
}

/// A decoded API answer.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResponse {
    pub data: QueryData,
    /// The server answered but says the answer may be partial or dubious.
    pub warnings: Vec<String>,
    /// Informational notes (newer Prometheus versions).
    pub infos: Vec<String>,
}

/// The four result types of the API.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryData {
    /// Instant vector: one point per series.
    Vector(Vec<Series>),
    /// Range vector: many points per series.
    Matrix(Vec<Series>),
    Scalar(Point),
    String(String),
}

impl QueryData {
    /// The API's name for the result type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryData::Vector(_) => "vector",
            QueryData::Matrix(_) => "matrix",
            QueryData::Scalar(_) => "scalar",
            QueryData::String(_) => "string",
        }
    }
}

/// One series: its labels (with `__name__` when the query kept it) and its points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<Point>,
}

/// A sample: Unix time in seconds and value (`NaN`, `+Inf`, `-Inf` decoded as such).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: f64,
    pub v: f64,
}

impl Client {
    pub fn new(config: &PrometheusConfig) -> Result<Client, ConfigError> {
        let url_error = |reason: &str| ConfigError::Url {
            url: crate::redact::url(&config.url),
            reason: reason.into(),
        };
        let mut base =
            Url::parse(config.url.trim()).map_err(|e| url_error(&format!("is not a URL ({e})")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(url_error("is not an http:// or https:// URL"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(url_error("must not carry a query or fragment"));
        }
        // `join` replaces the last path segment unless the path ends in `/`.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut shown = base.clone();
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
        let shown = shown.as_str().trim_end_matches('/').to_string();

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header_error = |reason: String| ConfigError::Header {
                name: name.clone(),
                reason,
            };
            let key = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| header_error("is not a valid header name".into()))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| header_error("the value holds characters a header cannot".into()))?;
            value.set_sensitive(true);
            headers.insert(key, value);
        }
        let auth_header = match (&config.bearer_token, &config.basic_auth) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Auth(
                    "bearer_token and basic_auth are both set; choose one".into(),
                ));
            }
            (Some(token), None) => Some(format!("Bearer {}", token.trim())),
            (None, Some(basic)) => Some(format!(
                "Basic {}",
                base64_encode(format!("{}:{}", basic.username, basic.password).as_bytes())
            )),
            (None, None) => None,
        };
        if let Some(auth) = auth_header {
            if headers.contains_key(AUTHORIZATION) {
                return Err(ConfigError::Auth(
                    "headers.Authorization is set as well as bearer_token/basic_auth; choose one"
                        .into(),
                ));
            }
            let mut value = HeaderValue::from_str(&auth).map_err(|_| {
                ConfigError::Auth("the credentials hold characters a header cannot".into())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("augury/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Build(error_chain(&e)))?;
        Ok(Client {
            http,
            base,
            shown,
            retries: config.retries,
            backoff: config.backoff,
            timeout: config.timeout,
        })
    }

    /// The server's URL, without credentials.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Evaluates `promql` at one instant (`/api/v1/query`).
    pub async fn query(&self, promql: &str, time: SystemTime) -> Result<QueryResponse, QueryError> {
        let params = vec![("query", promql.to_string()), ("time", unix(time))];
        self.post("api/v1/query", params).await
    }

    /// Evaluates `promql` at every `step` from `start` to `end` (`/api/v1/query_range`).
    pub async fn query_range(
        &self,
        promql: &str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> Result<QueryResponse, QueryError> {
        let params = vec![
            ("query", promql.to_string()),
            ("start", unix(start)),
            ("end", unix(end)),
            ("step", format!("{:.3}", step.as_secs_f64())),
        ];
        self.post("api/v1/query_range", params).await
    }

    async fn post(
        &self,
        path: &str,
        mut params: Vec<(&'static str, String)>,
    ) -> Result<QueryResponse, QueryError> {
        let url = self.base.join(path).map_err(|e| QueryError::Decode {
            url: self.shown.clone(),
            reason: format!("cannot form the API URL: {e}"),
        })?;
        let shown = format!("{}/{path}", self.shown);
        // The server stops evaluating when the client would stop waiting anyway.
        params.push(("timeout", super::template::promql_duration(self.timeout)));
        let mut attempt = 0;
        loop {
            attempt += 1;
            // POST with a form body: long PromQL does not fit every proxy's URL limit.
            let outcome = self.http.post(url.clone()).form(&params).send().await;
            let failure = match outcome {
                Err(e) => Failure {
                    error: QueryError::Transport {
                        url: shown.clone(),
                        attempts: attempt,
                        timed_out: e.is_timeout(),
                        // Without the URL, which may carry credentials.
                        reason: error_chain(&e.without_url()),
                    },
                    retry: true,
                    retry_after: None,
                },
                Ok(response) => match read_response(response, &shown, attempt).await {
                    Ok(decoded) => return Ok(decoded),
                    Err(failure) => failure,
                },
            };
            if !failure.retry || attempt > self.retries {
                return Err(failure.error);
            }
            let doubling = self
                .backoff
                .saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX));
            let wait = failure.retry_after.unwrap_or(doubling).min(MAX_BACKOFF);
            tokio::time::sleep(wait).await;
        }
    }
}

struct Failure {
    error: QueryError,
    retry: bool,
    retry_after: Option<Duration>,
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

async fn read_response(
    response: reqwest::Response,
    url: &str,
    attempt: u32,
) -> Result<QueryResponse, Failure> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return Err(Failure {
                error: QueryError::Transport {
                    url: url.into(),
                    attempts: attempt,
                    timed_out: e.is_timeout(),
                    reason: format!("reading the body: {}", error_chain(&e)),
                },
                retry: true,
                retry_after,
            });
        }
    };
    let fail = |error: QueryError| Failure {
        error,
        retry: retryable(status),
        retry_after,
    };
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(envelope) => envelope,
        // Not the API's JSON: a proxy, a load balancer or a wrong URL answered.
        Err(_) if !status.is_success() => {
            return Err(fail(QueryError::Status {
                url: url.into(),
                attempts: attempt,
                status: status.as_u16(),
                body: excerpt(&body),
            }));
        }
        Err(e) => {
            return Err(Failure {
                error: QueryError::Decode {
                    url: url.into(),
                    reason: format!("not the API's JSON ({e}): {}", excerpt(&body)),
                },
                retry: false,
                retry_after: None,
            });
        }
    };
    if envelope.status != "success" || !status.is_success() {
        return Err(fail(QueryError::Api {
            url: url.into(),
            attempts: attempt,
            status: status.as_u16(),
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
            error: envelope
                .error
                .unwrap_or_else(|| format!("status `{}` without a message", envelope.status)),
        }));
    }
    let decode = |reason: String| Failure {
        error: QueryError::Decode {
            url: url.into(),
            reason,
        },
        retry: false,
        retry_after: None,
    };
    let data = envelope
        .data
        .ok_or_else(|| decode("a success without `data`".into()))?;
    let data = decode_data(data).map_err(decode)?;
    Ok(QueryResponse {
        data,
        warnings: envelope.warnings.unwrap_or_default(),
        infos: envelope.infos.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<RawData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    warnings: Option<Vec<String>>,
    infos: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    values: Option<Vec<(f64, String)>>,
    histogram: Option<serde_json::Value>,
    histograms: Option<serde_json::Value>,
}

fn decode_data(data: RawData) -> Result<QueryData, String> {
    let series = |result: serde_json::Value| -> Result<Vec<RawSeries>, String> {
        serde_json::from_value(result).map_err(|e| format!("malformed {}: {e}", data.result_type))
    };
    match data.result_type.as_str() {
        "vector" => series(data.result)?
            .into_iter()
            .map(|s| {
                if s.histogram.is_some() {
                    return Err(native_histogram(&s.metric));
                }
                let (t, v) = s
                    .value
                    .ok_or_else(|| format!("vector sample {:?} has no `value`", s.metric))?;
                Ok(Series {
                    points: vec![point(t, &v)?],
                    labels: s.metric,
                })
            })
            .collect::<Result<_, _>>()
            .map(QueryData::Vector),
        "matrix" => series(data.result)?
            .into_iter()
            .map(|s| {
                if s.histograms.is_some() {
                    return Err(native_histogram(&s.metric));
                }
                let points = s
                    .values
                    .unwrap_or_default()
                    .iter()
                    .map(|(t, v)| point(*t, v))
                    .collect::<Result<_, _>>()?;
                Ok(Series {
                    labels: s.metric,
                    points,
                })
            })
            .collect::<Result<_, _>>()
            .map(QueryData::Matrix),
        "scalar" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| format!("malformed scalar: {e}"))?;
            Ok(QueryData::Scalar(point(t, &v)?))
        }
        "string" => {
            let (_, s): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| format!("malformed string: {e}"))?;
            Ok(QueryData::String(s))
        }
        other => Err(format!("unknown resultType `{other}`")),
    }
}

fn native_histogram(labels: &BTreeMap<String, String>) -> String {
    format!("series {labels:?} is a native histogram; query the classic `_bucket` series instead")
}

/// Sample values travel as strings so that `NaN` and `±Inf` survive JSON.
fn point(t: f64, v: &str) -> Result<Point, String> {
    let v = match v {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse::<f64>()
            .map_err(|_| format!("sample value `{other}` is not a number"))?,
    };
    Ok(Point { t, v })
}

fn unix(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    format!("{secs:.3}")
}

fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// An error and its causes on one line: reqwest's own message says little
/// ("error sending request"), the cause says why (connection refused, DNS, TLS).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Standard base64 (RFC 4648, padded), for the basic-auth header.
fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn special_values_decode() {
        assert!(point(0.0, "NaN").unwrap().v.is_nan());
        assert_eq!(point(0.0, "+Inf").unwrap().v, f64::INFINITY);
        assert_eq!(point(0.0, "-Inf").unwrap().v, f64::NEG_INFINITY);
        assert_eq!(point(0.0, "1e+06").unwrap().v, 1e6);
        assert!(point(0.0, "x").is_err());
    }

    #[test]
    fn results_of_every_type_decode() {
        let raw = |json: &str| -> Result<QueryData, String> {
            decode_data(serde_json::from_str(json).unwrap())
        };
        let v =
            raw(r#"{"resultType":"vector","result":[{"metric":{"le":"+Inf"},"value":[1.5,"3"]}]}"#)
                .unwrap();
        assert_eq!(
            v,
            QueryData::Vector(vec![Series {
                labels: [("le".to_string(), "+Inf".to_string())].into(),
                points: vec![Point { t: 1.5, v: 3.0 }],
            }])
        );
        let m =
            raw(r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"NaN"]]}]}"#)
                .unwrap();
        let QueryData::Matrix(series) = m else {
            panic!("{m:?}")
        };
        assert_eq!(series[0].points.len(), 2);
        assert!(series[0].points[1].v.is_nan());
        assert_eq!(
            raw(r#"{"resultType":"scalar","result":[1,"+Inf"]}"#).unwrap(),
            QueryData::Scalar(Point {
                t: 1.0,
                v: f64::INFINITY
            })
        );
        assert_eq!(
            raw(r#"{"resultType":"string","result":[1,"abc"]}"#).unwrap(),
            QueryData::String("abc".into())
        );
        let e = raw(r#"{"resultType":"vector","result":[{"metric":{},"histogram":[1,{}]}]}"#)
            .unwrap_err();
        assert!(e.contains("native histogram"), "{e}");
        assert!(raw(r#"{"resultType":"tensor","result":[]}"#).is_err());
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = Client::new(&PrometheusConfig::new("prometheus:9090")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("prometheus.url: `prometheus:9090`"),
            "{e}"
        );
        let mut c = PrometheusConfig::new("http://p:9090");
        c.headers.insert("Bad Name".into(), "x".into());
        let e = Client::new(&c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "prometheus.headers.Bad Name: is not a valid header name"
        );
        let mut c = PrometheusConfig::new("http://p:9090");
        c.bearer_token = Some("t".into());
        c.headers.insert("authorization".into(), "Bearer u".into());
        assert!(matches!(Client::new(&c), Err(ConfigError::Auth(_))));
    }

    #[test]
    fn credentials_stay_out_of_the_shown_url() {
        let c = Client::new(&PrometheusConfig::new(
            "https://u:secret@mimir.example/prometheus",
        ))
        .unwrap();
        assert_eq!(c.url(), "https://mimir.example/prometheus");
    }
}
