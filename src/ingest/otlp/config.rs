//! Receiver configuration: where to listen and the limits that keep a flood of telemetry
//! from taking the daemon down.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::OtlpError;
use crate::net::ListenerLimits;

/// Which protobuf decoder the receiver runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderKind {
    /// Scans the wire format and reads only what the judge needs (several times faster).
    #[default]
    Lean,
    /// Decodes every field with the generated `opentelemetry-proto` types.
    Full,
}

/// OTLP receiver settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// gRPC listener (`TraceService/Export`). Port 0 picks a free port.
    pub grpc_listen: SocketAddr,
    /// HTTP listener (`POST /v1/traces`). Port 0 picks a free port.
    pub http_listen: SocketAddr,
    /// Largest request body accepted, before and after gzip decompression.
    pub max_body_bytes: usize,
    /// Requests decoded at once, over both listeners; past it, requests are refused with
    /// 429 / UNAVAILABLE and a retry hint instead of queueing in memory. A request takes
    /// its permit only once its body has been read, so a slow sender never holds one.
    pub max_concurrent_requests: usize,
    /// Bytes of request bodies being received at once, over both listeners: a body
    /// takes its bytes from this budget as they arrive and gives them back once decoded.
    /// A request whose bytes do not fit is refused with 429 / UNAVAILABLE and a retry
    /// hint. At least `max_body_bytes`. Default 128 MiB.
    pub max_in_flight_bytes: usize,
    /// Connections open at once on each listener (gRPC, HTTP); past it a new connection
    /// is accepted and closed at once. Default 1024.
    pub max_connections: usize,
    /// Longest an HTTP/1 request head may take to arrive (also how long a keep-alive
    /// connection may wait for its next request), seconds. Default 10.
    pub header_read_timeout_seconds: u64,
    /// Longest a connection may go with nothing read or written, seconds. Default 60.
    pub idle_timeout_seconds: u64,
    /// Delay suggested to throttled senders (`Retry-After`, gRPC `RetryInfo`), seconds.
    pub retry_after_seconds: u64,
    /// Longest a request may take to arrive and be handled, seconds. A sender that
    /// trickles its body holds an admission permit; past this it gets 408 (HTTP) or
    /// DEADLINE_EXCEEDED (gRPC) and the permit goes back.
    pub request_timeout_seconds: u64,
    pub decoder: DecoderKind,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            grpc_listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4317)),
            http_listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4318)),
            max_body_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: 32,
            max_in_flight_bytes: 128 * 1024 * 1024,
            max_connections: 1024,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            retry_after_seconds: 1,
            request_timeout_seconds: 10,
            decoder: DecoderKind::Lean,
        }
    }
}

impl OtlpConfig {
    /// Both listeners on 127.0.0.1 with ports the system picks (for tests and benchmarks).
    pub fn loopback_any_port() -> Self {
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        OtlpConfig {
            grpc_listen: any,
            http_listen: any,
            ..OtlpConfig::default()
        }
    }

    /// Refuses settings the receiver cannot run with.
    pub fn validate(&self) -> Result<(), OtlpError> {
        if self.max_body_bytes == 0 || self.max_body_bytes > u32::MAX as usize {
            return Err(OtlpError::Config(format!(
                "max_body_bytes {} is out of range (1 to {})",
                self.max_body_bytes,
                u32::MAX
            )));
        }
        if self.request_timeout_seconds == 0 {
            return Err(OtlpError::Config(
                "request_timeout_seconds is 0: every request would time out".into(),
            ));
        }
        if self.max_concurrent_requests == 0 {
            return Err(OtlpError::Config(
                "max_concurrent_requests is 0: the receiver would refuse every request".into(),
            ));
        }
        if self.max_in_flight_bytes > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(OtlpError::Config(format!(
                "max_in_flight_bytes {} is out of range (at most {})",
                self.max_in_flight_bytes,
                tokio::sync::Semaphore::MAX_PERMITS
            )));
        }
        if self.max_in_flight_bytes < self.max_body_bytes {
            return Err(OtlpError::Config(format!(
                "max_in_flight_bytes {} is less than max_body_bytes {}: a body of the \
                 largest size would always be refused",
                self.max_in_flight_bytes, self.max_body_bytes
            )));
        }
        self.listener_limits()
            .validate("")
            .map_err(OtlpError::Config)
    }

    /// The bounds on each listener's connections.
    pub fn listener_limits(&self) -> ListenerLimits {
        ListenerLimits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
        }
    }
}
