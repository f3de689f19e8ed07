//! Support for end-to-end tests of the `augury` binary: [`daemon`] starts it, [`http`]
//! talks JSON to its API, [`traffic`] sends it spans through the OpenTelemetry SDK,
//! [`otlp_load`] sends raw OTLP load, [`soak`] runs the soak, [`prometheus`] runs a real Prometheus with in-test exporters.
//! `examples/soak.rs` and `examples/otlp_load.rs` use it too.
pub mod daemon;
pub mod http;
pub mod otlp_load;
pub mod prometheus;
pub mod soak;
pub mod traffic;
