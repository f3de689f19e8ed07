//! Listeners that a flood of connections cannot take down: a cap on open connections per
//! listener, an idle timeout on every connection, and (HTTP/1) a header-read timeout.
//!
//! Every listener of the daemon (the HTTP API, OTLP/HTTP, OTLP/gRPC) accepts through a
//! [`Listener`]. Past [`ListenerLimits::max_connections`] a new connection is accepted
//! and closed at once (counted as refused), so a flood on one port holds at most its own
//! cap of file descriptors and never those the other listeners need. A connection on
//! which nothing is read or written for [`ListenerLimits::idle_timeout`] is closed (an
//! end of stream as its server sees it), whatever its protocol or state: before its first
//! byte, between keep-alive requests, or an HTTP/2 connection with no stream. A request
//! head that does not arrive within [`ListenerLimits::header_read_timeout`] closes an
//! HTTP/1 connection (hyper's own timer), however slowly its bytes trickle in; the body
//! is bounded by each server's request timeout.
//!
//! [`serve_http`] serves an axum router on a listener with hyper-util's connection
//! builder (HTTP/1 and HTTP/2) and its graceful shutdown: once told to stop it accepts no
//! more, and waits for the requests in progress.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Bounds on one listener's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections open at once; past it a new one is accepted and closed. Default 1024.
    pub max_connections: usize,
    /// Longest an HTTP/1 request head may take to arrive, from the first wait for it
    /// (so also how long a keep-alive connection may wait for its next request).
    /// Default 10 s.
    pub header_read_timeout: Duration,
    /// Longest a connection may go with nothing read or written. Default 60 s.
    pub idle_timeout: Duration,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ListenerLimits {
    /// Refuses limits a listener cannot run with, naming the field (`prefix` + name).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err(format!(
                "{prefix}max_connections is 0: every connection would be refused"
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(format!(
                "{prefix}header_read_timeout is 0: every request would time out"
            ));
        }
        if self.idle_timeout.is_zero() {
            return Err(format!(
                "{prefix}idle_timeout is 0: every connection would be closed at once"
            ));
        }
        Ok(())
    }
}

/// One listener's connection counts, readable while it serves.
#[derive(Clone, Debug)]
pub struct ConnectionStats {
    slots: Arc<Semaphore>,
    max: usize,
    refused: Arc<AtomicU64>,
}

impl ConnectionStats {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }

    /// Connections refused since start because the listener was at its cap.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// A bound TCP listener with its connection cap and timeouts.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    limits: ListenerLimits,
    stats: ConnectionStats,
}

impl Listener {
    pub fn new(inner: TcpListener, limits: ListenerLimits) -> Listener {
        let max = limits.max_connections.max(1);
        Listener {
            inner,
            limits,
            stats: ConnectionStats {
                slots: Arc::new(Semaphore::new(max)),
                max,
                refused: Arc::default(),
            },
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    pub fn limits(&self) -> ListenerLimits {
        self.limits
    }

    /// A handle on the connection counts.
    pub fn stats(&self) -> ConnectionStats {
        self.stats.clone()
    }

    /// The next connection within the cap. Connections past the cap are accepted and
    /// closed here (counted); errors that concern one connection only are skipped, and
    /// errors of the listener itself (no file descriptor left) wait a little and retry,
    /// so the accept loop never spins or stops.
    pub async fn accept(&self) -> Connection {
        loop {
            let stream = match self.inner.accept().await {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&self.stats.slots).try_acquire_owned() else {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            return Connection::new(stream, slot, self.limits.idle_timeout);
        }
    }
}

/// Errors of one connection (it went away before it was accepted), not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection: holds its slot under the listener's cap until dropped, and
/// reads as ended once nothing was read or written on it for the idle timeout.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    /// When something was last read or written.
    last: Instant,
    /// Fires at `last + idle` or later; re-armed lazily when it fires early.
    timer: Pin<Box<Sleep>>,
    idled_out: bool,
}

impl Connection {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, idle: Duration) -> Connection {
        let now = Instant::now();
        Connection {
            stream,
            _slot: slot,
            idle,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            idled_out: false,
        }
    }

    /// The underlying stream (for its addresses).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn active(&mut self) {
        self.last = Instant::now();
    }

    /// A write's outcome, either way it was written: progress counts as activity, and
    /// a write still pending past the idle timeout fails (a peer that never reads).
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.active();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "nothing could be written within the idle timeout",
            ))),
            other => other,
        }
    }

    /// Whether the connection has been idle for its whole timeout; arms the timer to
    /// wake this task when it will have been, otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.idled_out {
            return true;
        }
        loop {
            let due = self.last + self.idle;
            if self.timer.deadline() < due {
                self.timer.as_mut().reset(due);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= self.last + self.idle {
                self.idled_out = true;
                return true;
            }
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.idled_out {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.active();
                }
                Poll::Ready(r)
            }
            // Idle too long: the server sees the end of the stream and closes.
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.stream).poll_write(cx, data);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // hyper writes HTTP/1 answers through here when the stream supports it: a reader
        // that never reads must meet the idle timeout here too.
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` completes; then accepts no more, lets
/// every connection finish the requests it has in progress, and returns.
///
/// HTTP/1 and HTTP/2 (prior knowledge); the header-read timeout runs on hyper's timer.
pub async fn serve_http(
    listener: Listener,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(listener.limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            connection = listener.accept() => connection,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(connection), service)
            .into_owned();
        let served = graceful.watch(served);
        tokio::spawn(async move {
            // A connection's own failure (reset, timeout, protocol error) ends only it.
            let _ = served.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
