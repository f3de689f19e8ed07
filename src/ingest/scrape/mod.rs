//! Scrape source: reads baseline and canary `/metrics` endpoints directly, for teams
//! without a Prometheus server and for short-lived CI environments.
//!
//! - `exposition`: the strict, zero-copy parser of Prometheus text 0.0.4 and OpenMetrics.
//! - `delta`: pure arithmetic over two parsed scrapes: counter increases (with resets,
//!   new and vanished series) and per-bucket histogram increases.
//! - `scraper`: the HTTP side: one target, timeout, content negotiation, gzip, typed
//!   errors, and a thin loop that turns successive scrapes into deltas.
//!
//! What a model writes (series selectors, target URL templates) is parsed in
//! `model::scrape`; the model source that drives these per analysis (every target
//! scraped at watch time and at each interval's end, the increases judged) is the
//! daemon's `daemon::scrape`.
//!
//! Invariant: nothing here panics or grows without bound on what a target serves; a bad
//! body is an error that names the target, the line and the reason.

pub mod delta;
pub mod exposition;
pub mod scraper;

pub use delta::{Change, CounterDelta, Deltas, HistogramDelta, Selector, Series, Snapshot, deltas};
pub use exposition::{Exposition, Family, Format, MetricType, ParseError, Sample, parse};
pub use scraper::{ScrapeError, ScrapeLoop, Scraper};
