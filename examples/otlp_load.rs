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

// The test support it shares panics on a broken fixture: there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Its raw OTLP sender is shared with the soak, in the test support: reached by path.
#[path = "../tests/support/otlp_load.rs"]
mod otlp_load;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use augury::ingest::otlp::synthetic::{BatchSpec, batch};
use bytes::Bytes;
use clap::Parser;
use otlp_load::{Connection, Error, Outcome, rss_mib};
use prost::Message;

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

/// One connection: sends the bodies in turn until the deadline.
async fn send_loop(
    mut connection: Connection,
    bodies: Arc<Vec<Bytes>>,
    spans: u64,
    deadline: Instant,
    counts: Arc<Counts>,
) {
    let mut i = 0usize;
    while Instant::now() < deadline {
        let body = bodies[i % bodies.len()].clone();
        i += 1;
        match connection.send(body).await {
            Outcome::Ok { .. } => {
                counts.spans.fetch_add(spans, Ordering::Relaxed);
                counts.requests.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Refused(_) | Outcome::Failed(_) => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Error> {
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
                otlp_load::gzip(&raw)
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
        let connection = match (&args.grpc, &args.http) {
            (Some(addr), _) => Connection::grpc(addr, args.gzip).await?,
            (None, Some(url)) => Connection::http(url, args.gzip),
            (None, None) => return Err("give --grpc ADDR or --http URL".into()),
        };
        let (bodies, counts) = (Arc::clone(&bodies), Arc::clone(&counts));
        tasks.push(tokio::spawn(send_loop(
            connection, bodies, spans, deadline, counts,
        )));
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
        task.await?;
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
