//! `augury demo`: the whole product in one command, with nothing to install.
//!
//! Starts the daemon on a SQLite database in a temporary directory with every listener on
//! a free port of 127.0.0.1, sends it real OTLP over the network (protobuf over HTTP, to
//! its own receiver) for the baseline and the canary of a demo service, starts an
//! analysis through its HTTP API, and follows the verdict the way `augury wait` does.
//! Partway through, the canary regresses as the scenario says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use prost::Message as _;
use serde_json::json;

use super::serve::LogFormat;
use super::wait::{Client, ServerArgs, WaitOptions, wait_for};
use super::{EXIT_OPERATIONAL, EXIT_USAGE, Format};
use crate::daemon::{Daemon, Settings};
use crate::ingest::otlp::synthetic::{BatchSpec, batch};

/// The demo service's name and versions.
const SERVICE: &str = "shop-frontend";
const BASELINE_VERSION: &str = "1.4.1";
const CANARY_VERSION: &str = "1.4.2";
/// Baseline behaviour: median latency and error ratio.
const MEDIAN_MS: f64 = 20.0;
const ERROR_RATE: f64 = 0.005;
/// Batches sent per second per version.
const BATCHES_PER_SECOND: u32 = 5;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The canary behaves like the baseline: the verdict is pass.
    Healthy,
    /// The canary's latency grows by 30% partway (median and tail): fail.
    Latency,
    /// The canary's error ratio grows eightfold partway (0.5% to 4%): fail.
    Errors,
    /// Both at once, the way a bad release usually looks: fail.
    Regression,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::Latency => "latency",
            Scenario::Errors => "errors",
            Scenario::Regression => "regression",
        }
    }

    /// Canary (latency factor, error rate) once the regression has started.
    fn regressed(self) -> (f64, f64) {
        match self {
            Scenario::Healthy => (1.0, ERROR_RATE),
            Scenario::Latency => (1.3, ERROR_RATE),
            Scenario::Errors => (1.0, 8.0 * ERROR_RATE),
            Scenario::Regression => (1.3, 8.0 * ERROR_RATE),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// What the canary does.
    #[arg(long, value_enum, default_value_t = Scenario::Regression)]
    pub scenario: Scenario,
    /// Time runs this many times faster: intervals, lifetime and the start of the
    /// regression all shrink (at 1: 5 s intervals, 60 s lifetime, regression at 20 s).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub speed: f64,
    /// Requests per second each version serves.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub rate: u32,
    /// Keep the daemon serving after the verdict, until Ctrl-C, to browse the URLs.
    #[arg(long)]
    pub keep_running: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The demo's timeline at speed 1.
const INTERVAL: Duration = Duration::from_secs(5);
const LIFETIME: Duration = Duration::from_secs(60);
const REGRESSION_AT: Duration = Duration::from_secs(20);

pub(super) fn run(args: DemoArgs) -> i32 {
    if !(args.speed.is_finite() && (0.1..=5.0).contains(&args.speed)) {
        eprintln!("augury demo: --speed must be between 0.1 and 5 (intervals stay at least 1 s)");
        return EXIT_USAGE;
    }
    if !(1..=100_000).contains(&args.rate) {
        eprintln!("augury demo: --rate must be between 1 and 100000 requests per second");
        return EXIT_USAGE;
    }
    let runtime = match super::daemon_runtime("demo") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(demo(args))
}

fn scaled(d: Duration, speed: f64) -> Duration {
    Duration::from_millis((d.as_millis() as f64 / speed).round().max(1000.0) as u64)
}

async fn demo(args: DemoArgs) -> i32 {
    let logging = super::logging::init_with(LogFormat::Human, "warn");
    let code = match demo_inner(&args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("augury demo: {e}");
            EXIT_OPERATIONAL
        }
    };
    logging.shutdown();
    code
}

async fn demo_inner(args: &DemoArgs) -> Result<i32, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let mut settings = Settings::new();
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.listen = any;
    settings.otlp.grpc_listen = any;
    settings.otlp.http_listen = any;
    settings.database = format!("sqlite://{}", dir.path().join("augury.db").display());
    let daemon = Daemon::start(settings).await.map_err(|e| e.to_string())?;
    let api = format!("http://{}", daemon.api_addr());
    let otlp = format!("http://{}/v1/traces", daemon.otlp_http_addr());

    let interval = scaled(INTERVAL, args.speed);
    let lifetime = scaled(LIFETIME, args.speed);
    let regression_at = scaled(REGRESSION_AT, args.speed);
    let say = |line: String| {
        if args.format == Format::Text {
            eprintln!("{line}");
        }
    };
    say(format!(
        "augury demo: daemon on {api} (OTLP/HTTP {otlp}, OTLP/gRPC {}), database in {}",
        daemon.otlp_grpc_addr(),
        dir.path().display()
    ));
    say(format!(
        "traffic: {SERVICE} {BASELINE_VERSION} (baseline) and {CANARY_VERSION} (canary), {} requests/s each, sent as OTLP",
        args.rate
    ));
    let (latency, errors) = args.scenario.regressed();
    say(match args.scenario {
        Scenario::Healthy => "scenario healthy: the canary behaves like the baseline".to_string(),
        _ => format!(
            "scenario {}: after {}, the canary's latency x{latency} and error ratio {:.1}% (baseline {:.1}%)",
            args.scenario.name(),
            humantime::format_duration(regression_at),
            errors * 100.0,
            ERROR_RATE * 100.0
        ),
    });

    let (stop_traffic, traffic_stopped) = tokio::sync::watch::channel(false);
    let started = tokio::time::Instant::now();
    let sender = tokio::spawn(send_traffic(
        otlp.clone(),
        args.rate,
        args.scenario,
        started + regression_at,
        traffic_stopped,
    ));

    let client = Client::new(&ServerArgs {
        server: api.clone(),
        token: None,
    })
    .map_err(|e| e.message)?;
    let unique = crate::clock::now_ms() / 1000;
    let request = json!({
        "key": format!("demo-{}-{unique}", args.scenario.name()),
        "model": "http-red",
        "baseline": {"service.name": SERVICE, "service.version": BASELINE_VERSION},
        "canary": {"service.name": SERVICE, "service.version": CANARY_VERSION},
        "interval": humantime::format_duration(interval).to_string(),
        "lifetime": humantime::format_duration(lifetime).to_string(),
    });
    let (_, created): (_, serde_json::Value) = client
        .post(&["api", "v1", "analyses"], &request)
        .await
        .map_err(|e| e.message)?;
    let id = created["id"]
        .as_str()
        .ok_or("the daemon answered without an analysis id")?
        .to_string();
    say(format!(
        "analysis {id}: judging every {} for {}\n",
        humantime::format_duration(interval),
        humantime::format_duration(lifetime)
    ));
    let options = WaitOptions {
        timeout: lifetime + interval * 4,
        poll: (interval / 5).max(Duration::from_millis(200)),
        format: args.format,
    };
    let code = wait_for(&client, &id, &options).await;
    let _ = stop_traffic.send(true);
    let sent = sender.await.unwrap_or_default();
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            let _ = daemon.shutdown().await;
            return Err(e.message);
        }
    };
    say(format!(
        "\n{sent} spans sent over OTLP. Look at:\n  {api}/api/v1/analyses/{id}/verdict\n  {api}/api/v1/analyses/{id}   (every interval)\n  {api}/metrics\n  {api}/api/v1/openapi.json"
    ));
    if args.keep_running {
        say("serving until Ctrl-C".into());
        let _ = tokio::signal::ctrl_c().await;
    }
    daemon.shutdown().await.map_err(|e| e.to_string())?;
    // The demo worked whatever the verdict; the verdict itself is in the output.
    let expected = if args.scenario == Scenario::Healthy {
        0
    } else {
        1
    };
    if code != expected {
        say(format!(
            "note: the {} scenario usually ends {}; this run ended otherwise (exit code {code} of `augury wait`)",
            args.scenario.name(),
            if expected == 0 {
                "in a pass"
            } else {
                "in a fail"
            }
        ));
    }
    Ok(0)
}

/// Sends both versions' spans until told to stop; returns how many spans went out.
async fn send_traffic(
    url: String,
    rate: u32,
    scenario: Scenario,
    regression_at: tokio::time::Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / BATCHES_PER_SECOND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let per_batch = (rate / BATCHES_PER_SECOND).max(1) as usize;
    let (mut sent, mut seq) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return sent,
            _ = tick.tick() => {}
        }
        let regressed = tokio::time::Instant::now() >= regression_at;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for (version, canary) in [(BASELINE_VERSION, false), (CANARY_VERSION, true)] {
            seq += 1;
            let (factor, error_rate) = if canary && regressed {
                scenario.regressed()
            } else {
                (1.0, ERROR_RATE)
            };
            let spec = BatchSpec {
                service: SERVICE.into(),
                version: version.into(),
                spans: per_batch,
                attributes: 4,
                median_ms: MEDIAN_MS * factor,
                error_rate,
                start_unix_nano: now.saturating_sub(1_000_000_000),
                seed: seq,
            };
            let body = batch(&spec).encode_to_vec();
            let response = http
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => sent += per_batch as u64,
                Ok(r) => tracing::warn!(status = %r.status(), "OTLP export refused"),
                Err(e) => tracing::warn!(error = %e, "OTLP export failed"),
            }
        }
    }
}
