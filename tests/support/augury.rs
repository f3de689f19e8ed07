//! Test harness: the real `augury serve` binary on 127.0.0.1 ports chosen at run time,
//! its JSON logs read for the addresses it bound, and OTLP spans fed to it over HTTP.
//!
//! The daemon runs in a temp dir with `a.db` and `augury.yaml`; dropping the handle
//! kills it (SIGKILL), and `kill` does so on purpose, leaving the database as a crash
//! leaves it. `start` again on the same dir is a restart.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use augury::ingest::otlp::synthetic::{BatchSpec, batch};
use prost::Message as _;

pub struct Augury {
    pub api: String,
    pub otlp_http: String,
    child: Child,
    /// Every line the daemon logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Augury {
    /// Starts `augury serve` on `dir` (database `a.db`, config `augury.yaml`) with `env`.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Augury {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_augury"));
        cmd.arg("serve")
            .args(["--log-format", "json"])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--otlp-grpc-listen", "127.0.0.1:0"])
            .args(["--otlp-http-listen", "127.0.0.1:0"])
            .arg("--database")
            .arg(format!("sqlite://{}", dir.join("a.db").display()))
            .arg("--config")
            .arg(dir.join("augury.yaml"))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the augury binary runs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        // Reads stderr to its end so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    let f = &v["fields"];
                    if f["message"] == "augury serving"
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send((
                            f["api"].as_str().unwrap_or_default().to_string(),
                            f["otlp_http"].as_str().unwrap_or_default().to_string(),
                        ));
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
        let (api, otlp_http) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addrs) => addrs,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "augury serve did not report its addresses; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Augury {
            api: format!("http://{api}"),
            otlp_http: format!("http://{otlp_http}"),
            child,
            log,
        }
    }

    /// SIGKILL: no shutdown, no flush, as a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// POSTs an analysis; panics unless it was created.
    pub async fn create(&self, body: serde_json::Value) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/analyses", self.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// The body of `GET path`.
    pub async fn text(&self, path: &str) -> String {
        reqwest::Client::new()
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let text = self.text(path).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    pub async fn detail(&self, id: &str) -> serde_json::Value {
        self.get(&format!("/api/v1/analyses/{id}")).await
    }

    pub async fn metrics(&self) -> String {
        self.text("/metrics").await
    }
}

impl Drop for Augury {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir with `augury.yaml` holding `config`.
pub fn workdir(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("augury.yaml"), config).unwrap();
    (dir, path)
}

/// Feeds spans for `baseline` and `canary` versions of `service` every 200 ms until the
/// returned guard is dropped (the test waits on events, not on this pace).
pub fn feed(augury: &Augury, service: &str, sides: &[(&str, f64)]) -> tokio::task::JoinHandle<()> {
    let (otlp, service) = (augury.otlp_http.clone(), service.to_string());
    let sides: Vec<(String, f64)> = sides.iter().map(|(v, e)| (v.to_string(), *e)).collect();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        for seed in 0u64.. {
            tick.tick().await;
            for (version, error_rate) in &sides {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                let spec = BatchSpec {
                    error_rate: *error_rate,
                    start_unix_nano: now,
                    spans: 256,
                    ..BatchSpec::standard(&service, version, seed)
                };
                let _ = client
                    .post(format!("{otlp}/v1/traces"))
                    .header("content-type", "application/x-protobuf")
                    .body(batch(&spec).encode_to_vec())
                    .send()
                    .await;
            }
        }
    })
}
