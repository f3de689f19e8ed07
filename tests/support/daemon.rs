//! The real `augury serve` binary for end-to-end tests: started on free ports of
//! 127.0.0.1 with a database in a temp dir, its addresses read from its own JSON log.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_augury");

/// A running daemon process.
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub api: String,
    pub otlp_grpc: String,
    /// `http://127.0.0.1:PORT/v1/traces`
    pub otlp_http: String,
    /// Every log line after the start line (JSON).
    pub log: Arc<Mutex<Vec<Value>>>,
    log_done: mpsc::Receiver<()>,
}

impl Daemon {
    /// Starts `augury serve` on `database` (a path), with `extra` flags and `env`.
    pub fn start(database: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--log-format", "json"])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--otlp-grpc-listen", "127.0.0.1:0"])
            .args(["--otlp-http-listen", "127.0.0.1:0"])
            .arg("--database")
            .arg(format!("sqlite://{}", database.display()))
            .args(extra)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("AUGURY_API_TOKENS")
            .env("AUGURY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("augury starts");
        let stderr = child.stderr.take().unwrap();
        let (started_tx, started_rx) = mpsc::channel::<Result<Value, String>>();
        let (done_tx, log_done) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut started = Some(started_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    if let Some(tx) = started.take() {
                        let _ = tx.send(Err(line));
                    }
                    continue;
                };
                if value["fields"]["message"] == "augury serving" {
                    if let Some(tx) = started.take() {
                        let _ = tx.send(Ok(value));
                    }
                    continue;
                }
                if value["level"] == "ERROR"
                    && let Some(tx) = started.take()
                {
                    let _ = tx.send(Err(line));
                    continue;
                }
                sink.lock().unwrap().push(value);
            }
            if let Some(tx) = started.take() {
                let _ = tx.send(Err("the daemon exited before serving".into()));
            }
            let _ = done_tx.send(());
        });
        let line = started_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the daemon logs its start within 120 s")
            .unwrap_or_else(|e| panic!("the daemon did not start: {e}"));
        let field = |name: &str| line["fields"][name].as_str().unwrap().to_string();
        Daemon {
            child,
            api: format!("http://{}", field("api")),
            otlp_grpc: format!("http://{}", field("otlp_grpc")),
            otlp_http: format!("http://{}/v1/traces", field("otlp_http")),
            log,
            log_done,
        }
    }

    /// `kill -9`: no shutdown, no flush.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status; the log is complete when this returns.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let _ = self.log_done.recv_timeout(Duration::from_secs(30));
        exit
    }

    /// Log messages so far.
    pub fn messages(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|v| v["fields"]["message"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
