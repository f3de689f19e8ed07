//! Raw OTLP load: pre-encoded `ExportTraceServiceRequest` bodies sent as they are, over
//! gRPC (tonic with a pass-through codec, so no encoding cost on the sender) or OTLP/HTTP
//! protobuf (hyper), one request in flight per [`Connection`], each answer classified.
//! Used by the soak ([`super::soak`]) and by `examples/otlp_load.rs`.
#![allow(dead_code)]

use bytes::{BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the receiver made of one request.
pub enum Outcome {
    /// Taken; `rejected` spans refused in a partial-success answer.
    Ok { rejected: u64 },
    /// Refused for load (429, 413, 503 / UNAVAILABLE, RESOURCE_EXHAUSTED): not sent.
    Refused(String),
    /// Anything else, transport errors included.
    Failed(String),
}

/// One connection to a receiver.
pub enum Connection {
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
    Http {
        client: Client<HttpConnector, Full<Bytes>>,
        url: String,
        gzip: bool,
    },
}

impl Connection {
    /// A gRPC connection to `addr` (`host:port` or `http://host:port`); `gzip` has tonic
    /// compress each body.
    pub async fn grpc(addr: &str, gzip: bool) -> Result<Connection, Error> {
        let uri = if addr.starts_with("http://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let channel = tonic::transport::Endpoint::from_shared(uri)?
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20))
            .connect()
            .await?;
        let mut client = tonic::client::Grpc::new(channel).max_decoding_message_size(1 << 20);
        if gzip {
            client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        Ok(Connection::Grpc(client))
    }

    /// An HTTP connection to `url` (`http://host:port/v1/traces`); with `gzip` the bodies
    /// given to [`Connection::send`] must be gzip-compressed already (see [`gzip`]).
    pub fn http(url: &str, gzip: bool) -> Connection {
        Connection::Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: url.to_string(),
            gzip,
        }
    }

    /// Sends one body and waits for the answer.
    pub async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Connection::Grpc(client) => {
                if let Err(e) = client.ready().await {
                    return Outcome::Failed(format!("gRPC not ready: {e}"));
                }
                let path = http::uri::PathAndQuery::from_static(
                    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                );
                match client
                    .unary(tonic::Request::new(body), path, RawCodec)
                    .await
                {
                    Ok(response) => Outcome::Ok {
                        rejected: rejected_in(response.get_ref()),
                    },
                    Err(s) => match s.code() {
                        tonic::Code::Unavailable | tonic::Code::ResourceExhausted => {
                            Outcome::Refused(format!("gRPC {:?}", s.code()))
                        }
                        code => Outcome::Failed(format!("gRPC {code:?}: {}", s.message())),
                    },
                }
            }
            Connection::Http { client, url, gzip } => {
                let mut request = http::Request::post(url.as_str())
                    .header("content-type", "application/x-protobuf");
                if *gzip {
                    request = request.header("content-encoding", "gzip");
                }
                let request = match request.body(Full::new(body)) {
                    Ok(r) => r,
                    Err(e) => return Outcome::Failed(format!("HTTP request: {e}")),
                };
                let response = match client.request(request).await {
                    Ok(r) => r,
                    Err(e) => return Outcome::Failed(format!("HTTP: {e}")),
                };
                let status = response.status();
                match response.into_body().collect().await {
                    Ok(body) if status.is_success() => Outcome::Ok {
                        rejected: rejected_in(&body.to_bytes()),
                    },
                    Ok(_) if matches!(status.as_u16(), 429 | 413 | 503) => {
                        Outcome::Refused(format!("HTTP {}", status.as_u16()))
                    }
                    Ok(_) => Outcome::Failed(format!("HTTP {}", status.as_u16())),
                    Err(e) => Outcome::Failed(format!("HTTP body: {e}")),
                }
            }
        }
    }
}

/// Spans refused in a partial-success answer.
fn rejected_in(body: &[u8]) -> u64 {
    ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| p.rejected_spans.max(0) as u64)
}

/// `raw` gzip-compressed, for OTLP/HTTP bodies (gRPC compresses on its own).
pub fn gzip(raw: &[u8]) -> std::io::Result<Bytes> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(raw)?;
    gz.finish().map(Bytes::from)
}

/// Resident memory of process `pid` (from /proc), MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Sends request bytes as they are and hands the response back as bytes.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
