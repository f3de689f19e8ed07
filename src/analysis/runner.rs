//! The scheduler: judges every running analysis each interval and moves it to its verdict.
//! (being written)

use tokio::sync::mpsc;

/// What the rest of the daemon tells the runner.
#[derive(Debug)]
pub enum Command {
    /// A new (or resumed) analysis to schedule, by id.
    Schedule(String),
    /// A cancelled analysis: stop judging it and release its windows.
    Cancel(String),
}

/// A cheap, cloneable handle to the runner.
#[derive(Clone, Debug)]
pub struct RunnerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl RunnerHandle {
    pub fn new() -> (RunnerHandle, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (RunnerHandle { tx }, rx)
    }

    pub fn schedule(&self, id: &str) {
        let _ = self.tx.send(Command::Schedule(id.to_string()));
    }

    pub fn cancel(&self, id: &str) {
        let _ = self.tx.send(Command::Cancel(id.to_string()));
    }
}
