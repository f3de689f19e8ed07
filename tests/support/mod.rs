//! Support for end-to-end tests of the `augury` binary.
pub mod daemon;
pub mod traffic;
