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
//! The store failing is not the receiver failing: when the outbox cannot be read, the
//! analysis behind a row cannot be read for its message, or an attempt cannot be
//! recorded, the row stays pending, no attempt is counted, and the deliverer backs off
//! (`initial_backoff` doubling per pass that fails this way, up to `max_backoff`) before
//! it tries again. A row is given up without an HTTP answer only for what will not
//! change by waiting ([`NotifyError`]: the analysis deleted or undecodable, the notifier
//! removed from the configuration, a message that cannot be rendered). An attempt that
//! was sent but not recorded is sent again after the back-off: at least once.
//!
//! It wakes when the store reports a change (a verdict, a cancel, a create) and when the
//! next retry is due. On shutdown it makes one last pass over what is due, bounded by
//! `flush_timeout`; whatever is left goes out after the next start.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::sync::{Notify, Semaphore, watch};

use crate::analysis::Analysis;
use crate::clock::now_ms;
use crate::notify::config::{NotifierConfig, PAGERDUTY_EVENTS_URL};
use crate::notify::message::{self, Message};
use crate::notify::{Attempt, Notification, Notifiers, Outcome, pagerduty, slack, webhook};
use crate::store::{Change, ChangeListener, Claimant, Store, StoreError};
use crate::telemetry::Metrics;

/// Rows fetched per round.
const BATCH: u32 = 64;
/// Rounds per pass before the loop looks at its clock and stop signal again.
const ROUNDS: usize = 16;
/// Longest error text kept from a receiver's answer.
const ERROR_MAX: usize = 300;

/// Why a notification could not be prepared or its attempt recorded. The deliverer
/// branches on [`NotifyError::is_transient`]: a transient error leaves the row pending, is
/// not counted as an attempt and is retried after a back-off, however often it happens
/// (an undelivered notification survives); a permanent one gives the row up (`failed`).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The store could not be read or written just now (busy, locked, I/O, no connection
    /// free, closing). Transient.
    #[error("store unavailable: {0}")]
    Store(#[source] StoreError),
    /// The analysis the notification is about no longer exists. Permanent.
    #[error("analysis {0} no longer exists")]
    AnalysisGone(String),
    /// The stored analysis cannot be decoded (a column of the wrong type, JSON that does
    /// not parse, an unknown status): it will not decode next time either. Permanent.
    #[error("analysis unreadable: {0}")]
    AnalysisCorrupt(#[source] StoreError),
    /// The notifier was removed from the configuration since the row was written. Permanent.
    #[error("notifier `{0}` is no longer configured")]
    NotifierGone(String),
    /// The message cannot be made into a request (a body that does not serialise, a
    /// header value that is not valid): the same row renders the same way next time.
    /// Permanent.
    #[error("{0}")]
    Render(String),
}

impl NotifyError {
    /// May succeed later without anyone changing the row or the configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, NotifyError::Store(_))
    }

    /// A failed read of the analysis a notification is about: a row that does not decode
    /// is corrupt (permanent); anything else the database says is about the database,
    /// not the row, and may pass (transient).
    pub fn reading_analysis(e: StoreError) -> NotifyError {
        match e {
            StoreError::Corrupt { .. }
            | StoreError::Database(
                sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnIndexOutOfBounds { .. }
                | sqlx::Error::Decode(_)
                | sqlx::Error::TypeNotFound { .. },
            ) => NotifyError::AnalysisCorrupt(e),
            other => NotifyError::Store(other),
        }
    }
}

/// What the deliverer needs of the store. [`Store`] is the implementation; the seam lets
/// tests put a store that fails on demand in front of a real one.
pub trait Outbox: Clone + Send + Sync + 'static {
    /// Pending rows due by `now_ms`, in delivery order, at most `limit`.
    fn due_notifications(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Notification>, StoreError>> + Send;
    /// The same, claimed for `claimant` (see [`Store::claim_notifications`]): among
    /// replicas, so that no two send one row.
    fn claim_notifications(
        &self,
        now_ms: i64,
        limit: u32,
        claimant: &Claimant,
    ) -> impl Future<Output = Result<Vec<Notification>, StoreError>> + Send;
    /// When the next pending row is due, and how many are pending.
    fn pending_notifications(
        &self,
    ) -> impl Future<Output = Result<(Option<i64>, u64), StoreError>> + Send;
    /// The analysis a notification is about.
    fn analysis(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Analysis>, StoreError>> + Send;
    /// Records an attempt and moves the row on.
    fn record_attempt(
        &self,
        id: i64,
        attempt: &Attempt,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Calls `listener` after each change to an analysis commits.
    fn on_change(&self, listener: ChangeListener);
}

impl Outbox for Store {
    async fn due_notifications(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        Store::due_notifications(self, now_ms, limit).await
    }
    async fn claim_notifications(
        &self,
        now_ms: i64,
        limit: u32,
        claimant: &Claimant,
    ) -> Result<Vec<Notification>, StoreError> {
        Store::claim_notifications(self, now_ms, limit, claimant).await
    }
    async fn pending_notifications(&self) -> Result<(Option<i64>, u64), StoreError> {
        Store::pending_notifications(self).await
    }
    async fn analysis(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        self.get(id).await
    }
    async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
        Store::record_attempt(self, id, attempt).await
    }
    fn on_change(&self, listener: ChangeListener) {
        Store::on_change(self, listener)
    }
}

pub struct Deliverer<S = Store> {
    store: S,
    notifiers: Arc<Notifiers>,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    wake: Arc<Notify>,
    /// Who this deliverer claims rows as, and for how long.
    claimant: Claimant,
    /// Among replicas sharing a database: the longest sleep between passes (they do not
    /// hear of each other's new rows, so they look at least this often), and rows are
    /// claimed before they are sent. `None`: alone.
    poll: Option<Duration>,
}

/// How long a claim on a row holds: past the longest a send can take, so that another
/// replica sends the row again only when its sender is gone.
pub fn claim_ttl(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(5)
}

impl<S: Outbox> Deliverer<S> {
    /// A deliverer over `store`; it hears of new outbox rows through the store's change
    /// listener.
    pub fn new(
        store: S,
        notifiers: Arc<Notifiers>,
        metrics: Arc<Metrics>,
    ) -> Result<Deliverer<S>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(notifiers.delivery.timeout)
            .connect_timeout(notifiers.delivery.timeout)
            .user_agent(concat!("augury/", env!("CARGO_PKG_VERSION")))
            // A redirect could carry the signed body or a secret URL elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per notification: they are few, and a pooled connection
            // the receiver closed meanwhile cannot make one request look like two.
            .pool_max_idle_per_host(0)
            .build()?;
        let wake = Arc::new(Notify::new());
        let w = Arc::clone(&wake);
        store.on_change(Arc::new(move |_: &Change<'_>| w.notify_one()));
        for name in notifiers.notifiers.keys() {
            metrics.notifier_configured(name);
        }
        let claimant = Claimant {
            replica: "local".into(),
            ttl_ms: claim_ttl(notifiers.delivery.timeout).as_millis() as i64,
        };
        Ok(Deliverer {
            store,
            notifiers,
            metrics,
            client,
            wake,
            claimant,
            poll: None,
        })
    }

    /// The same deliverer as replica `replica` of several sharing the database: its
    /// claims carry that name, and it looks for due rows at least every `poll`.
    pub fn as_replica(mut self, replica: &str, poll: Duration) -> Deliverer<S> {
        self.claimant.replica = replica.to_string();
        self.poll = Some(poll);
        self
    }

    /// Delivers until `stop` turns true, then flushes what is due (bounded) and returns.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // Passes in a row that the store failed; each doubles the wait before the next.
        let mut store_failures = 0u32;
        loop {
            let next = match self.pass(Some(&stop)).await {
                Ok(()) => self
                    .store
                    .pending_notifications()
                    .await
                    .map_err(NotifyError::Store),
                Err(e) => Err(e),
            };
            let wait = match next {
                Ok((next, pending)) => {
                    store_failures = 0;
                    self.metrics.set_notifications_pending(pending);
                    match next {
                        Some(t) => Duration::from_millis((t - now_ms()).clamp(0, 3_600_000) as u64),
                        None => Duration::from_secs(3600),
                    }
                }
                Err(e) => {
                    store_failures = store_failures.saturating_add(1);
                    let delivery = &self.notifiers.delivery;
                    let wait = backoff(
                        delivery.initial_backoff,
                        delivery.max_backoff,
                        store_failures,
                    );
                    tracing::error!(
                        error = %e, retry_in_ms = wait.as_millis() as u64,
                        "notifications held back: the store failed; nothing is given up"
                    );
                    wait
                }
            };
            let wait = self.poll.map_or(wait, |p| wait.min(p));
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let flush = self.notifiers.delivery.flush_timeout;
        match tokio::time::timeout(flush, self.pass(None)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                "the store failed in the last pass; what is due goes out after the next start"
            ),
            Err(_) => {
                tracing::warn!("notifications still due at shutdown go out after the next start")
            }
        }
    }

    /// Sends everything due now. With `stop`, a stop leaves what has not started for the
    /// final flush, while requests in flight finish and are recorded. Ends early, with the
    /// error, when the store fails: the rows it concerns stay pending for a later pass.
    async fn pass(&self, stop: Option<&watch::Receiver<bool>>) -> Result<(), NotifyError> {
        let stopping = |stop: Option<&watch::Receiver<bool>>| stop.is_some_and(|s| *s.borrow());
        let permits = Arc::new(Semaphore::new(self.notifiers.delivery.concurrency.max(1)));
        for _ in 0..ROUNDS {
            if stopping(stop) {
                return Ok(());
            }
            let due = match self.poll {
                // Alone: nobody else sends, nothing to claim.
                None => self.store.due_notifications(now_ms(), BATCH).await,
                // Among replicas: claim no more than can be sent at once, so that every
                // claimed row is sent well within its claim.
                Some(_) => {
                    let limit = (self.notifiers.delivery.concurrency.max(1) as u32).min(BATCH);
                    let claimed = self
                        .store
                        .claim_notifications(now_ms(), limit, &self.claimant)
                        .await;
                    if let Ok(rows) = &claimed {
                        self.metrics.notifications_claimed(rows.len() as u64);
                    }
                    claimed
                }
            }
            .map_err(NotifyError::Store)?;
            if due.is_empty() {
                return Ok(());
            }
            let mut sends = tokio::task::JoinSet::new();
            for n in due {
                let this = self.handle();
                let permits = Arc::clone(&permits);
                let stop = stop.cloned();
                sends.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    if stopping(stop.as_ref()) {
                        return Ok(());
                    }
                    this.deliver(n).await
                });
            }
            let mut store_failed = None;
            while let Some(done) = sends.join_next().await {
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        store_failed.get_or_insert(e);
                    }
                    Err(e) => tracing::error!(error = %e, "notification delivery task failed"),
                }
            }
            // The rows the store failed on are still due: another round now would only
            // fail again. The caller backs off.
            if let Some(e) = store_failed {
                return Err(e);
            }
        }
        Ok(())
    }

    fn handle(&self) -> Sender<S> {
        Sender {
            store: self.store.clone(),
            notifiers: Arc::clone(&self.notifiers),
            metrics: Arc::clone(&self.metrics),
            client: self.client.clone(),
        }
    }
}

/// What one delivery task needs.
struct Sender<S> {
    store: S,
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

impl<S: Outbox> Sender<S> {
    /// One attempt at `n`, recorded. `Err` only for a transient store error, after which
    /// the row is still pending and nothing was counted against it.
    async fn deliver(&self, n: Notification) -> Result<(), NotifyError> {
        let attempt_no = n.attempts + 1;
        let started = Instant::now();
        let at_ms = now_ms();
        let (status, outcome, error, retry_after) = match self.request(&n, at_ms).await {
            Ok(out) => self.send(out).await,
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    analysis = %n.analysis_id, notifier = %n.notifier, event = n.event.as_str(),
                    error = %e, "notification not prepared; it stays pending"
                );
                return Err(e);
            }
            Err(e) => (None, Outcome::Failed, Some(e.to_string()), None),
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
        self.store
            .record_attempt(n.id, &attempt)
            .await
            .map_err(|e| {
                // The row stays pending and is sent again after the back-off: at least
                // once, never lost.
                tracing::error!(notification = n.id, error = %e, "delivery attempt not recorded");
                NotifyError::Store(e)
            })
    }

    /// The request for `n`, or why there is none now.
    async fn request(&self, n: &Notification, now: i64) -> Result<Outgoing, NotifyError> {
        let config = self
            .notifiers
            .get(&n.notifier)
            .ok_or_else(|| NotifyError::NotifierGone(n.notifier.clone()))?;
        let analysis = self
            .store
            .analysis(&n.analysis_id)
            .await
            .map_err(NotifyError::reading_analysis)?
            .ok_or_else(|| NotifyError::AnalysisGone(n.analysis_id.clone()))?;
        let m = Message::new(n, &analysis, &self.notifiers.links, now);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let json = |v: &serde_json::Value| {
            serde_json::to_vec(v).map_err(|e| NotifyError::Render(e.to_string()))
        };
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
            NotifierConfig::Webhook { url, signature, .. } => {
                let body = json(&webhook::body(&m))?;
                let timestamp = now.div_euclid(1000);
                let secrets = config.signing_secrets();
                let delivery = webhook::delivery_id(&m);
                let header = |v: String| {
                    HeaderValue::from_str(&v).map_err(|e| NotifyError::Render(e.to_string()))
                };
                if signature.augury() {
                    let value = webhook::signatures(&secrets, timestamp, &body);
                    headers.insert(webhook::TIMESTAMP_HEADER, header(timestamp.to_string())?);
                    headers.insert(webhook::SIGNATURE_HEADER, header(value)?);
                }
                if signature.standard() {
                    let value = webhook::standard_signatures(&secrets, &delivery, timestamp, &body)
                        .ok_or_else(|| {
                            NotifyError::Render(
                                "a signing secret is not a Standard Webhooks secret".into(),
                            )
                        })?;
                    headers.insert(webhook::STANDARD_ID_HEADER, header(delivery.clone())?);
                    headers.insert(
                        webhook::STANDARD_TIMESTAMP_HEADER,
                        header(timestamp.to_string())?,
                    );
                    headers.insert(webhook::STANDARD_SIGNATURE_HEADER, header(value)?);
                }
                headers.insert(webhook::EVENT_HEADER, header(n.event.as_str().to_string())?);
                headers.insert(webhook::DELIVERY_HEADER, header(delivery)?);
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
                t => format!(": {}", message::truncate(t, ERROR_MAX)),
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

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, or the two obsolete forms RFC 9110
/// still asks recipients to accept).
fn httpdate(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::UNIX_EPOCH;

    use sqlx::Connection;
    use tokio::sync::mpsc;

    use crate::analysis::{AnalysisRequest, ValidRequest};
    use crate::model::Catalog;
    use crate::notify::{DeliveryState, Event, Recipient};

    /// A real `SQLITE_BUSY`: a reader that will not wait, on a database another
    /// connection holds exclusively. (The store's own database runs in WAL mode, where a
    /// writer never blocks a reader, so a failing read is injected by [`Flaky`].)
    async fn sqlite_busy(dir: &std::path::Path) -> sqlx::Error {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("busy.db"))
            .create_if_missing(true)
            // A rollback journal: there an exclusive transaction keeps readers out.
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete)
            .busy_timeout(Duration::ZERO);
        let mut holder = sqlx::sqlite::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE IF NOT EXISTS t (x)")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut reader = sqlx::sqlite::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .unwrap();
        let Err(busy) = sqlx::query("SELECT x FROM t").fetch_all(&mut reader).await else {
            panic!("a read past an exclusive lock succeeded");
        };
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        busy
    }

    /// The real store, whose reads of an analysis and records of an attempt fail with
    /// `SQLITE_BUSY` as often as asked, and which reports every attempt recorded.
    #[derive(Clone)]
    struct Flaky {
        inner: Store,
        dir: Arc<tempfile::TempDir>,
        failing_reads: Arc<AtomicU32>,
        failing_records: Arc<AtomicU32>,
        reads: Arc<AtomicU32>,
        recorded: mpsc::UnboundedSender<(Attempt, bool)>,
    }

    fn take_one(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    impl Outbox for Flaky {
        async fn due_notifications(
            &self,
            now_ms: i64,
            limit: u32,
        ) -> Result<Vec<Notification>, StoreError> {
            self.inner.due_notifications(now_ms, limit).await
        }
        async fn claim_notifications(
            &self,
            now_ms: i64,
            limit: u32,
            claimant: &Claimant,
        ) -> Result<Vec<Notification>, StoreError> {
            self.inner
                .claim_notifications(now_ms, limit, claimant)
                .await
        }
        async fn pending_notifications(&self) -> Result<(Option<i64>, u64), StoreError> {
            self.inner.pending_notifications().await
        }
        async fn analysis(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if take_one(&self.failing_reads) {
                return Err(StoreError::Database(sqlite_busy(self.dir.path()).await));
            }
            self.inner.get(id).await
        }
        async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
            let result = if take_one(&self.failing_records) {
                Err(StoreError::Database(sqlite_busy(self.dir.path()).await))
            } else {
                self.inner.record_attempt(id, attempt).await
            };
            let _ = self.recorded.send((attempt.clone(), result.is_ok()));
            result
        }
        fn on_change(&self, listener: ChangeListener) {
            self.inner.on_change(listener)
        }
    }

    /// A webhook receiver that answers 200 and passes on each body.
    async fn receiver() -> (String, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(body.to_vec());
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/hook"), rx)
    }

    struct Setup {
        store: Store,
        flaky: Flaky,
        analysis: String,
        recorded: mpsc::UnboundedReceiver<(Attempt, bool)>,
        received: mpsc::UnboundedReceiver<Vec<u8>>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    /// One analysis with one pending `started` notification to a webhook, and a running
    /// deliverer whose store fails `reads` reads and `records` records first.
    async fn setup(reads: u32, records: u32) -> Setup {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = Store::open(&url).await.unwrap();
        let request: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": "k", "model": "http-red",
            "baseline": {"service.name": "checkout", "service.version": "1"},
            "canary": {"service.name": "checkout", "service.version": "2"},
            "interval": "30s", "lifetime": "5m"}))
        .unwrap();
        let valid: ValidRequest = request.validate(&Catalog::builtin()).unwrap();
        let hook = Recipient {
            notifier: "hook".into(),
            events: vec![Event::Started],
        };
        let (analysis, _) = store
            .create_notifying(&valid, &[hook], now_ms())
            .await
            .unwrap();
        let (hook_url, received) = receiver().await;
        let config = std::collections::BTreeMap::from([(
            "hook".to_string(),
            serde_json::json!({"type": "webhook", "url": hook_url, "secret": "s3cret"}),
        )]);
        let mut notifiers = Notifiers::from_config(&config, &[]).unwrap();
        notifiers.delivery.initial_backoff = Duration::from_millis(1);
        notifiers.delivery.max_backoff = Duration::from_millis(4);
        let (tx, recorded) = mpsc::unbounded_channel();
        let flaky = Flaky {
            inner: store.clone(),
            dir,
            failing_reads: Arc::new(AtomicU32::new(reads)),
            failing_records: Arc::new(AtomicU32::new(records)),
            reads: Arc::new(AtomicU32::new(0)),
            recorded: tx,
        };
        let deliverer =
            Deliverer::new(flaky.clone(), Arc::new(notifiers), Arc::new(Metrics::new())).unwrap();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(deliverer.run(stopped));
        Setup {
            store,
            flaky,
            analysis: analysis.id,
            recorded,
            received,
            stop,
            task,
        }
    }

    #[tokio::test]
    async fn a_busy_store_while_rendering_keeps_the_notification_pending() {
        let mut s = setup(2, 0).await;
        // The first attempt that gets recorded is the one that went out: the two reads the
        // store failed gave nothing up and counted no attempt.
        let (attempt, stored) = s.recorded.recv().await.unwrap();
        assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
        assert!(stored);
        assert_eq!(s.flaky.reads.load(Ordering::SeqCst), 3);
        assert!(s.received.recv().await.is_some());
        let rows = s.store.notifications(&s.analysis).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, DeliveryState::Delivered, "{rows:?}");
        assert_eq!(rows[0].attempts, 1);
        let _ = s.stop.send(true);
        s.task.await.unwrap();
        assert!(s.received.try_recv().is_err(), "sent once");
    }

    #[tokio::test]
    async fn a_busy_store_while_recording_sends_again_later() {
        let mut s = setup(0, 1).await;
        let (first, stored) = s.recorded.recv().await.unwrap();
        assert_eq!(first.outcome, Outcome::Delivered);
        assert!(!stored);
        // Not recorded, so still pending: sent again (at least once), then recorded.
        let (second, stored) = s.recorded.recv().await.unwrap();
        assert_eq!(second.outcome, Outcome::Delivered);
        assert!(stored);
        for _ in 0..2 {
            assert!(s.received.recv().await.is_some());
        }
        let rows = s.store.notifications(&s.analysis).await.unwrap();
        assert_eq!(rows[0].state, DeliveryState::Delivered, "{rows:?}");
        assert_eq!(rows[0].attempts, 1);
        let _ = s.stop.send(true);
        s.task.await.unwrap();
    }

    #[tokio::test]
    async fn store_trouble_is_transient_and_a_bad_row_permanent() {
        let dir = tempfile::tempdir().unwrap();
        let busy = sqlite_busy(dir.path()).await;
        assert!(
            busy.as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|c| c == "5"),
            "SQLITE_BUSY is 5: {busy:?}"
        );
        assert!(NotifyError::reading_analysis(StoreError::Database(busy)).is_transient());
        assert!(
            NotifyError::reading_analysis(StoreError::Database(sqlx::Error::PoolTimedOut))
                .is_transient()
        );
        let corrupt = StoreError::Corrupt {
            what: "analysis a judgment".into(),
            reason: "expected value".into(),
        };
        assert!(!NotifyError::reading_analysis(corrupt).is_transient());
        let undecodable = StoreError::Database(sqlx::Error::ColumnNotFound("status".into()));
        assert!(!NotifyError::reading_analysis(undecodable).is_transient());
        for permanent in [
            NotifyError::AnalysisGone("a".into()),
            NotifyError::NotifierGone("hook".into()),
            NotifyError::Render("bad header".into()),
        ] {
            assert!(!permanent.is_transient(), "{permanent}");
        }
    }

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
