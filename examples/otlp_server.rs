//! The OTLP receiver on its own, for load tests: watches `checkout` versions 1.0.0 and
//! 2.0.0, takes their windows every interval as the analysis runner would, and prints
//! spans accepted per second and its own resident memory.
//!
//! ```text
//! cargo run --release --example otlp_server -- --seconds 300 --every 10
//! cargo run --release --example otlp_load -- --grpc 127.0.0.1:4317 --seconds 300 --server-pid PID
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use augury::ingest::otlp::{DecoderKind, OtlpConfig, OtlpReceiver};
use augury::windows::{Scope, SpanFilter, Windows, WindowsConfig};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4317")]
    grpc: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:4318")]
    http: SocketAddr,
    /// lean or full
    #[arg(long, default_value = "lean")]
    decoder: String,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Report (and take the windows) every this many seconds.
    #[arg(long, default_value_t = 10)]
    every: u64,
    #[arg(long, default_value_t = 64)]
    max_concurrent_requests: usize,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let windows = Arc::new(Windows::new(WindowsConfig::default()));
    let mut watches = Vec::new();
    for version in ["1.0.0", "2.0.0"] {
        let scope: Scope = [("service.name", "checkout"), ("service.version", version)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        watches.push(windows.watch(scope, SpanFilter::default())?);
    }
    let config = OtlpConfig {
        grpc_listen: args.grpc,
        http_listen: args.http,
        max_concurrent_requests: args.max_concurrent_requests,
        decoder: match args.decoder.as_str() {
            "full" => DecoderKind::Full,
            _ => DecoderKind::Lean,
        },
        ..OtlpConfig::default()
    };
    let receiver = OtlpReceiver::bind(config, Arc::clone(&windows)).await?;
    let stats = receiver.stats();
    println!(
        "listening grpc={} http={} pid={} decoder={}",
        receiver.grpc_addr(),
        receiver.http_addr(),
        std::process::id(),
        args.decoder
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(receiver.run(async move {
        let _ = stopped.await;
    }));

    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(args.every));
    tick.tick().await;
    let mut last = windows.stats().accepted_spans;
    let mut recorded = 0u64;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        for id in &watches {
            recorded += windows.take(*id)?.requests;
        }
        let now = windows.stats();
        let r = stats.get();
        println!(
            "t={:>4}s accepted={:>12} rate={:>10.0}/s rss={:>7.1}MiB recorded={} dropped={} \
             rejected={} throttled={}",
            start.elapsed().as_secs(),
            now.accepted_spans,
            (now.accepted_spans - last) as f64 / args.every as f64,
            rss_kib() as f64 / 1024.0,
            recorded,
            now.dropped_spans,
            now.rejected_spans,
            r.grpc.throttled + r.http.throttled,
        );
        last = now.accepted_spans;
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
