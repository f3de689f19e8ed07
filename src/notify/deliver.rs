//! The deliverer: one task that sends due outbox rows, retries what may succeed later
//! and records every attempt in the store.
//!
//! Retry policy: 2xx delivers. 429, 408 and 5xx and network errors (refused, reset,
//! timed out) are retried after `Retry-After` when the receiver sends one (seconds or
//! an HTTP date), else after an exponential back-off with jitter (`initial_backoff`
//! doubling per attempt, up to `max_backoff`, each wait drawn from its upper half).
//! Other 4xx (400, 403, 404, 410, ...) will not get better and are never retried. After
//! `max_attempts` the row is given up (`failed`).
//!
//! It wakes when the store reports a change (a verdict, a cancel, a create) and when the
//! next retry is due. On shutdown it makes one last pass over what is due, bounded by
//! `flush_timeout`; whatever is left goes out after the next start.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::sync::{Notify, Semaphore, watch};

use super::config::{NotifierConfig, PAGERDUTY_EVENTS_URL};
use super::message::Message;
use super::{Attempt, Notification, Notifiers, Outcome, pagerduty, slack, webhook};
use crate::analysis::runner::now_ms;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Rows fetched per round.
const BATCH: u32 = 64;
/// Rounds per pass before the loop looks at its clock and stop signal again.
const ROUNDS: usize = 16;
/// Longest error text kept from a receiver's answer.
const ERROR_MAX: usize = 300;

pub struct Deliverer {
    store: Store,
    notifiers: Arc<Notifiers>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    wake: Arc<Notify>,
}

impl Deliverer {
    /// A deliverer over `store`; it hears of new outbox rows through the store's change
    /// listener.
    pub fn new(
        store: Store,
        notifiers: Arc<Notifiers>,
        metrics: Arc<Metrics>,
    ) -> Result<Deliverer, String> {
        let client = reqwest::Client::builder()
            .timeout(notifiers.delivery.timeout)
            .connect_timeout(notifiers.delivery.timeout)
            .user_agent(concat!("augury/", env!("CARGO_PKG_VERSION")))
            // A redirect could carry the signed body or a secret URL elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per notification: they are few, and a pooled connection
            // the receiver closed meanwhile cannot make one request look like two.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("notification HTTP client: {e}"))?;
        let wake = Arc::new(Notify::new());
        let w = Arc::clone(&wake);
        store.on_change(Arc::new(move |_: &str| w.notify_one()));
        for name in notifiers.notifiers.keys() {
            metrics.notifier_configured(name);
        }
        Ok(Deliverer {
            store,
            notifiers,
            metrics,
            client,
            wake,
        })
    }

    /// Delivers until `stop` turns true, then flushes what is due (bounded) and returns.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            self.pass(Some(&stop)).await;
            let next = match self.store.pending_notifications().await {
                Ok((next, pending)) => {
                    self.metrics.set_notifications_pending(pending);
                    next
                }
                Err(e) => {
                    tracing::error!(error = %e, "notification outbox unreadable; retrying");
                    Some(now_ms() + 1000)
                }
            };
            let wait = match next {
                Some(t) => Duration::from_millis((t - now_ms()).clamp(0, 3_600_000) as u64),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let flush = self.notifiers.delivery.flush_timeout;
        if tokio::time::timeout(flush, self.pass(None)).await.is_err() {
            tracing::warn!("notifications still due at shutdown go out after the next start");
        }
    }

    /// Sends everything due now. With `stop`, a stop leaves what has not started for the
    /// final flush, while requests in flight finish and are recorded.
    async fn pass(&self, stop: Option<&watch::Receiver<bool>>) {
        let stopping = |stop: Option<&watch::Receiver<bool>>| stop.is_some_and(|s| *s.borrow());
        let permits = Arc::new(Semaphore::new(self.notifiers.delivery.concurrency.max(1)));
        for _ in 0..ROUNDS {
            if stopping(stop) {
                return;
            }
            let due = match self.store.due_notifications(now_ms(), BATCH).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "notification outbox unreadable");
                    return;
                }
            };
            if due.is_empty() {
                return;
            }
            let mut sends = tokio::task::JoinSet::new();
            for n in due {
                let this = self.handle();
                let permits = Arc::clone(&permits);
                let stop = stop.cloned();
                sends.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    if !stopping(stop.as_ref()) {
                        this.deliver(n).await;
                    }
                });
            }
            while let Some(done) = sends.join_next().await {
                if let Err(e) = done {
                    tracing::error!(error = %e, "notification delivery task failed");
                }
            }
        }
    }

    fn handle(&self) -> Sender {
        Sender {
            store: self.store.clone(),
            notifiers: Arc::clone(&self.notifiers),
            metrics: Arc::clone(&self.metrics),
            client: self.client.clone(),
        }
    }
}

/// What one delivery task needs.
struct Sender {
    store: Store,
    notifiers: Arc<Notifiers>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
}

/// One HTTP request to make.
struct Outgoing {
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Sender {
    async fn deliver(&self, n: Notification) {
        let attempt_no = n.attempts + 1;
        let started = Instant::now();
        let at_ms = now_ms();
        let (status, outcome, error, retry_after) = match self.request(&n, at_ms).await {
            Err(reason) => (None, Outcome::Failed, Some(reason), None),
            Ok(out) => self.send(out).await,
        };
        let took = started.elapsed();
        let delivery = &self.notifiers.delivery;
        let (outcome, error) = if outcome == Outcome::Retry && attempt_no >= delivery.max_attempts {
            let why = error.unwrap_or_default();
            (
                Outcome::Failed,
                Some(format!("gave up after {attempt_no} attempts: {why}")),
            )
        } else {
            (outcome, error)
        };
        let wait = retry_after
            .unwrap_or_else(|| backoff(delivery.initial_backoff, delivery.max_backoff, attempt_no))
            .min(delivery.max_backoff);
        let attempt = Attempt {
            at_ms,
            duration_ms: took.as_millis() as i64,
            status,
            outcome,
            error: error.clone(),
            next_attempt_ms: at_ms + took.as_millis() as i64 + wait.as_millis() as i64,
        };
        self.metrics
            .notification(&n.notifier, outcome.as_str(), took);
        match outcome {
            Outcome::Delivered => tracing::info!(
                analysis = %n.analysis_id, notifier = %n.notifier, event = n.event.as_str(),
                attempt = attempt_no, status = status.unwrap_or(0), "notification delivered"
            ),
            Outcome::Retry => tracing::warn!(
                analysis = %n.analysis_id, notifier = %n.notifier, event = n.event.as_str(),
                attempt = attempt_no, error = error.as_deref().unwrap_or(""),
                retry_in_ms = wait.as_millis() as u64, "notification not delivered; will retry"
            ),
            Outcome::Failed => tracing::error!(
                analysis = %n.analysis_id, notifier = %n.notifier, event = n.event.as_str(),
                attempt = attempt_no, error = error.as_deref().unwrap_or(""),
                "notification failed for good"
            ),
        }
        if let Err(e) = self.store.record_attempt(n.id, &attempt).await {
            // The row stays pending and is sent again: at least once, never lost.
            tracing::error!(notification = n.id, error = %e, "delivery attempt not recorded");
        }
    }

    /// The request for `n`, or why there can be none (a permanent failure).
    async fn request(&self, n: &Notification, now: i64) -> Result<Outgoing, String> {
        let config = self
            .notifiers
            .get(&n.notifier)
            .ok_or_else(|| format!("notifier `{}` is no longer configured", n.notifier))?;
        let analysis = self
            .store
            .get(&n.analysis_id)
            .await
            .map_err(|e| format!("analysis unreadable: {e}"))?
            .ok_or_else(|| format!("analysis {} no longer exists", n.analysis_id))?;
        let m = Message::new(n, &analysis, &self.notifiers.links, now);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let json = |v: &serde_json::Value| serde_json::to_vec(v).map_err(|e| e.to_string());
        let out = match config {
            NotifierConfig::Slack { url, .. } => Outgoing {
                url: url.expose().to_string(),
                body: json(&slack::body(&m))?,
                headers,
            },
            NotifierConfig::Pagerduty {
                routing_key,
                events_url,
                severity,
                source,
                ..
            } => Outgoing {
                url: events_url
                    .clone()
                    .unwrap_or_else(|| PAGERDUTY_EVENTS_URL.to_string()),
                body: json(&pagerduty::body(
                    &m,
                    routing_key,
                    *severity,
                    source.as_deref(),
                ))?,
                headers,
            },
            NotifierConfig::Webhook { url, secret, .. } => {
                let body = json(&webhook::body(&m))?;
                let timestamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let signature = webhook::signature(secret, timestamp, &body);
                let header = |v: String| HeaderValue::from_str(&v).map_err(|e| e.to_string());
                headers.insert(webhook::TIMESTAMP_HEADER, header(timestamp.to_string())?);
                headers.insert(webhook::SIGNATURE_HEADER, header(signature)?);
                headers.insert(webhook::EVENT_HEADER, header(n.event.as_str().to_string())?);
                headers.insert(webhook::DELIVERY_HEADER, header(webhook::delivery_id(&m))?);
                Outgoing {
                    url: url.clone(),
                    body,
                    headers,
                }
            }
        };
        Ok(out)
    }

    /// Sends and classifies: (status, outcome, error, Retry-After).
    async fn send(
        &self,
        out: Outgoing,
    ) -> (Option<u16>, Outcome, Option<String>, Option<Duration>) {
        let sent = self
            .client
            .post(&out.url)
            .headers(out.headers)
            .body(out.body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // Without the URL: a Slack webhook URL is a secret.
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                let e = e.without_url();
                let detail = std::error::Error::source(&e)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                return (None, Outcome::Retry, Some(format!("{kind}{detail}")), None);
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        if status.is_success() {
            return (Some(status.as_u16()), Outcome::Delivered, None, None);
        }
        let text = response.text().await.unwrap_or_default();
        let error = format!(
            "HTTP {}{}",
            status.as_u16(),
            match text.trim() {
                "" => String::new(),
                t => format!(": {}", super::message::truncate(t, ERROR_MAX)),
            }
        );
        let outcome = if retryable(status) {
            Outcome::Retry
        } else {
            Outcome::Failed
        };
        (Some(status.as_u16()), outcome, Some(error), retry_after)
    }
}

/// 429, 408 and 5xx may succeed later; other answers will not change.
fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// The wait before attempt `attempt + 1`: `initial * 2^(attempt-1)`, at most `max`, drawn
/// uniformly from its upper half so that many rows failing together spread out.
fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max);
    exp.mul_f64(rand::random_range(0.5..=1.0))
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate(value)?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
fn httpdate(value: &str) -> Option<SystemTime> {
    let mut parts = value.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| Some(*m) == parts.clone().next())? as u64
        + 1;
    parts.next();
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = (y - era * 400) as u64;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe as i64 - 719_468;
    let secs = days * 86_400 + (h * 3600 + mi * 60 + s) as i64;
    (secs >= 0).then(|| UNIX_EPOCH + Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            httpdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let (initial, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for attempt in 1..=10 {
            let full = Duration::from_secs(1 << (attempt - 1)).min(max);
            let b = backoff(initial, max, attempt);
            assert!(b >= full / 2 && b <= full, "attempt {attempt}: {b:?}");
        }
    }

    #[test]
    fn which_answers_are_retried() {
        for code in [429, 408, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 413] {
            assert!(!retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }
}
