//! Bounded soak of a real `augury serve`: N live `http-red` analyses under OTLP load for a
//! bounded time, then a reconciliation of what was sent against what the daemon counted
//! and judged; exits 0 when every check passed, 1 when one failed, 2 when it could not
//! run. The soak itself, with what it checks, is `tests/support/soak.rs` (shared with the
//! test that runs a short soak); this is its command line (`--help`).
//!
//! ```text
//! cargo build --release --bins --example soak
//! ./target/release/examples/soak --analyses 100 --seconds 600 --rate max --interval 10s
//! ./target/release/examples/soak --api http://127.0.0.1:8080 --otlp 127.0.0.1:4317 --daemon-pid PID ...
//! ```

// The test support it shares panics on a broken fixture: there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The test support is not a crate of its own: examples reach it by path.
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;

use clap::Parser as _;
use support::soak::{Args, run_blocking};

fn main() -> ExitCode {
    match run_blocking(Args::parse()) {
        Ok(report) => {
            println!("{}", report.markdown);
            if report.ok() {
                println!("soak: every check passed");
                ExitCode::SUCCESS
            } else {
                for f in &report.failures {
                    println!("soak: FAILED: {f}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}
