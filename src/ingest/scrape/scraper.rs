//! The HTTP side of scraping: fetch one target's `/metrics`, parse it, select series, and
//! a thin loop that turns successive scrapes into [`Deltas`].
//!
//! One [`Scraper`] per target URL. It asks for OpenMetrics first and the text format as
//! fallback, accepts gzip, bounds the time (the whole request, body included) and the
//! decompressed body size, and reads the format from the response's Content-Type. Every
//! failure is a [`ScrapeError`] that names the target and says what went wrong, so the
//! analysis can tell a target that is down from one that serves garbage.

use std::time::Duration;

use tokio::sync::mpsc;

use super::delta::{Deltas, SelectError, Selector, Snapshot, deltas};
use super::exposition::{Exposition, Format, ParseError};

/// The Accept header: OpenMetrics 1.0 preferred, Prometheus text 0.0.4 as fallback.
pub const ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Default cap on a (decompressed) body: far above any real `/metrics`, far below what
/// would hurt the daemon.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("scrape target {url}: invalid URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("scrape target {url} is down: {reason}")]
    Down { url: String, reason: String },
    #[error("scrape target {url} timed out after {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("scrape target {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("scrape target {url}: reading the body failed: {reason}")]
    Body { url: String, reason: String },
    #[error("scrape target {url}: {} body rejected at {error}", format.name())]
    Parse {
        url: String,
        format: Format,
        error: ParseError,
    },
    #[error("scrape target {url}: {error}")]
    Select { url: String, error: SelectError },
}

/// A fetched body, with the format its Content-Type announced.
#[derive(Clone, Debug)]
pub struct Body {
    pub format: Format,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl Body {
    /// Parses the body in its announced format.
    pub fn parse(&self) -> Result<Exposition<'_>, ParseError> {
        super::exposition::parse_bytes(&self.bytes, self.format)
    }
}

/// Scrapes one target URL.
#[derive(Clone, Debug)]
pub struct Scraper {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    max_body_bytes: usize,
}

impl Scraper {
    /// A scraper for `url` (http or https) with a per-scrape `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ScrapeError> {
        let invalid = |reason: String| ScrapeError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "scheme `{}` (http or https expected)",
                parsed.scheme()
            )));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("augury/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        Ok(Scraper {
            client,
            url: parsed,
            timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// Caps the decompressed body size (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    fn classify(&self, e: reqwest::Error) -> ScrapeError {
        let url = crate::redact::url(self.url.as_str());
        if e.is_timeout() {
            ScrapeError::Timeout {
                url,
                timeout: self.timeout,
            }
        } else {
            ScrapeError::Down {
                url,
                // Without the URL, which may carry credentials.
                reason: error_chain(&e.without_url()),
            }
        }
    }

    /// Fetches the body (no parsing).
    pub async fn fetch(&self) -> Result<Body, ScrapeError> {
        let url = crate::redact::url(self.url.as_str());
        let mut response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::ACCEPT, ACCEPT)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScrapeError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let format = Format::from_content_type(content_type.as_deref().unwrap_or(""));
        let mut bytes = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    self.classify(e)
                } else {
                    ScrapeError::Body {
                        url: url.clone(),
                        reason: error_chain(&e),
                    }
                }
            })?;
            let Some(chunk) = chunk else { break };
            if bytes.len() + chunk.len() > self.max_body_bytes {
                return Err(ScrapeError::Body {
                    url,
                    reason: format!("larger than {} bytes", self.max_body_bytes),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Body {
            format,
            content_type,
            bytes,
        })
    }

    /// Fetches, parses and hands the parsed families to `f` (they borrow the body, so
    /// they live only for the call).
    pub async fn scrape_with<T>(
        &self,
        f: impl FnOnce(&Exposition<'_>) -> T,
    ) -> Result<T, ScrapeError> {
        let body = self.fetch().await?;
        let exposition = body.parse().map_err(|error| ScrapeError::Parse {
            url: self.url.to_string(),
            format: body.format,
            error,
        })?;
        Ok(f(&exposition))
    }

    /// Fetches, parses and selects the series `selectors` ask for.
    pub async fn scrape(&self, selectors: &[Selector]) -> Result<Snapshot, ScrapeError> {
        self.scrape_with(|e| Snapshot::select(e, selectors))
            .await?
            .map_err(|error| ScrapeError::Select {
                url: self.url.to_string(),
                error,
            })
    }
}

/// The error and its sources on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Successive scrapes of one target, each compared with the last good one.
pub struct ScrapeLoop {
    scraper: Scraper,
    selectors: Vec<Selector>,
    previous: Option<Snapshot>,
}

impl ScrapeLoop {
    pub fn new(scraper: Scraper, selectors: Vec<Selector>) -> Self {
        ScrapeLoop {
            scraper,
            selectors,
            previous: None,
        }
    }

    /// Scrapes once. `Ok(None)` on the first good scrape (nothing to compare with yet);
    /// after that, the deltas since the last good scrape. A failed scrape leaves the last
    /// good one in place, so the next success covers the gap instead of losing it.
    pub async fn step(&mut self) -> Result<Option<Deltas>, ScrapeError> {
        let current = self.scraper.scrape(&self.selectors).await?;
        let out = self.previous.as_ref().map(|p| deltas(p, &current));
        self.previous = Some(current);
        Ok(out)
    }

    /// Steps every `period` and sends each outcome (the first good scrape sends nothing)
    /// until the receiver is dropped. Missed ticks are skipped, not bunched up.
    pub async fn run(mut self, period: Duration, out: mpsc::Sender<Result<Deltas, ScrapeError>>) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = out.closed() => return,
            }
            let sent = match self.step().await {
                Ok(None) => continue,
                Ok(Some(d)) => out.send(Ok(d)).await,
                Err(e) => out.send(Err(e)).await,
            };
            if sent.is_err() {
                return;
            }
        }
    }
}
