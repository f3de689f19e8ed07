//! Support for end-to-end tests of the `augury` binary: [`daemon`] starts it, [`http`]
//! talks JSON to its API, [`traffic`] sends it spans through the OpenTelemetry SDK,
//! [`otlp_load`] sends raw OTLP load, [`soak`] runs the soak, [`prometheus`] runs a real Prometheus with in-test exporters,
//! [`checkout`] a busy service's history for it, [`postgres`] a real PostgreSQL server of
//! the test's own, [`contracts`] checks payloads
//! against what PagerDuty's documentation requires.
//! `examples/soak.rs` and `examples/otlp_load.rs` use it too.
pub mod checkout;
pub mod contracts;
pub mod daemon;
pub mod http;
pub mod otlp_load;
pub mod postgres;
pub mod prometheus;
pub mod soak;
pub mod traffic;

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, then released): a server
/// started on it may still find it taken, and should be retried on another.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a port on 127.0.0.1")
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}
