//! `augury wait`: poll an analysis's verdict on a daemon, show progress, exit with it.
//!
//! Progress goes to stderr: a progress bar on a terminal, one plain line per change (and
//! a heartbeat) otherwise, as CI logs want. The verdict goes to stdout, as text or, with
//! `--format json`, the verdict JSON. Exit: 0 pass, 1 fail, 3 inconclusive, cancelled or
//! timed out, 2 bad usage or a request the daemon refused, 4 daemon unreachable.
//!
//! Also home of the small HTTP client `augury analyze` shares.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::analysis::VerdictView;
use crate::api::ErrorBody;
use crate::judge::{Classification, Verdict, fmt_num, fmt_p};

use super::{EXIT_OPERATIONAL, EXIT_USAGE, Format};

/// Exit code when the wait timed out: the verdict is not known, like inconclusive.
pub const EXIT_TIMED_OUT: i32 = 3;

/// Where the daemon is.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the Augury daemon, e.g. http://augury:8080.
    #[arg(long, env = "AUGURY_SERVER", value_name = "URL")]
    pub server: String,
    /// Bearer token for daemons with auth on.
    #[arg(
        long,
        env = "AUGURY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// How to wait.
#[derive(clap::Args, Debug, Clone)]
pub struct WaitOptions {
    /// Give up (exit 3) after this long without a verdict.
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Time between two polls of the verdict.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub poll: Duration,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Analysis id (as `augury analyze` prints it).
    pub id: String,
    #[command(flatten)]
    pub wait: WaitOptions,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like 30s, 5m or 1h ({e})"))
}

pub(super) fn run(args: WaitArgs) -> i32 {
    let format = args.wait.format;
    let client = match Client::new(&args.server) {
        Ok(c) => c,
        Err(e) => return e.report(format),
    };
    block_on(wait_for(&client, &args.id, &args.wait)).unwrap_or_else(|e| e.report(format))
}

/// Runs a client future on a runtime of its own (the commands are otherwise synchronous).
pub(super) fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError {
            code: EXIT_OPERATIONAL,
            kind: "runtime",
            message: format!("cannot start the async runtime: {e}"),
        })?
        .block_on(future)
}

/// A failed exchange with the daemon, and the exit code it means.
#[derive(Debug)]
pub(super) struct ClientError {
    pub code: i32,
    pub kind: &'static str,
    pub message: String,
}

impl ClientError {
    fn usage(message: impl Into<String>) -> ClientError {
        ClientError {
            code: EXIT_USAGE,
            kind: "usage",
            message: message.into(),
        }
    }

    pub fn report(self, format: Format) -> i32 {
        super::fail(format, self.kind, &self.message, self.code)
    }
}

/// A JSON client of the daemon's API.
pub(super) struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &ServerArgs) -> Result<Client, ClientError> {
        let mut base = Url::parse(server.server.trim()).map_err(|e| {
            ClientError::usage(format!(
                "--server `{}` is not a URL like http://augury:8080 ({e})",
                server.server
            ))
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::usage(format!(
                "--server `{}` is not an http(s) URL",
                server.server
            )));
        }
        // Paths are appended below the server URL, so it may carry a prefix (/augury).
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("augury/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError {
                code: EXIT_OPERATIONAL,
                kind: "client",
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(Client {
            http,
            base,
            token: server.token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// `segments` are path segments below the server URL, escaped here.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        let url = self.url(segments);
        self.send(self.http.get(url.clone()), &url)
            .await
            .map(|(_, v)| v)
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> Result<(StatusCode, T), ClientError> {
        let url = self.url(segments);
        self.send(self.http.post(url.clone()).json(body), &url)
            .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<(StatusCode, T), ClientError> {
        let request = match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let response = request.send().await.map_err(|e| ClientError {
            code: EXIT_OPERATIONAL,
            kind: "unreachable",
            message: format!("cannot reach the Augury daemon at {url}: {}", chain(&e)),
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ClientError {
            code: EXIT_OPERATIONAL,
            kind: "unreachable",
            message: format!("reading the answer from {url}: {}", chain(&e)),
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map(|v| (status, v))
                .map_err(|e| ClientError {
                    code: EXIT_OPERATIONAL,
                    kind: "protocol",
                    message: format!("{url} answered {status} with unexpected JSON: {e}"),
                });
        }
        let detail = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => match b.error.field {
                Some(f) => format!("{} (field `{f}`)", b.error.message),
                None => b.error.message,
            },
            Err(_) => String::from_utf8_lossy(&body).chars().take(300).collect(),
        };
        // The daemon refusing the request is the caller's to fix (2); the daemon failing
        // is operational (4).
        let code = if status.is_client_error() {
            EXIT_USAGE
        } else {
            EXIT_OPERATIONAL
        };
        Err(ClientError {
            code,
            kind: if status.is_client_error() {
                "refused"
            } else {
                "server"
            },
            message: format!("the daemon answered {status}: {detail}"),
        })
    }
}

/// An error and its causes on one line (reqwest's own message says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Consecutive failed polls tolerated once the daemon has answered (a restart).
const POLL_FAILURES_TOLERATED: u32 = 3;

/// Polls until the analysis is decided or the timeout passes; prints; returns the exit code.
pub(super) async fn wait_for(
    client: &Client,
    id: &str,
    options: &WaitOptions,
) -> Result<i32, ClientError> {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let path = ["api", "v1", "analyses", id, "verdict"];
    let mut view: VerdictView = client.get(&path).await?;
    let mut progress = Progress::new(&view);
    let mut failures = 0;
    while !view.status.is_final() {
        let now = Instant::now();
        if now >= deadline {
            progress.finish();
            return Ok(timed_out(&view, options));
        }
        tokio::time::sleep(options.poll.min(deadline - now)).await;
        match client.get::<VerdictView>(&path).await {
            Ok(v) => {
                failures = 0;
                view = v;
                progress.update(&view);
            }
            Err(e) if e.code == EXIT_OPERATIONAL && failures < POLL_FAILURES_TOLERATED => {
                failures += 1;
                progress.note(&format!(
                    "poll failed ({failures} of {POLL_FAILURES_TOLERATED} tolerated): {}",
                    e.message
                ));
            }
            Err(e) => {
                progress.finish();
                return Err(e);
            }
        }
    }
    progress.finish();
    print_verdict(&view, options.format);
    Ok(view.status.exit_code())
}

fn timed_out(view: &VerdictView, options: &WaitOptions) -> i32 {
    let message = format!(
        "timed out after {} waiting for analysis {} ({}/{} intervals judged); it goes on running on the daemon",
        humantime::format_duration(options.timeout),
        view.id,
        view.progress.intervals,
        view.progress.planned
    );
    match options.format {
        Format::Json => print_json(view),
        Format::Text => eprintln!("augury: {message}"),
    }
    EXIT_TIMED_OUT
}

fn print_json(view: &VerdictView) {
    match serde_json::to_string_pretty(view) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("augury: cannot print the verdict: {e}"),
    }
}

pub(super) fn print_verdict(view: &VerdictView, format: Format) {
    match format {
        Format::Json => print_json(view),
        Format::Text => print!("{}", render(view)),
    }
}

/// The verdict for people: one line, the reasons, one line per metric.
pub(super) fn render(v: &VerdictView) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let score = v
        .score
        .map(|s| format!("  score {}/100", fmt_num(s)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "verdict: {}{score}  (analysis {}, key {}; {}/{} intervals in {})",
        v.status.as_str().to_uppercase(),
        v.id,
        v.key,
        v.progress.intervals,
        v.progress.planned,
        seconds(v.progress.elapsed_seconds)
    );
    for r in &v.reasons {
        let _ = writeln!(out, "  - {r}");
    }
    if !v.metrics.is_empty() {
        let width = v.metrics.iter().map(|m| m.name.len()).max().unwrap_or(0);
        let _ = writeln!(out, "metrics:");
        for m in &v.metrics {
            let class = match m.classification {
                Classification::Pass => "pass",
                Classification::High => "HIGH",
                Classification::Low => "LOW",
                Classification::Nodata => "nodata",
                Classification::Error => "ERROR",
            };
            let p = m
                .p_value
                .map(|p| format!("  p {}", fmt_p(p)))
                .unwrap_or_default();
            let effect = match (m.measure, m.effect) {
                (Some(measure), Some(e)) => format!("  {} {}", measure.name(), fmt_num(e)),
                _ => String::new(),
            };
            let critical = if m.critical { "  (critical)" } else { "" };
            let _ = writeln!(out, "  {:<width$}  {class:<6}{p}{effect}{critical}", m.name);
        }
    }
    out
}

fn seconds(s: f64) -> String {
    humantime::format_duration(Duration::from_secs(s.max(0.0).round() as u64)).to_string()
}

fn one_line(v: &VerdictView) -> String {
    let score = match (v.score, v.verdict) {
        (Some(s), Some(verdict)) => format!(", score {} ({})", fmt_num(s), verdict_name(verdict)),
        _ => String::new(),
    };
    format!(
        "{}: {}/{} intervals{score}",
        v.status.as_str(),
        v.progress.intervals,
        v.progress.planned
    )
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Marginal => "marginal",
        Verdict::Fail => "fail",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// How often a quiet wait still prints a line, so CI systems see the job alive.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// Live progress on stderr.
enum Progress {
    Bar(ProgressBar),
    Lines {
        last: String,
        printed: Instant,
        id: String,
    },
}

impl Progress {
    fn new(v: &VerdictView) -> Progress {
        let progress = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(u64::from(v.progress.planned));
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} analysis {prefix}  [{bar:30}] {pos}/{len} intervals  {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(short(&v.id).to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            Progress::Lines {
                last: String::new(),
                printed: Instant::now(),
                id: v.id.clone(),
            }
        };
        let mut progress = progress;
        progress.update(v);
        progress
    }

    fn update(&mut self, v: &VerdictView) {
        match self {
            Progress::Bar(bar) => {
                bar.set_length(u64::from(v.progress.planned));
                bar.set_position(u64::from(v.progress.intervals));
                let score = match (v.score, v.verdict) {
                    (Some(s), Some(verdict)) => {
                        format!("score {} ({})", fmt_num(s), verdict_name(verdict))
                    }
                    _ => "no judgment yet".to_string(),
                };
                bar.set_message(format!(
                    "{score}  elapsed {}",
                    seconds(v.progress.elapsed_seconds)
                ));
            }
            Progress::Lines { last, printed, id } => {
                let line = one_line(v);
                if line != *last || printed.elapsed() >= HEARTBEAT {
                    eprintln!(
                        "augury: [{}] analysis {id} {line}",
                        seconds(v.progress.elapsed_seconds)
                    );
                    *last = line;
                    *printed = Instant::now();
                }
            }
        }
    }

    fn note(&mut self, message: &str) {
        match self {
            Progress::Bar(bar) => bar.println(format!("augury: {message}")),
            Progress::Lines { .. } => eprintln!("augury: {message}"),
        }
    }

    fn finish(&mut self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(12)..).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_keep_their_prefix_and_escape_ids() {
        let args = ServerArgs {
            server: "http://augury.example:8080/prefix".into(),
            token: None,
        };
        let c = Client::new(&args).unwrap();
        assert_eq!(
            c.url(&["api", "v1", "analyses", "a/b c", "verdict"])
                .as_str(),
            "http://augury.example:8080/prefix/api/v1/analyses/a%2Fb%20c/verdict"
        );
        let bad = ServerArgs {
            server: "augury:8080".into(),
            token: None,
        };
        assert_eq!(Client::new(&bad).err().map(|e| e.code), Some(EXIT_USAGE));
    }
}
