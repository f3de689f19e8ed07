//! OTLP load generator: sends pre-encoded batches (512 server spans, 10 attributes each,
//! for `checkout` 1.0.0 and 2.0.0) to a receiver over gRPC or HTTP as fast as it answers,
//! and reports acknowledged spans per second, plus the receiver's resident memory when
//! given its pid. Bounded in time; talks only to the address it is given.
//!
//! ```text
//! cargo run --release --example otlp_server -- --seconds 320 &
//! cargo run --release --example otlp_load -- --grpc 127.0.0.1:4317 --seconds 300 --server-pid PID
//! cargo run --release --example otlp_load -- --http http://127.0.0.1:4318/v1/traces ...
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use augury::ingest::otlp::synthetic::{BatchSpec, batch};
use bytes::{BufMut, Bytes};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

#[derive(Parser)]
struct Args {
    /// gRPC receiver address (host:port).
    #[arg(long, conflicts_with = "http")]
    grpc: Option<String>,
    /// HTTP receiver URL (http://host:port/v1/traces).
    #[arg(long)]
    http: Option<String>,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Distinct batches to rotate through.
    #[arg(long, default_value_t = 8)]
    batches: u64,
    #[arg(long, default_value_t = 512)]
    spans: usize,
    #[arg(long, default_value_t = 10)]
    attributes: usize,
    /// Send gzip-compressed bodies.
    #[arg(long)]
    gzip: bool,
    #[arg(long, default_value_t = 10)]
    every: u64,
    /// Receiver process to sample resident memory from (/proc/PID/status).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    requests: AtomicU64,
    refused: AtomicU64,
}

fn rss_mib(pid: u32) -> Option<f64> {
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

async fn grpc_loop(
    addr: String,
    bodies: Arc<Vec<Bytes>>,
    spans: u64,
    gzip: bool,
    deadline: Instant,
    counts: Arc<Counts>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20))
        .connect()
        .await?;
    let mut client = tonic::client::Grpc::new(channel).max_decoding_message_size(1 << 20);
    if gzip {
        client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let mut i = 0usize;
    while Instant::now() < deadline {
        client.ready().await?;
        let body = bodies[i % bodies.len()].clone();
        i += 1;
        match client
            .unary(tonic::Request::new(body), path.clone(), RawCodec)
            .await
        {
            Ok(_) => {
                counts.spans.fetch_add(spans, Ordering::Relaxed);
                counts.requests.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

async fn http_loop(
    url: String,
    bodies: Arc<Vec<Bytes>>,
    spans: u64,
    gzip: bool,
    deadline: Instant,
    counts: Arc<Counts>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut i = 0usize;
    while Instant::now() < deadline {
        let body = bodies[i % bodies.len()].clone();
        i += 1;
        let mut request =
            http::Request::post(&url).header("content-type", "application/x-protobuf");
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        let response = client.request(request.body(Full::new(body))?).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        if ok {
            counts.spans.fetch_add(spans, Ordering::Relaxed);
            counts.requests.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let bodies: Vec<Bytes> = (0..args.batches)
        .map(|seed| {
            let version = if seed % 2 == 0 { "1.0.0" } else { "2.0.0" };
            let spec = BatchSpec {
                spans: args.spans,
                attributes: args.attributes,
                ..BatchSpec::standard("checkout", version, seed)
            };
            let raw = batch(&spec).encode_to_vec();
            // gRPC compresses on its own; HTTP bodies are compressed here.
            if args.gzip && args.http.is_some() {
                use std::io::Write;
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&raw)
                    .map(|_| ())
                    .and_then(|_| gz.finish())
                    .map(Bytes::from)
            } else {
                Ok(Bytes::from(raw))
            }
        })
        .collect::<Result<_, _>>()?;
    let size = bodies[0].len();
    let bodies = Arc::new(bodies);
    let spans = args.spans as u64;
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let transport = if args.grpc.is_some() { "gRPC" } else { "HTTP" };
    println!(
        "{transport}: {} connections, batches of {} spans x {} attributes ({} bytes{}), {} s",
        args.connections,
        args.spans,
        args.attributes,
        size,
        if args.gzip { ", gzip" } else { "" },
        args.seconds
    );

    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (bodies, counts) = (Arc::clone(&bodies), Arc::clone(&counts));
        let (gzip, grpc, http) = (args.gzip, args.grpc.clone(), args.http.clone());
        tasks.push(tokio::spawn(async move {
            match (grpc, http) {
                (Some(addr), _) => grpc_loop(addr, bodies, spans, gzip, deadline, counts).await,
                (None, Some(url)) => http_loop(url, bodies, spans, gzip, deadline, counts).await,
                (None, None) => Err("give --grpc ADDR or --http URL".into()),
            }
        }));
    }

    let mut tick = tokio::time::interval(Duration::from_secs(args.every));
    tick.tick().await;
    let mut last = 0u64;
    let mut rss = Vec::new();
    let mut rates = Vec::new();
    while Instant::now() < deadline {
        tick.tick().await;
        let now = counts.spans.load(Ordering::Relaxed);
        let rate = (now - last) as f64 / args.every as f64;
        rates.push(rate);
        let server_rss = args.server_pid.and_then(rss_mib);
        if let Some(r) = server_rss {
            rss.push(r);
        }
        println!(
            "t={:>4}s spans/s={:>10.0} total={:>12} refused={} server_rss={}",
            start.elapsed().as_secs(),
            rate,
            now,
            counts.refused.load(Ordering::Relaxed),
            server_rss.map_or("-".into(), |r| format!("{r:.1}MiB")),
        );
        last = now;
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = counts.spans.load(Ordering::Relaxed);
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "done: {total} spans in {elapsed:.1} s = {:.0} spans/s (slowest interval {min:.0}/s), \
         {} requests, {} refused",
        total as f64 / elapsed,
        counts.requests.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
    );
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        let max = rss.iter().copied().fold(0.0, f64::max);
        println!("server rss: first {first:.1} MiB, last {last:.1} MiB, max {max:.1} MiB");
    }
    Ok(())
}
