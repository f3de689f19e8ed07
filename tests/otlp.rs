//! End-to-end tests of the OTLP receiver: a real server on 127.0.0.1 ports picked at run
//! time, real OpenTelemetry exporters, and raw clients for the requests no exporter sends.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use augury::ingest::otlp::{
    DecoderKind, OtlpConfig, OtlpError, OtlpReceiver, ReceiverStatsHandle, TransportStats,
};
use augury::stats::LogHistogram;
use augury::windows::{Scope, SpanFilter, WatchId, WindowData, Windows, WindowsConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------
// Harness

struct Receiver {
    windows: Arc<Windows>,
    grpc: SocketAddr,
    http: SocketAddr,
    stats: ReceiverStatsHandle,
    v1: WatchId,
    v2: WatchId,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), OtlpError>>,
}

fn scope(name: &str, version: &str) -> Scope {
    [("service.name", name), ("service.version", version)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const LIMIT: usize = 64 * 1024;

impl Receiver {
    async fn start() -> Self {
        Receiver::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut OtlpConfig)) -> Self {
        let windows = Arc::new(Windows::new(WindowsConfig::default()));
        let v1 = windows
            .watch(scope("checkout", "1.0.0"), SpanFilter::default())
            .unwrap();
        let v2 = windows
            .watch(scope("checkout", "2.0.0"), SpanFilter::default())
            .unwrap();
        let mut config = OtlpConfig::loopback_any_port();
        config.max_body_bytes = LIMIT;
        tune(&mut config);
        let receiver = OtlpReceiver::bind(config, Arc::clone(&windows))
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let grpc = receiver.grpc_addr();
        let http = receiver.http_addr();
        let stats = receiver.stats();
        let task = tokio::spawn(receiver.run(async move {
            let _ = stopped.await;
        }));
        Receiver {
            windows,
            grpc,
            http,
            stats,
            v1,
            v2,
            stop,
            task,
        }
    }

    async fn shutdown(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }

    fn take(&self, id: WatchId) -> WindowData {
        self.windows.take(id).unwrap()
    }

    fn http_url(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }
}

// ---------------------------------------------------------------------------------------
// Requests

const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn server_span(start: u64, end: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "GET /cart".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

fn request(version: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue("checkout".into())),
                    kv("service.version", Value::StringValue(version.into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One v1 server span of `ms` milliseconds: the request every test sends after a bad one.
fn good(ms: u64) -> ExportTraceServiceRequest {
    request("1.0.0", vec![server_span(T0, T0 + ms * MS, vec![])])
}

fn histogram_of(values: &[f64]) -> LogHistogram {
    let mut h = LogHistogram::new();
    for &v in values {
        h.record(v);
    }
    h
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A request with an unknown length-delimited field at the top level of `size` bytes.
fn padded(size: usize) -> Vec<u8> {
    let mut buf = good(1).encode_to_vec();
    prost::encoding::encode_key(99, prost::encoding::WireType::LengthDelimited, &mut buf);
    prost::encoding::encode_varint(size as u64, &mut buf);
    buf.resize(buf.len() + size, b'x');
    buf
}

/// A v1 request whose attribute value is not UTF-8.
fn invalid_utf8_protobuf() -> Vec<u8> {
    let request = request(
        "1.0.0",
        vec![server_span(
            T0,
            T0 + MS,
            vec![kv("user", Value::StringValue("caf\u{e9}".into()))],
        )],
    );
    let mut buf = request.encode_to_vec();
    let needle = "caf\u{e9}".as_bytes();
    let at = buf.windows(needle.len()).position(|w| w == needle).unwrap();
    buf[at + 3] = 0xff;
    buf[at + 4] = 0xfe;
    buf
}

// ---------------------------------------------------------------------------------------
// Raw HTTP client

struct HttpReply {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

async fn post(url: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> HttpReply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = http::Request::post(url).header("content-type", content_type);
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    let response = client
        .request(builder.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    HttpReply {
        status,
        headers,
        body,
    }
}

async fn post_protobuf(url: &str, body: Vec<u8>) -> HttpReply {
    post(url, "application/x-protobuf", None, body).await
}

/// `google.rpc.Status` as OTLP/HTTP error bodies carry it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn rpc_status(reply: &HttpReply) -> RpcStatus {
    assert_eq!(
        reply.headers["content-type"], "application/x-protobuf",
        "error body type"
    );
    RpcStatus::decode(reply.body.clone()).unwrap()
}

fn json_body(reply: &HttpReply) -> serde_json::Value {
    assert_eq!(reply.headers["content-type"], "application/json");
    serde_json::from_slice(&reply.body).unwrap()
}

/// Sends a good request over HTTP and checks it lands: the receiver still serves.
async fn assert_http_still_serves(receiver: &Receiver) {
    receiver.take(receiver.v1);
    let reply = post_protobuf(&receiver.http_url(), good(3).encode_to_vec()).await;
    assert_eq!(reply.status, 200);
    let data = receiver.take(receiver.v1);
    assert_eq!(data.requests, 1);
    assert_eq!(data.histogram, histogram_of(&[3.0]));
}

/// Writes `head` and `body` on a fresh connection and returns the raw answer.
async fn raw_http(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

// ---------------------------------------------------------------------------------------
// Raw gRPC client (HTTP/2), so tests can send frames no well-behaved client would

struct GrpcReply {
    status: tonic::Status,
    response: Option<ExportTraceServiceResponse>,
}

async fn grpc_call(addr: SocketAddr, payload: Vec<u8>, encoding: Option<&str>) -> GrpcReply {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut frame = vec![u8::from(encoding.is_some())];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let mut builder = http::Request::post(format!(
        "http://{addr}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers");
    if let Some(encoding) = encoding {
        builder = builder.header("grpc-encoding", encoding);
    }
    let response = client
        .request(builder.body(Full::new(Bytes::from(frame))).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    let status = tonic::Status::from_header_map(&headers)
        .or_else(|| trailers.as_ref().and_then(tonic::Status::from_header_map))
        .expect("grpc-status in headers or trailers");
    let response = (status.code() == tonic::Code::Ok).then(|| {
        assert_eq!(data[0], 0, "uncompressed response");
        ExportTraceServiceResponse::decode(&data[5..]).unwrap()
    });
    GrpcReply { status, response }
}

async fn grpc_export(addr: SocketAddr, request: &ExportTraceServiceRequest) -> GrpcReply {
    grpc_call(addr, request.encode_to_vec(), None).await
}

async fn assert_grpc_still_serves(receiver: &Receiver) {
    receiver.take(receiver.v1);
    let reply = grpc_export(receiver.grpc, &good(4)).await;
    assert_eq!(reply.status.code(), tonic::Code::Ok, "{:?}", reply.status);
    let data = receiver.take(receiver.v1);
    assert_eq!(data.requests, 1);
    assert_eq!(data.histogram, histogram_of(&[4.0]));
}

// ---------------------------------------------------------------------------------------
// Real exporters

#[derive(Clone, Copy, Debug)]
enum Exporter {
    Grpc,
    GrpcGzip,
    HttpProtobuf,
    HttpProtobufGzip,
    HttpJson,
}

/// What each version's service does in the exporter tests: (duration in ns, error?).
/// Errors come from the span status on v1 and from a 5xx status code on v2.
fn plan(version: u64) -> Vec<(u64, bool)> {
    (1..=25u64)
        .map(|i| (i * version * 1_500_000 + 250_000, i % (3 + version) == 0))
        .collect()
}

fn build_exporter(
    kind: Exporter,
    receiver_grpc: SocketAddr,
    url: &str,
) -> opentelemetry_otlp::SpanExporter {
    use opentelemetry_otlp::{
        Compression, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig,
    };
    let grpc = || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("http://{receiver_grpc}"))
    };
    let http = |protocol| {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .with_protocol(protocol)
    };
    match kind {
        Exporter::Grpc => grpc().build(),
        Exporter::GrpcGzip => grpc().with_compression(Compression::Gzip).build(),
        Exporter::HttpProtobuf => http(Protocol::HttpBinary).build(),
        Exporter::HttpProtobufGzip => http(Protocol::HttpBinary)
            .with_compression(Compression::Gzip)
            .build(),
        Exporter::HttpJson => http(Protocol::HttpJson).build(),
    }
    .unwrap()
}

/// Emits each version's plan through an SDK tracer provider and the given exporter.
fn emit(kind: Exporter, grpc: SocketAddr, url: &str) {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};

    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(T0);
    for version in [1u64, 2] {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(build_exporter(kind, grpc, url))
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_attributes([
                        KeyValue::new("service.name", "checkout"),
                        KeyValue::new("service.version", format!("{version}.0.0")),
                    ])
                    .build(),
            )
            .build();
        let tracer = provider.tracer("augury-test");
        for (ns, error) in plan(version) {
            let mut attributes = vec![KeyValue::new("http.route", "/cart")];
            if error && version == 2 {
                attributes.push(KeyValue::new("http.response.status_code", 503));
            }
            let mut span = tracer
                .span_builder("GET /cart")
                .with_kind(SpanKind::Server)
                .with_start_time(start)
                .with_attributes(attributes)
                .start(&tracer);
            if error && version == 1 {
                span.set_status(Status::error("boom"));
            }
            span.end_with_timestamp(start + Duration::from_nanos(ns));
        }
        // A client span of the same service: not a request the service served.
        let mut outgoing = tracer
            .span_builder("SELECT")
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .start(&tracer);
        outgoing.end_with_timestamp(start + Duration::from_millis(1));
        provider.shutdown().unwrap();
    }
}

async fn exporters_fill_the_windows_exactly(kind: Exporter) {
    let receiver = Receiver::start().await;
    let grpc = receiver.grpc;
    let url = receiver.http_url();
    // The SDK's simple processor blocks on each export; keep that off the runtime's workers.
    tokio::task::spawn_blocking(move || emit(kind, grpc, &url))
        .await
        .unwrap();

    for (version, id) in [(1, receiver.v1), (2, receiver.v2)] {
        let sent = plan(version);
        let latencies: Vec<f64> = sent.iter().map(|&(ns, _)| ns as f64 / 1e6).collect();
        let errors = sent.iter().filter(|&&(_, e)| e).count() as u64;
        let data = receiver.take(id);
        assert_eq!(data.requests, sent.len() as u64, "{kind:?} v{version}");
        assert_eq!(data.errors, errors, "{kind:?} v{version}");
        assert_eq!(
            data.histogram,
            histogram_of(&latencies),
            "{kind:?} v{version}"
        );
        assert!(data.first_seen <= data.last_seen);
    }
    let stats = receiver.windows.stats();
    assert_eq!(stats.accepted_spans, 50);
    assert_eq!(stats.filtered_spans, 2);
    assert_eq!(stats.rejected_spans, 0);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_fills_the_windows_exactly() {
    exporters_fill_the_windows_exactly(Exporter::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_with_gzip_fills_the_windows_exactly() {
    exporters_fill_the_windows_exactly(Exporter::GrpcGzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_exporter_fills_the_windows_exactly() {
    exporters_fill_the_windows_exactly(Exporter::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_exporter_with_gzip_fills_the_windows_exactly() {
    exporters_fill_the_windows_exactly(Exporter::HttpProtobufGzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_exporter_fills_the_windows_exactly() {
    exporters_fill_the_windows_exactly(Exporter::HttpJson).await;
}

// ---------------------------------------------------------------------------------------
// Partial success

fn half_invalid() -> ExportTraceServiceRequest {
    request(
        "2.0.0",
        vec![
            server_span(T0, T0 + 2 * MS, vec![]),
            server_span(T0 + 5 * MS, T0, vec![]),
            server_span(0, T0, vec![]),
        ],
    )
}

const REJECTION: &str = "rejected 2 of 3 spans with invalid timestamps (both must be set and \
                         the end must not precede the start); first: \
                         resource_spans[0].scope_spans[0].spans[1]: start_time_unix_nano \
                         1700000000005000000 and end_time_unix_nano 1700000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_timestamps_give_partial_success_on_every_transport() {
    let receiver = Receiver::start().await;

    let reply = post_protobuf(&receiver.http_url(), half_invalid().encode_to_vec()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/x-protobuf");
    let partial = ExportTraceServiceResponse::decode(reply.body)
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, REJECTION);

    let reply = post(
        &receiver.http_url(),
        "application/json",
        None,
        serde_json::to_vec(&half_invalid()).unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        json_body(&reply),
        serde_json::json!({"partialSuccess": {"rejectedSpans": "2", "errorMessage": REJECTION}})
    );

    let reply = grpc_export(receiver.grpc, &half_invalid()).await;
    assert_eq!(reply.status.code(), tonic::Code::Ok);
    let partial = reply.response.unwrap().partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, REJECTION);

    let data = receiver.take(receiver.v2);
    assert_eq!(data.requests, 3);
    assert_eq!(data.histogram, histogram_of(&[2.0, 2.0, 2.0]));
    assert_eq!(receiver.windows.stats().rejected_spans, 6);

    // A fully valid request gets an empty response: no partial_success at all.
    let reply = post_protobuf(&receiver.http_url(), good(1).encode_to_vec()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        ExportTraceServiceResponse::decode(reply.body).unwrap(),
        ExportTraceServiceResponse::default()
    );
    let reply = post(
        &receiver.http_url(),
        "application/json",
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(json_body(&reply), serde_json::json!({}));

    let stats = receiver.stats.get();
    assert_eq!(stats.http.partial, 2);
    assert_eq!(stats.http.ok, 2);
    assert_eq!(stats.grpc.partial, 1);
    receiver.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Bad requests: each gets its documented answer, and the next good request is served

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protobuf_is_refused_with_400_and_invalid_argument() {
    let receiver = Receiver::start().await;
    // Field 1 announces 16 bytes and carries 3.
    let malformed = vec![0x0a, 0x10, 1, 2, 3];

    let reply = post_protobuf(&receiver.http_url(), malformed.clone()).await;
    assert_eq!(reply.status, 400);
    let status = rpc_status(&reply);
    assert_eq!(status.code, 3);
    assert_eq!(
        status.message,
        "undecodable ExportTraceServiceRequest: resource_spans[0]: message truncated (a \
         length runs past its end)"
    );
    assert_http_still_serves(&receiver).await;

    let reply = grpc_call(receiver.grpc, malformed, None).await;
    assert_eq!(reply.status.code(), tonic::Code::InvalidArgument);
    assert!(
        reply.status.message().contains("truncated"),
        "{:?}",
        reply.status
    );
    assert_grpc_still_serves(&receiver).await;

    let reply = post(
        &receiver.http_url(),
        "application/json",
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!(reply.status, 400);
    let body = json_body(&reply);
    assert_eq!(body["code"], 3);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("undecodable ExportTraceServiceRequest: JSON: EOF"),
        "{body}"
    );
    assert_http_still_serves(&receiver).await;

    let stats = receiver.stats.get();
    assert_eq!(stats.http.invalid, 2);
    assert_eq!(stats.grpc.invalid, 1);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_gzip_is_refused_with_400_and_invalid_argument() {
    let receiver = Receiver::start().await;
    let compressed = gzip(&good(1).encode_to_vec());
    let truncated = compressed[..compressed.len() - 6].to_vec();

    let reply = post(
        &receiver.http_url(),
        "application/x-protobuf",
        Some("gzip"),
        truncated.clone(),
    )
    .await;
    assert_eq!(reply.status, 400);
    let status = rpc_status(&reply);
    assert_eq!(status.code, 3);
    assert!(
        status
            .message
            .starts_with("gzip body cannot be decompressed"),
        "{}",
        status.message
    );
    assert_http_still_serves(&receiver).await;

    let reply = grpc_call(receiver.grpc, truncated, Some("gzip")).await;
    assert_eq!(
        reply.status.code(),
        tonic::Code::InvalidArgument,
        "{:?}",
        reply.status
    );
    assert!(
        reply.status.message().contains("decompressing"),
        "{:?}",
        reply.status
    );
    assert_grpc_still_serves(&receiver).await;

    // Whole gzip bodies are fine on both transports.
    let reply = post(
        &receiver.http_url(),
        "application/x-protobuf",
        Some("gzip"),
        compressed.clone(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = grpc_call(receiver.grpc, compressed, Some("gzip")).await;
    assert_eq!(reply.status.code(), tonic::Code::Ok);
    assert_eq!(receiver.take(receiver.v1).requests, 2);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_or_encoding_is_refused_with_415() {
    let receiver = Receiver::start().await;
    let body = good(1).encode_to_vec();
    for content_type in ["text/plain", "application/grpc", "application/protobuf"] {
        let reply = post(&receiver.http_url(), content_type, None, body.clone()).await;
        assert_eq!(reply.status, 415, "{content_type}");
        let text = String::from_utf8(reply.body.to_vec()).unwrap();
        assert!(
            text.contains("application/x-protobuf or application/json"),
            "{text}"
        );
    }
    let reply = post(
        &receiver.http_url(),
        "application/x-protobuf",
        Some("br"),
        body,
    )
    .await;
    assert_eq!(reply.status, 415);
    assert!(String::from_utf8_lossy(&reply.body).contains("Content-Encoding \"br\""));

    let answer = raw_http(
        receiver.http,
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    assert!(answer.contains("missing Content-Type"), "{answer}");

    // Other paths and methods are not the receiver's.
    let answer = raw_http(
        receiver.http,
        "GET /v1/traces HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");

    assert_http_still_serves(&receiver).await;
    assert_eq!(receiver.stats.get().http.unsupported, 5);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_parameters_and_case_are_accepted() {
    let receiver = Receiver::start().await;
    let reply = post(
        &receiver.http_url(),
        "application/json; charset=utf-8",
        None,
        serde_json::to_vec(&good(2)).unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = post(
        &receiver.http_url(),
        "Application/X-Protobuf ; proto=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
        Some("GZIP"),
        gzip(&good(2).encode_to_vec()),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        receiver.take(receiver.v1).histogram,
        histogram_of(&[2.0, 2.0])
    );
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413_and_resource_exhausted() {
    let receiver = Receiver::start().await;
    let big = padded(LIMIT);

    // Declared length past the limit: refused before reading.
    let reply = post_protobuf(&receiver.http_url(), big.clone()).await;
    assert_eq!(reply.status, 413);
    let status = rpc_status(&reply);
    assert_eq!(status.code, 8);
    assert_eq!(
        status.message,
        format!(
            "request body of {} bytes is larger than the limit of {LIMIT} bytes",
            big.len()
        )
    );
    assert_http_still_serves(&receiver).await;

    // No declared length (chunked): refused once the limit is crossed.
    let mut chunked = Vec::new();
    for chunk in big.chunks(8192) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_http(
        receiver.http,
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        &chunked,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(&format!("larger than the limit of {LIMIT} bytes")),
        "{answer}"
    );
    assert_http_still_serves(&receiver).await;

    // A small gzip body that inflates past the limit.
    let bomb = gzip(&padded(LIMIT * 16));
    assert!(bomb.len() < LIMIT);
    let reply = post(
        &receiver.http_url(),
        "application/x-protobuf",
        Some("gzip"),
        bomb.clone(),
    )
    .await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        rpc_status(&reply).message,
        format!("gzip body inflates past the limit of {LIMIT} bytes")
    );
    assert_http_still_serves(&receiver).await;

    let reply = grpc_call(receiver.grpc, big, None).await;
    assert_eq!(
        reply.status.code(),
        tonic::Code::ResourceExhausted,
        "{:?}",
        reply.status
    );
    assert_grpc_still_serves(&receiver).await;
    let reply = grpc_call(receiver.grpc, bomb, Some("gzip")).await;
    assert_eq!(
        reply.status.code(),
        tonic::Code::ResourceExhausted,
        "{:?}",
        reply.status
    );
    assert_grpc_still_serves(&receiver).await;

    // Just under the limit passes.
    let fits = padded(LIMIT - 200);
    assert!(fits.len() <= LIMIT);
    assert_eq!(
        post_protobuf(&receiver.http_url(), fits.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        grpc_call(receiver.grpc, fits, None).await.status.code(),
        tonic::Code::Ok
    );

    let stats = receiver.stats.get();
    assert_eq!(stats.http.too_large, 3);
    assert_eq!(stats.grpc.too_large, 2);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_ignored() {
    let receiver = Receiver::start().await;
    let mut with_unknown = good(5).encode_to_vec();
    prost::encoding::encode_key(1000, prost::encoding::WireType::Varint, &mut with_unknown);
    prost::encoding::encode_varint(42, &mut with_unknown);
    prost::encoding::encode_key(
        1001,
        prost::encoding::WireType::SixtyFourBit,
        &mut with_unknown,
    );
    with_unknown.extend_from_slice(&[0; 8]);

    assert_eq!(
        post_protobuf(&receiver.http_url(), with_unknown.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        grpc_call(receiver.grpc, with_unknown, None)
            .await
            .status
            .code(),
        tonic::Code::Ok
    );

    let mut json: serde_json::Value = serde_json::to_value(good(5)).unwrap();
    json["futureTopLevel"] = serde_json::json!({"a": [1, 2, 3]});
    json["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["futureSpanField"] =
        serde_json::json!("x");
    let reply = post(
        &receiver.http_url(),
        "application/json",
        None,
        serde_json::to_vec(&json).unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);

    let data = receiver.take(receiver.v1);
    assert_eq!(data.requests, 3);
    assert_eq!(data.histogram, histogram_of(&[5.0, 5.0, 5.0]));
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_attributes_is_refused_with_400_and_invalid_argument() {
    let receiver = Receiver::start().await;

    let reply = post_protobuf(&receiver.http_url(), invalid_utf8_protobuf()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        rpc_status(&reply).message,
        "undecodable ExportTraceServiceRequest: resource_spans[0].scope_spans[0].spans[0]\
         .attributes[0].value.string_value: string is not valid UTF-8"
    );
    assert_http_still_serves(&receiver).await;

    let reply = grpc_call(receiver.grpc, invalid_utf8_protobuf(), None).await;
    assert_eq!(reply.status.code(), tonic::Code::InvalidArgument);
    assert!(reply.status.message().contains("not valid UTF-8"));
    assert_grpc_still_serves(&receiver).await;

    let json = b"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\
                 \"value\":{\"stringValue\":\"caf\xff\"}}]}}]}"
        .to_vec();
    let reply = post(&receiver.http_url(), "application/json", None, json).await;
    assert_eq!(reply.status, 400);
    assert!(
        json_body(&reply)["message"]
            .as_str()
            .unwrap()
            .contains("invalid unicode")
    );
    assert_http_still_serves(&receiver).await;
    receiver.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Back-pressure

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_refuses_with_429_and_unavailable_and_a_retry_hint() {
    let body = good(6).encode_to_vec();
    let spans = (1..50)
        .map(|i| server_span(T0, T0 + i * MS, vec![]))
        .collect();
    let big = request("1.0.0", spans).encode_to_vec();
    let receiver = Receiver::start_with(|c| {
        c.max_body_bytes = big.len();
        c.max_in_flight_bytes = big.len();
        c.retry_after_seconds = 7;
    })
    .await;

    // Take nearly all of the in-flight budget with a body that has not all arrived yet.
    let mut stalled = TcpStream::connect(receiver.http).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        big.len()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&big[..big.len() - 3]).await.unwrap();
    // Wait (without sleeping) until the server has taken its bytes.
    tokio::time::timeout(Duration::from_secs(30), async {
        while receiver.stats.get().in_flight_bytes < big.len() - 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stalled request's bytes are counted");

    let reply = post_protobuf(&receiver.http_url(), body.clone()).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(rpc_status(&reply).code, 14);

    let reply = grpc_export(receiver.grpc, &good(6)).await;
    assert_eq!(reply.status.code(), tonic::Code::Unavailable);
    use tonic_types::StatusExt;
    let retry = reply.status.get_details_retry_info().expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(7)));

    // Let the stalled request finish: it is served, and its bytes come back.
    stalled.write_all(&big[big.len() - 3..]).await.unwrap();
    let mut answer = Vec::new();
    stalled.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    assert_http_still_serves(&receiver).await;
    assert_grpc_still_serves(&receiver).await;

    let stats = receiver.stats.get();
    assert_eq!(stats.http.throttled, 1);
    assert_eq!(stats.grpc.throttled, 1);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.in_flight_bytes, 0);
    receiver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_times_out_and_gives_its_permit_back() {
    let receiver = Receiver::start_with(|c| {
        c.max_concurrent_requests = 1;
        c.request_timeout_seconds = 1;
    })
    .await;
    let body = good(6).encode_to_vec();
    let mut stalled = TcpStream::connect(receiver.http).await.unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&body[..3]).await.unwrap();
    // The rest never comes: the receiver answers on its own once the timeout passes.
    let mut answer = Vec::new();
    stalled.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(receiver.stats.get().in_flight, 0, "the permit came back");
    assert_eq!(receiver.stats.get().http.invalid, 1);
    assert_http_still_serves(&receiver).await;
    assert_grpc_still_serves(&receiver).await;
    receiver.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// The full decoder keeps the same contract

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_decoder_keeps_the_same_contract() {
    let receiver = Receiver::start_with(|c| c.decoder = DecoderKind::Full).await;

    let reply = grpc_export(receiver.grpc, &half_invalid()).await;
    assert_eq!(
        reply
            .response
            .unwrap()
            .partial_success
            .unwrap()
            .error_message,
        REJECTION
    );
    let reply = post_protobuf(&receiver.http_url(), half_invalid().encode_to_vec()).await;
    assert_eq!(
        ExportTraceServiceResponse::decode(reply.body)
            .unwrap()
            .partial_success
            .unwrap()
            .rejected_spans,
        2
    );

    let reply = grpc_call(receiver.grpc, vec![0x0a, 0x10, 1], None).await;
    assert_eq!(reply.status.code(), tonic::Code::InvalidArgument);
    let reply = grpc_call(receiver.grpc, invalid_utf8_protobuf(), None).await;
    assert_eq!(reply.status.code(), tonic::Code::InvalidArgument);
    let reply = grpc_call(receiver.grpc, padded(LIMIT), None).await;
    assert_eq!(reply.status.code(), tonic::Code::ResourceExhausted);
    let reply = post_protobuf(&receiver.http_url(), invalid_utf8_protobuf()).await;
    assert_eq!(reply.status, 400);
    assert_grpc_still_serves(&receiver).await;
    assert_http_still_serves(&receiver).await;

    assert_eq!(receiver.take(receiver.v2).requests, 2);
    let stats = receiver.stats.get();
    assert_eq!(
        stats.grpc,
        TransportStats {
            ok: 1,
            partial: 1,
            invalid: 2,
            too_large: 1,
            ..TransportStats::default()
        }
    );
    receiver.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Lifecycle

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_both_listeners() {
    let receiver = Receiver::start().await;
    let (grpc, http) = (receiver.grpc, receiver.http);
    assert_http_still_serves(&receiver).await;
    receiver.shutdown().await;
    assert!(TcpStream::connect(grpc).await.is_err());
    assert!(TcpStream::connect(http).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_reported_with_the_address() {
    let first = Receiver::start().await;
    let config = OtlpConfig {
        http_listen: first.http,
        ..OtlpConfig::loopback_any_port()
    };
    let err = OtlpReceiver::bind(config, Arc::new(Windows::default()))
        .await
        .err()
        .expect("port in use");
    assert!(
        err.to_string()
            .starts_with(&format!("OTLP HTTP listener: cannot bind {}", first.http)),
        "{err}"
    );
    let bad = OtlpConfig {
        max_concurrent_requests: 0,
        ..OtlpConfig::loopback_any_port()
    };
    assert!(matches!(
        OtlpReceiver::bind(bad, Arc::new(Windows::default())).await,
        Err(OtlpError::Config(_))
    ));
    first.shutdown().await;
}
