//! Support for end-to-end tests of the `augury` binary: [`daemon`] starts it, [`traffic`]
//! sends it spans, [`prometheus`] runs a real Prometheus with in-test exporters.
pub mod daemon;
pub mod prometheus;
pub mod traffic;
