//! The real `augury serve` binary, for end-to-end tests and the soak: started on ports of
//! 127.0.0.1 chosen at run time, its addresses read from its own JSON log.
//!
//! A [`Launch`] says how to start it (database, config file, flags, environment, binary);
//! starting the same `Launch` again after [`Daemon::kill9`] is a restart on the same
//! database. Every line the daemon writes to stderr is kept ([`Daemon::log_text`],
//! [`Daemon::log_json`]). Start-up fails (with the log so far) when the daemon writes a
//! line that is not JSON or an ERROR line before "augury serving", or exits first.
//! Dropping a [`Daemon`] kills it (SIGKILL).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

/// Longest the daemon may take to log that it is serving.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest the daemon may take to exit after SIGTERM in [`Daemon::terminate`].
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings the daemon reads from the environment, cleared so that the caller's
/// environment cannot change what a test runs; [`Launch::env`] sets them on purpose.
const CLEARED_ENV: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "AUGURY_API_TOKENS",
    "AUGURY_API_READ_TOKENS",
    "AUGURY_AUTH",
    "AUGURY_CONFIG",
    "AUGURY_MODELS",
    "AUGURY_QUERIES",
    "AUGURY_PROMETHEUS_URL",
    "AUGURY_LOG_FORMAT",
    "RUST_LOG",
];

/// The `augury` binary: the one Cargo built for this test, else the one next to the
/// running program's folder (`target/<profile>/{deps,examples}/x` -> `target/<profile>/augury`).
pub fn bin() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_augury") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("augury")))
        .unwrap_or_else(|| PathBuf::from("augury"))
}

/// How to start the daemon; `start` it as often as needed (a restart is another start).
#[derive(Clone, Debug)]
pub struct Launch {
    binary: PathBuf,
    /// Database URL.
    database: String,
    config: Option<PathBuf>,
    flags: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// The daemon's config file (`--config`).
    pub fn config(mut self, path: impl Into<PathBuf>) -> Launch {
        self.config = Some(path.into());
        self
    }

    /// More command-line flags for `augury serve`.
    pub fn flags(mut self, flags: &[&str]) -> Launch {
        self.flags.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    /// One environment variable (`AUGURY_LOG` is `info` unless set here).
    pub fn env(mut self, name: &str, value: &str) -> Launch {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Several environment variables.
    pub fn envs(self, vars: &[(&str, &str)]) -> Launch {
        vars.iter().fold(self, |l, (k, v)| l.env(k, v))
    }

    /// Another `augury` binary than [`bin`].
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Launch {
        self.binary = path.into();
        self
    }

    /// Starts the daemon and waits until it serves; panics (with its log) if it does not.
    pub fn start(&self) -> Daemon {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the daemon and waits until it serves, or says why it did not.
    pub fn try_start(&self) -> Result<Daemon, String> {
        let mut command = Command::new(&self.binary);
        command
            .args(["serve", "--log-format", "json"])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--otlp-grpc-listen", "127.0.0.1:0"])
            .args(["--otlp-http-listen", "127.0.0.1:0"])
            .arg("--database")
            .arg(&self.database);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command.args(&self.flags);
        for name in CLEARED_ENV {
            command.env_remove(name);
        }
        command
            .env("AUGURY_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let (done_tx, log_done) = mpsc::channel();
        let sink = Arc::clone(&log);
        // Reads stderr to its end so the daemon never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut started = Some(started_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(tx) = started.take() {
                    match start_line(&line) {
                        Some(outcome) => {
                            let _ = tx.send(outcome);
                        }
                        None => started = Some(tx),
                    }
                }
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
            if let Some(tx) = started.take() {
                let _ = tx.send(Err("the daemon exited before serving".into()));
            }
            let _ = done_tx.send(());
        });
        let mut daemon = Daemon {
            child: Some(child),
            api: String::new(),
            otlp_grpc: String::new(),
            otlp_http: String::new(),
            kayenta: None,
            log,
            log_done,
        };
        let serving = match started_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(serving)) => serving,
            Ok(Err(why)) => return Err(daemon.failed_start(&why)),
            Err(_) => {
                let why = format!("no \"augury serving\" within {START_TIMEOUT:?}");
                return Err(daemon.failed_start(&why));
            }
        };
        let field = |name: &str| serving["fields"][name].as_str().map(str::to_string);
        let (Some(api), Some(grpc), Some(http)) =
            (field("api"), field("otlp_grpc"), field("otlp_http"))
        else {
            return Err(daemon.failed_start(&format!("start line without addresses: {serving}")));
        };
        daemon.api = format!("http://{api}");
        daemon.otlp_grpc = format!("http://{grpc}");
        daemon.otlp_http = format!("http://{http}/v1/traces");
        daemon.kayenta = field("kayenta")
            .filter(|k| k != "off")
            .map(|k| format!("http://{k}"));
        Ok(daemon)
    }
}

/// What a line logged before the daemon serves says about its start: `Ok` with the
/// "augury serving" line, `Err` for a failure, `None` for nothing yet.
fn start_line(line: &str) -> Option<Result<Value, String>> {
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        return Some(Err(format!("not a JSON log line: {line}")));
    };
    if value["fields"]["message"] == "augury serving" {
        Some(Ok(value))
    } else if value["level"] == "ERROR" {
        Some(Err(format!("an error before serving: {line}")))
    } else {
        None
    }
}

/// A running `augury serve`.
pub struct Daemon {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub api: String,
    /// OTLP/gRPC endpoint, `http://127.0.0.1:PORT`.
    pub otlp_grpc: String,
    /// OTLP/HTTP traces URL, `http://127.0.0.1:PORT/v1/traces`.
    pub otlp_http: String,
    /// Kayenta's REST API, `http://127.0.0.1:PORT`, when served (`--kayenta-listen`).
    pub kayenta: Option<String>,
    /// Every line the daemon wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
    log_done: mpsc::Receiver<()>,
}

impl Daemon {
    /// A daemon on the SQLite database at `database` (a file path).
    pub fn on(database: &Path) -> Launch {
        Daemon::on_url(&format!("sqlite://{}", database.display()))
    }

    /// A daemon on the database at `url` (`sqlite://…` or `postgres://…`).
    pub fn on_url(url: &str) -> Launch {
        Launch {
            binary: bin(),
            database: url.to_string(),
            config: None,
            flags: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A daemon on `dir/a.db` with the config `dir/augury.yaml` (see [`workdir`]).
    pub fn in_dir(dir: &Path) -> Launch {
        Daemon::on(&dir.join("a.db")).config(dir.join("augury.yaml"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: no shutdown, no flush, as a crash leaves it.
    pub fn kill9(mut self) {
        self.kill();
    }

    /// SIGTERM, then the exit status; the log is complete when this returns. Panics if
    /// the daemon has not exited within a minute (it is then killed).
    pub fn terminate(mut self) -> ExitStatus {
        self.terminate_within(STOP_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// SIGTERM, then the exit status if the daemon exits within `timeout`; else it is
    /// killed and the answer says so. The log stays readable, and is complete.
    pub fn terminate_within(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err("the daemon was already stopped".into());
        };
        let pid = child.id().to_string();
        let signal = |name: &str| Command::new("kill").args([name, &pid]).status();
        if !signal("-TERM").is_ok_and(|s| s.success()) {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let (exited_tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = exited_tx.send(child.wait());
        });
        let outcome = match exited.recv_timeout(timeout) {
            Ok(status) => status.map_err(|e| format!("waiting for the daemon: {e}")),
            Err(_) => {
                let _ = signal("-KILL");
                let _ = exited.recv();
                Err(format!(
                    "the daemon did not stop within {timeout:?} of SIGTERM; killed"
                ))
            }
        };
        let _ = self.log_done.recv_timeout(Duration::from_secs(30));
        outcome
    }

    /// Every line logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every line logged so far, as one text.
    pub fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// The JSON lines logged so far.
    pub fn log_json(&self) -> Vec<Value> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// POSTs an analysis; panics unless it was created. Its id.
    pub async fn create(&self, body: serde_json::Value) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/analyses", self.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
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

    /// The JSON body of `GET path`.
    pub async fn get(&self, path: &str) -> Value {
        let text = self.text(path).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    pub async fn detail(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/analyses/{id}")).await
    }

    pub async fn metrics(&self) -> String {
        self.text("/metrics").await
    }

    /// Polls the analysis until it is decided (a bounded number of times, for analyses
    /// of a window in the past, decided as soon as their queries answer); its detail.
    pub async fn decided(&self, id: &str) -> Value {
        for _ in 0..600 {
            let detail = self.detail(id).await;
            if detail["status"] != "running" {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("analysis {id} was not decided: {}", self.detail(id).await);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the daemon that failed to start; the reason, with its log.
    fn failed_start(&mut self, why: &str) -> String {
        self.kill();
        let _ = self.log_done.recv_timeout(Duration::from_secs(5));
        format!(
            "the daemon did not start: {why}\nits log:\n{}",
            self.log_text()
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temp dir holding `augury.yaml` with `config`, for [`Daemon::in_dir`].
pub fn workdir(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("augury.yaml"), config).unwrap();
    (dir, path)
}
