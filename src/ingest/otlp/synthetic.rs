//! Synthetic OTLP requests for simulated services: what the demo, the benchmarks and the
//! load generator send. Deterministic: the same arguments build the same bytes.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

/// Shape of a synthetic batch.
#[derive(Clone, Debug)]
pub struct BatchSpec {
    pub service: String,
    pub version: String,
    /// Server spans in the batch.
    pub spans: usize,
    /// Attributes per span (at least 2: the route and the status code come first).
    pub attributes: usize,
    /// Median latency, milliseconds; latencies spread around it over about two octaves.
    pub median_ms: f64,
    /// Share of spans that fail (status ERROR and a 5xx code), 0 to 1.
    pub error_rate: f64,
    /// Start time of the first span, Unix nanoseconds.
    pub start_unix_nano: u64,
    /// Varies latencies and failures between batches of the same spec.
    pub seed: u64,
}

impl BatchSpec {
    /// 512 spans with 10 attributes each, the shape the throughput figures are quoted for.
    pub fn standard(service: &str, version: &str, seed: u64) -> Self {
        BatchSpec {
            service: service.into(),
            version: version.into(),
            spans: 512,
            attributes: 10,
            median_ms: 20.0,
            error_rate: 0.01,
            start_unix_nano: 1_700_000_000_000_000_000,
            seed,
        }
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(s: impl Into<String>) -> Value {
    Value::StringValue(s.into())
}

/// A 64-bit mix (SplitMix64 finaliser): cheap, deterministic spread.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A number in [0, 1) from `x`.
fn unit(x: u64) -> f64 {
    (mix(x) >> 11) as f64 / (1u64 << 53) as f64
}

const FILLER: [(&str, &str); 8] = [
    ("http.request.method", "GET"),
    ("url.scheme", "https"),
    ("url.path", "/api/v1/orders/4711/items"),
    ("server.address", "checkout.shop.svc.cluster.local"),
    ("network.protocol.version", "1.1"),
    ("client.address", "10.42.17.3"),
    (
        "user_agent.original",
        "Mozilla/5.0 (X11; Linux x86_64) shop-frontend/7.3",
    ),
    ("http.request.body.size", "1024"),
];

/// Builds one request: one resource (the service and version), one scope, `spans` spans.
pub fn batch(spec: &BatchSpec) -> ExportTraceServiceRequest {
    let mut spans = Vec::with_capacity(spec.spans);
    let mut at = spec.start_unix_nano;
    for i in 0..spec.spans as u64 {
        let draw = spec.seed.wrapping_mul(1_000_003).wrapping_add(i);
        // Log-uniform over [median/2, 2*median]: skewed like real latency, bounded.
        let latency_ms = spec.median_ms * 2f64.powf(2.0 * unit(draw) - 1.0);
        let failed = unit(draw ^ 0x5555) < spec.error_rate;
        let mut attributes = vec![
            kv("http.route", text("/api/v1/orders/{id}/items")),
            kv(
                "http.response.status_code",
                Value::IntValue(if failed { 503 } else { 200 }),
            ),
        ];
        for (j, (key, value)) in FILLER
            .iter()
            .cycle()
            .take(spec.attributes.saturating_sub(2))
            .enumerate()
        {
            let key = if j < FILLER.len() {
                (*key).to_string()
            } else {
                format!("{key}.{j}")
            };
            attributes.push(kv(&key, text(*value)));
        }
        let duration = (latency_ms * 1e6) as u64;
        spans.push(Span {
            trace_id: mix(draw).to_le_bytes().repeat(2),
            span_id: mix(draw ^ 1).to_le_bytes().to_vec(),
            name: "GET /api/v1/orders/{id}/items".into(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: at,
            end_time_unix_nano: at + duration,
            attributes,
            status: failed.then(|| Status {
                code: 2,
                message: "upstream unavailable".into(),
            }),
            ..Default::default()
        });
        at += 1_000_000;
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text(spec.service.as_str())),
                    kv("service.version", text(spec.version.as_str())),
                    kv("deployment.environment", text("production")),
                    kv(
                        "k8s.pod.name",
                        text(format!("{}-7d9f8-x2k4p", spec.service)),
                    ),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "augury.synthetic".into(),
                    version: "1".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_have_the_requested_shape_and_are_deterministic() {
        let spec = BatchSpec::standard("checkout", "1.0.0", 3);
        let a = batch(&spec);
        assert_eq!(a, batch(&spec));
        let spans = &a.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 512);
        assert!(spans.iter().all(|s| s.attributes.len() == 10));
        for s in spans {
            let ms = (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6;
            assert!((10.0..=40.0).contains(&ms), "{ms}");
        }
        let failed = spans.iter().filter(|s| s.status.is_some()).count();
        assert!(failed < 30, "{failed}");
        assert_ne!(a, batch(&BatchSpec::standard("checkout", "1.0.0", 4)));
    }

    #[test]
    fn more_attributes_than_the_filler_get_distinct_keys() {
        let spec = BatchSpec {
            attributes: 14,
            spans: 1,
            ..BatchSpec::standard("s", "v", 0)
        };
        let request = batch(&spec);
        let attrs = &request.resource_spans[0].scope_spans[0].spans[0].attributes;
        let mut keys: Vec<&str> = attrs.iter().map(|a| a.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 14);
    }
}
