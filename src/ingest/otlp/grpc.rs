//! gRPC transport: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.
//!
//! With the lean decoder the service takes the request message as raw bytes (a
//! pass-through codec) and scans it itself; with the full decoder it is the generated
//! `TraceServiceServer`. Either way tonic handles framing, gzip and the size limit. A
//! [`Gate`] in front counts the body's bytes against the in-flight budget as they arrive
//! (a call that does not fit is refused with UNAVAILABLE and a `RetryInfo`) and maps
//! tonic's own refusals onto the OTLP codes: an oversized message becomes
//! RESOURCE_EXHAUSTED and a body tonic cannot unpack (bad gzip, truncated frame)
//! INVALID_ARGUMENT. The services take a decode permit once the message is in (at most
//! `max_concurrent_requests` at once, the rest refused with UNAVAILABLE and a
//! `RetryInfo`), so a sender trickling its message holds no permit.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::OwnedSemaphorePermit;
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

use super::{Counters, DecoderKind, IngestOutcome, OtlpError, Shared, observe};
use crate::net::{Connection, Listener};

const SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send + 'static>>;

pub(super) async fn serve(
    listener: Listener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), OtlpError> {
    let limit = shared.config.max_body_bytes;
    let (lean, full) = match shared.config.decoder {
        DecoderKind::Lean => (
            Some(LeanTraceService {
                shared: Arc::clone(&shared),
            }),
            None,
        ),
        DecoderKind::Full => (
            None,
            Some(
                TraceServiceServer::new(FullTraceService {
                    shared: Arc::clone(&shared),
                })
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit),
            ),
        ),
    };
    tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_secs(
            shared.config.request_timeout_seconds,
        ))
        .initial_stream_window_size(Some(1 << 20))
        .initial_connection_window_size(Some(2 << 20))
        // Bounds per connection: streams at once and the size of a header block.
        .max_concurrent_streams(Some(100))
        .http2_max_header_list_size(Some(16 * 1024))
        .layer(GateLayer { shared })
        .add_optional_service(lean)
        .add_optional_service(full)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
        .map_err(|e| OtlpError::Serve {
            transport: "gRPC",
            message: e.to_string(),
        })
}

/// The listener's connections (within its cap, each with its idle timeout) as the
/// stream tonic serves.
fn incoming(
    listener: Listener,
) -> impl futures_util::Stream<Item = Result<Connection, std::io::Error>> {
    futures_util::stream::unfold(listener, |listener| async move {
        let connection = listener.accept().await;
        Some((Ok(connection), listener))
    })
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream().connect_info()
    }
}

/// UNAVAILABLE with a `RetryInfo`: the receiver is at one of its load limits.
fn busy(shared: &Shared) -> Status {
    Counters::bump(&shared.grpc.throttled);
    Status::with_error_details(
        Code::Unavailable,
        shared.busy_message(),
        ErrorDetails::with_retry_info(Some(shared.retry_after())),
    )
}

fn response(outcome: IngestOutcome) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: outcome.rejection.map(|message| ExportTracePartialSuccess {
            rejected_spans: outcome.rejected as i64,
            error_message: message,
        }),
    }
}

/// The generated server, fed with prost's full decode.
struct FullTraceService {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl TraceService for FullTraceService {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let Ok(_permit) = Arc::clone(&self.shared.gate).try_acquire_owned() else {
            return Err(busy(&self.shared));
        };
        let outcome = observe::ingest_message(&self.shared.windows, request.get_ref());
        self.shared.grpc.outcome(&outcome);
        Ok(tonic::Response::new(response(outcome)))
    }
}

/// The export service over raw bytes, for the lean scanner.
#[derive(Clone)]
struct LeanTraceService {
    shared: Arc<Shared>,
}

impl NamedService for LeanTraceService {
    const NAME: &'static str = SERVICE;
}

impl Service<http::Request<tonic::body::Body>> for LeanTraceService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async {
                Ok(
                    Status::unimplemented("unknown method; this service has only Export")
                        .into_http(),
                )
            });
        }
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let limit = shared.config.max_body_bytes;
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(limit), None);
            Ok(grpc.unary(LeanExport { shared }, request).await)
        })
    }
}

struct LeanExport {
    shared: Arc<Shared>,
}

impl UnaryService<Bytes> for LeanExport {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let shared = &self.shared;
        let Ok(_permit) = Arc::clone(&shared.gate).try_acquire_owned() else {
            return std::future::ready(Err(busy(shared)));
        };
        let result = match observe::ingest_protobuf(&shared.windows, request.get_ref()) {
            Ok(outcome) => {
                shared.grpc.outcome(&outcome);
                Ok(tonic::Response::new(response(outcome)))
            }
            Err(e) => {
                Counters::bump(&shared.grpc.invalid);
                Err(Status::invalid_argument(format!(
                    "undecodable ExportTraceServiceRequest: {e}"
                )))
            }
        };
        std::future::ready(result)
    }
}

/// Hands the request message over as bytes; encodes the response with prost.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        prost::Message::encode(&item, dst)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Admission and status mapping in front of the gRPC services.
#[derive(Clone)]
struct GateLayer {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

#[derive(Clone)]
struct Gate<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<http::Request<tonic::body::Body>> for Gate<S>
where
    S: Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let refused = Arc::new(AtomicBool::new(false));
        let request = request.map(|body| {
            tonic::body::Body::new(Budgeted {
                inner: body,
                shared: Arc::clone(&shared),
                held: None,
                refused: Arc::clone(&refused),
            })
        });
        // The inner service was polled ready, not its clone: swap them (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if refused.load(Ordering::Relaxed) {
                return Ok(busy(&shared).into_http());
            }
            remap_status(&mut response, &shared.grpc);
            Ok(response)
        })
    }
}

/// A request body whose bytes are taken from the receiver's in-flight budget as they
/// arrive and given back when it is dropped (once tonic has the message). A frame that
/// does not fit ends the body with an error and marks the call `refused`.
struct Budgeted {
    inner: tonic::body::Body,
    shared: Arc<Shared>,
    held: Option<OwnedSemaphorePermit>,
    refused: Arc<AtomicBool>,
}

impl HttpBody for Budgeted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && !this.shared.take_bytes(data.len(), &mut this.held)
        {
            this.refused.store(true, Ordering::Relaxed);
            this.held = None;
            return Poll::Ready(Some(Err(Status::unavailable(this.shared.busy_message()))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Maps the statuses tonic itself answers with before the service runs onto the codes
/// OTLP prescribes, and counts them. The services never return these codes themselves.
fn remap_status(response: &mut http::Response<tonic::body::Body>, counters: &Counters) {
    let headers = response.headers_mut();
    let Some(code) = headers.get(Status::GRPC_STATUS) else {
        return;
    };
    let remapped = match code.as_bytes() {
        // Message longer than the limit, announced in its frame header.
        b"11" => {
            Counters::bump(&counters.too_large);
            Some(Code::ResourceExhausted)
        }
        // Decompressed message longer than the limit (tonic's own code is right).
        b"8" => {
            Counters::bump(&counters.too_large);
            None
        }
        // Bad gzip, truncated frame, missing message: the sender's bytes are at fault.
        b"13" => {
            Counters::bump(&counters.invalid);
            Some(Code::InvalidArgument)
        }
        // Unsupported grpc-encoding.
        b"12" => {
            Counters::bump(&counters.unsupported);
            None
        }
        _ => None,
    };
    if let Some(code) = remapped {
        headers.insert(Status::GRPC_STATUS, http::HeaderValue::from(code as i32));
    }
}
