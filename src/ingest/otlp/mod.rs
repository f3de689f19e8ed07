//! OTLP trace receiver: gRPC `TraceService/Export` and HTTP `POST /v1/traces`
//! (protobuf or JSON, optionally gzip), feeding spans into [`Windows`].
//!
//! - `config`: listen addresses and limits ([`OtlpConfig`]).
//! - `decode`: request bytes to span facts (lean wire scanner, or full prost / serde).
//! - `observe`: span facts to window observations (scope matching, latency, outcome).
//! - `grpc`, `http`: the two transports, sharing one admission gate.
//! - `synthetic`: deterministic requests for simulated services (demo, benchmarks).
//!
//! Invariants: a bad request is answered with an OTLP error and never takes the receiver
//! down; memory does not grow with load, because bodies being received hold at most
//! `max_in_flight_bytes` between them, at most `max_concurrent_requests` bodies (of at
//! most `max_body_bytes`, inflated) are decoded at once, and everything past that is
//! refused with a retry hint (429 / UNAVAILABLE) rather than queued. A request takes its
//! decode permit only once its body is in, so a sender trickling its body holds nothing
//! that others need but its own bytes and its connection (each listener caps those).

pub mod config;
pub mod decode;
mod grpc;
mod http;
pub mod observe;
pub mod synthetic;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::net::{ConnectionStats, Listener};

use crate::windows::Windows;

pub use config::{DecoderKind, OtlpConfig};
pub use decode::DecodeError;
pub use observe::{IngestOutcome, ingest_json, ingest_message, ingest_protobuf};

/// What can stop the receiver.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("OTLP receiver configuration: {0}")]
    Config(String),
    #[error("OTLP {transport} listener: cannot bind {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("OTLP {transport} server failed: {message}")]
    Serve {
        transport: &'static str,
        message: String,
    },
}

/// Request counters of one transport. Every request lands in exactly one of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportStats {
    /// Fully accepted.
    pub ok: u64,
    /// Accepted with some spans rejected (partial success).
    pub partial: u64,
    /// Refused as undecodable (400 / INVALID_ARGUMENT).
    pub invalid: u64,
    /// Refused as larger than `max_body_bytes` (413 / RESOURCE_EXHAUSTED).
    pub too_large: u64,
    /// Refused for an unsupported content type or encoding (415 / UNIMPLEMENTED).
    pub unsupported: u64,
    /// Refused under back-pressure (429 / UNAVAILABLE).
    pub throttled: u64,
}

/// Request counters of both transports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReceiverStats {
    pub grpc: TransportStats,
    pub http: TransportStats,
    /// Requests being decoded now (permits taken from the admission gate).
    pub in_flight: usize,
    /// Bytes of request bodies being received now (taken from the in-flight budget).
    pub in_flight_bytes: usize,
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    partial: AtomicU64,
    invalid: AtomicU64,
    too_large: AtomicU64,
    unsupported: AtomicU64,
    throttled: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn outcome(&self, outcome: &IngestOutcome) {
        Counters::bump(if outcome.rejected > 0 {
            &self.partial
        } else {
            &self.ok
        });
    }

    fn snapshot(&self) -> TransportStats {
        TransportStats {
            ok: self.ok.load(Ordering::Relaxed),
            partial: self.partial.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
            unsupported: self.unsupported.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }
}

/// State both transports share.
struct Shared {
    windows: Arc<Windows>,
    config: OtlpConfig,
    /// One permit per request being decoded, across both transports.
    gate: Arc<Semaphore>,
    /// One permit per byte of request body being received, across both transports.
    bytes: Arc<Semaphore>,
    grpc: Counters,
    http: Counters,
}

impl Shared {
    fn retry_after(&self) -> Duration {
        Duration::from_secs(self.config.retry_after_seconds)
    }

    /// Takes `n` bytes from the in-flight budget, adding them to `held`; `false` (and
    /// nothing taken) when they do not fit.
    fn take_bytes(&self, n: usize, held: &mut Option<OwnedSemaphorePermit>) -> bool {
        if n == 0 {
            return true;
        }
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        let Ok(permit) = Arc::clone(&self.bytes).try_acquire_many_owned(n) else {
            return false;
        };
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        true
    }

    /// Why a request was refused under load, for its answer.
    fn busy_message(&self) -> String {
        format!(
            "receiver is busy: {} requests being decoded or {} bytes being received; \
             retry later",
            self.config.max_concurrent_requests, self.config.max_in_flight_bytes
        )
    }
}

/// Reads the receiver's counters while it runs.
#[derive(Clone)]
pub struct ReceiverStatsHandle(Arc<Shared>);

impl ReceiverStatsHandle {
    pub fn get(&self) -> ReceiverStats {
        let shared = &self.0;
        ReceiverStats {
            grpc: shared.grpc.snapshot(),
            http: shared.http.snapshot(),
            in_flight: shared
                .config
                .max_concurrent_requests
                .saturating_sub(shared.gate.available_permits()),
            in_flight_bytes: shared
                .config
                .max_in_flight_bytes
                .saturating_sub(shared.bytes.available_permits()),
        }
    }
}

/// Both OTLP listeners, bound and ready to serve.
pub struct OtlpReceiver {
    grpc: Listener,
    http: Listener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl OtlpReceiver {
    /// Binds both listeners (so the caller can learn ports picked for port 0).
    pub async fn bind(config: OtlpConfig, windows: Arc<Windows>) -> Result<Self, OtlpError> {
        config.validate()?;
        let grpc = bind("gRPC", config.grpc_listen).await?;
        let http = bind("HTTP", config.http_listen).await?;
        let grpc_addr = local_addr("gRPC", &grpc, config.grpc_listen)?;
        let http_addr = local_addr("HTTP", &http, config.http_listen)?;
        let grpc = Listener::new(grpc, config.listener_limits());
        let http = Listener::new(http, config.listener_limits());
        let shared = Arc::new(Shared {
            windows,
            gate: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            bytes: Arc::new(Semaphore::new(config.max_in_flight_bytes)),
            config,
            grpc: Counters::default(),
            http: Counters::default(),
        });
        Ok(OtlpReceiver {
            grpc,
            http,
            grpc_addr,
            http_addr,
            shared,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Each listener's connection counts, named as `augury_connections{listener}` shows
    /// them, usable after `run` took the receiver.
    pub fn connection_stats(&self) -> [(&'static str, ConnectionStats); 2] {
        [
            ("otlp_grpc", self.grpc.stats()),
            ("otlp_http", self.http.stats()),
        ]
    }

    /// A handle on the request counters, usable after `run` took the receiver.
    pub fn stats(&self) -> ReceiverStatsHandle {
        ReceiverStatsHandle(Arc::clone(&self.shared))
    }

    /// Serves both listeners until `shutdown` completes, then stops accepting, lets
    /// requests in progress finish, and returns. Also expires idle watches periodically,
    /// so abandoned windows are freed even if nobody else calls `expire_idle`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), OtlpError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            // An error means the sender is gone, which also means stop.
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });

        let expiry = {
            let windows = Arc::clone(&self.shared.windows);
            let every = (windows.config().idle_timeout / 4).max(Duration::from_secs(1));
            let stop = stopped(stop_rx.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tick.tick() => { windows.expire_idle(Instant::now()); }
                    }
                }
            })
        };

        let grpc = grpc::serve(
            self.grpc,
            Arc::clone(&self.shared),
            stopped(stop_rx.clone()),
        );
        let http = http::serve(self.http, Arc::clone(&self.shared), stopped(stop_rx));
        let result = tokio::try_join!(grpc, http).map(drop);
        signal.abort();
        expiry.abort();
        result
    }

    /// Binds and serves until `shutdown` completes.
    pub async fn serve(
        config: OtlpConfig,
        windows: Arc<Windows>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), OtlpError> {
        OtlpReceiver::bind(config, windows)
            .await?
            .run(shutdown)
            .await
    }
}

async fn bind(transport: &'static str, addr: SocketAddr) -> Result<TcpListener, OtlpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| OtlpError::Bind {
            transport,
            addr,
            source,
        })
}

fn local_addr(
    transport: &'static str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, OtlpError> {
    listener.local_addr().map_err(|source| OtlpError::Bind {
        transport,
        addr,
        source,
    })
}

/// Runs the configured decoder on a protobuf body.
fn ingest_protobuf_with(shared: &Shared, body: &[u8]) -> Result<IngestOutcome, DecodeError> {
    match shared.config.decoder {
        DecoderKind::Lean => observe::ingest_protobuf(&shared.windows, body),
        DecoderKind::Full => observe::ingest_protobuf_full(&shared.windows, body),
    }
}

/// `google.rpc.Status`, the error body OTLP/HTTP returns (details are not sent).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}
