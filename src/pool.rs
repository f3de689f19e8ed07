//! The bounded pool CPU-heavy work runs on: judging (the analysis runner's intervals and
//! `POST /api/v1/judge`). Judging a large model takes milliseconds to seconds of CPU; on
//! the async worker threads it would hold up every other request (`/healthz` included),
//! so it runs on tokio's blocking threads, at most [`JudgePool::size`] jobs at once.
//!
//! Two ways in: [`JudgePool::run`] waits for a free slot (the runner, whose work is
//! already bounded by the analyses it schedules) and [`JudgePool::try_run`] refuses at
//! once when every slot is taken (a request, answered 503 with `Retry-After` rather than
//! queued without bound). A job is handed a stop flag; the pool raises it when the caller
//! stops waiting (a request that timed out drops its future), and the job checks it
//! between metrics, so abandoned work ends instead of burning CPU nobody reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Jobs the pool runs at once by default: one per core, since a job keeps a core busy.
pub fn default_size() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// What the pool reports about itself (shared with the daemon's `/metrics`).
#[derive(Clone, Debug, Default)]
pub struct PoolGauges {
    /// Jobs running now.
    pub in_flight: Gauge,
    /// Jobs whose caller stopped waiting before they finished.
    pub abandoned: Counter,
    /// Jobs refused because every slot was taken.
    pub refused: Counter,
}

/// A job was refused: every slot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("all {size} judging slots are busy")]
pub struct Busy {
    pub size: usize,
}

/// What running a job can come to besides its result.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The job panicked (or the runtime is shutting down).
    #[error("judging failed: {0}")]
    Failed(String),
}

/// The bounded pool.
#[derive(Debug)]
pub struct JudgePool {
    slots: Arc<Semaphore>,
    size: usize,
    gauges: PoolGauges,
}

impl JudgePool {
    /// A pool of `size` slots (at least one).
    pub fn new(size: usize, gauges: PoolGauges) -> JudgePool {
        let size = size.max(1);
        JudgePool {
            slots: Arc::new(Semaphore::new(size)),
            size,
            gauges,
        }
    }

    /// How many jobs run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `job` once a slot is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&AtomicBool) -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|e| PoolError::Failed(e.to_string()))?;
        self.start(permit, job).await
    }

    /// Runs `job` if a slot is free now; refuses with [`Busy`] otherwise.
    pub async fn try_run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&AtomicBool) -> T + Send + 'static,
    {
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.gauges.refused.inc();
                return Err(Busy { size: self.size }.into());
            }
        };
        self.start(permit, job).await
    }

    async fn start<T, F>(&self, permit: OwnedSemaphorePermit, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce(&AtomicBool) -> T + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        // Raises the stop flag if this future is dropped before the job is done.
        let mut waiting = Waiting {
            stop: Arc::clone(&stop),
            abandoned: self.gauges.abandoned.clone(),
            done: false,
        };
        let in_flight = self.gauges.in_flight.clone();
        in_flight.inc();
        let task = tokio::task::spawn_blocking(move || {
            // The slot and the gauge are given back when the job ends, not when its
            // caller stops waiting: the slot bounds the CPU actually in use.
            let _permit = permit;
            let _running = Running(in_flight);
            job(&stop)
        });
        let out = task.await.map_err(|e| PoolError::Failed(e.to_string()));
        waiting.done = true;
        out
    }
}

struct Waiting {
    stop: Arc<AtomicBool>,
    abandoned: Counter,
    done: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.done {
            self.stop.store(true, Ordering::Relaxed);
            self.abandoned.inc();
        }
    }
}

struct Running(Gauge);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_pool_refuses_and_an_abandoned_job_is_told_to_stop() {
        let gauges = PoolGauges::default();
        let pool = Arc::new(JudgePool::new(1, gauges.clone()));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stopped_tx, stopped_rx) = std::sync::mpsc::channel();
        let waiting = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move |stop| {
                    started_tx.send(()).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::yield_now();
                    }
                    stopped_tx.send(()).unwrap();
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(gauges.in_flight.get(), 1);
        let refused = pool.try_run(|_| ()).await;
        assert!(matches!(refused, Err(PoolError::Busy(Busy { size: 1 }))));
        assert_eq!(gauges.refused.get(), 1);
        // The caller stops waiting: the job sees the flag and ends.
        waiting.abort();
        tokio::task::spawn_blocking(move || stopped_rx.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(gauges.abandoned.get(), 1);
        // Its slot comes back: the next job runs.
        let mut out = None;
        for _ in 0..3000 {
            match pool.try_run(|stop| stop.load(Ordering::Relaxed)).await {
                Ok(v) => {
                    out = Some(v);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        assert_eq!(out, Some(false));
        assert_eq!(gauges.in_flight.get(), 0);
    }
}
