//! `augury serve`: settings from flags, `AUGURY_*` variables and the config file (in that
//! order of precedence), logging, signals, and the daemon until it is told to stop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use super::{EXIT_OPERATIONAL, EXIT_USAGE};
use crate::api::Tokens;
use crate::config::{ConfigError, FileConfig, LimitsConfig};
use crate::daemon::{Daemon, Settings};
use crate::ingest::prometheus::{ConfigError as PromConfigError, PrometheusConfig};
use crate::notify::{Links, Notifiers, NotifiersError};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (the default).
    Human,
    /// One JSON object per event, for log pipelines.
    Json,
}

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// YAML config file: everything the flags hold, plus Prometheus auth, notifiers and
    /// `limits:` (docs/security.md).
    #[arg(long, env = "AUGURY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP API address [default: 127.0.0.1:8080].
    #[arg(long, env = "AUGURY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// OTLP/gRPC receiver address [default: 127.0.0.1:4317].
    #[arg(long, env = "AUGURY_OTLP_GRPC_LISTEN", value_name = "ADDR")]
    pub otlp_grpc_listen: Option<String>,
    /// OTLP/HTTP receiver address [default: 127.0.0.1:4318].
    #[arg(long, env = "AUGURY_OTLP_HTTP_LISTEN", value_name = "ADDR")]
    pub otlp_http_listen: Option<String>,
    /// Kayenta's REST API address, for Argo Rollouts' `kayenta` provider and Spinnaker's
    /// canary stage (docs/kayenta.md); off unless given. It asks no token.
    #[arg(long, env = "AUGURY_KAYENTA_LISTEN", value_name = "ADDR")]
    pub kayenta_listen: Option<String>,
    /// Database URL [default: sqlite://augury.db]: sqlite://PATH (one replica; the file
    /// is created if missing) or postgres://USER:PASSWORD@HOST:PORT/DB (any number of
    /// replicas share it; the database must exist).
    #[arg(
        long,
        env = "AUGURY_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// This replica's name among several on one PostgreSQL database [default: host name
    /// and a random suffix].
    #[arg(long, env = "AUGURY_REPLICA_ID", value_name = "NAME")]
    pub replica_id: Option<String>,
    /// How long a replica's lease on an analysis holds without renewal: another replica
    /// takes a dead one's analyses over after this [default: 15s].
    #[arg(long, env = "AUGURY_LEASE_TTL", value_name = "DURATION")]
    pub lease_ttl: Option<String>,
    /// How long the judging replica waits past an interval's end for every replica's
    /// partial window; a later one counts in the next interval [default: 5s].
    #[arg(long, env = "AUGURY_FLUSH_GRACE", value_name = "DURATION")]
    pub flush_grace: Option<String>,
    /// Directory of extra judge models (*.yaml); they override built-ins of the same name.
    #[arg(long, env = "AUGURY_MODELS", value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Directory of extra PromQL query packs (*.yaml).
    #[arg(long, env = "AUGURY_QUERIES", value_name = "DIR")]
    pub queries: Option<PathBuf>,
    /// Prometheus-compatible server the query packs run against (auth in the config file).
    #[arg(long, env = "AUGURY_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// Log format [default: human].
    #[arg(long, env = "AUGURY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Bearer tokens accepted on every API route, comma-separated. A blank entry (an
    /// empty variable) stops the start. Without any token auth is off, with a warning.
    #[arg(
        long,
        env = "AUGURY_API_TOKENS",
        value_name = "TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,
    /// Bearer tokens accepted on the API's read routes only, comma-separated; once any
    /// is set, reading analyses needs a token too.
    #[arg(
        long,
        env = "AUGURY_API_READ_TOKENS",
        value_name = "TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_read_tokens: Vec<String>,
    /// `none` runs without API auth on purpose (a warning at start); `tokens` requires
    /// tokens to be configured.
    #[arg(long, env = "AUGURY_AUTH", value_name = "MODE")]
    pub auth: Option<String>,
}

/// What `augury serve` runs with: the daemon's settings, the log format, and how auth
/// came to be off (for the warning at start).
#[derive(Debug)]
pub struct Resolved {
    pub settings: Settings,
    pub log_format: LogFormat,
    pub auth: AuthMode,
}

/// How the API is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer tokens are configured.
    Tokens,
    /// No token is configured: auth is off by default.
    OffByDefault,
    /// `auth: none`: auth is off on purpose.
    Off,
}

/// Where a value came from, so its error names the flag, or the file, key and line.
struct Origin<'a> {
    flag: &'static str,
    key: &'static str,
    file: Option<&'a FileConfig>,
}

impl Origin<'_> {
    fn error(&self, reason: impl std::fmt::Display) -> String {
        match self.file {
            Some(f) => f.error(self.key, reason).to_string(),
            None => format!("--{}: {reason}", self.flag),
        }
    }
}

/// The flag's value, else the file's, with where it came from.
fn pick<'a>(
    flag: &'static str,
    from_flag: Option<&'a String>,
    file: &'a FileConfig,
    key: &'static str,
    from_file: Option<&'a String>,
) -> Option<(&'a str, Origin<'a>)> {
    match (from_flag, from_file) {
        (Some(v), _) => Some((
            v,
            Origin {
                flag,
                key,
                file: None,
            },
        )),
        (None, Some(v)) => Some((
            v,
            Origin {
                flag,
                key,
                file: Some(file),
            },
        )),
        (None, None) => None,
    }
}

fn duration_in(
    value: &str,
    origin: &Origin<'_>,
    min: Duration,
    max: Duration,
) -> Result<Duration, String> {
    match humantime::parse_duration(value.trim()) {
        Ok(d) if d >= min && d <= max => Ok(d),
        Ok(_) => Err(origin.error(format!(
            "`{value}` is out of range ({} to {})",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ))),
        Err(e) => Err(origin.error(format!("`{value}` is not a duration like 15s ({e})"))),
    }
}

/// A range check on a config value, with the key and the bounds in the error.
fn check_range<T: PartialOrd + std::fmt::Display>(
    file: &FileConfig,
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), String> {
    if value < min || value > max {
        return Err(file
            .error(key, format!("{value} is out of range ({min} to {max})"))
            .to_string());
    }
    Ok(())
}

fn check_duration(
    file: &FileConfig,
    key: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), String> {
    if value < min || value > max {
        return Err(file
            .error(
                key,
                format!(
                    "{} is out of range ({} to {})",
                    humantime::format_duration(value),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            )
            .to_string());
    }
    Ok(())
}

/// Tokens from a flag (or its variable) or the file; a blank entry is an error naming
/// where it is, since it most often is a variable that is unset or empty where the
/// operator meant a secret.
fn tokens(
    flag: &'static str,
    from_flag: &[String],
    file: &FileConfig,
    key: &'static str,
    from_file: Option<&Vec<String>>,
) -> Result<Vec<String>, String> {
    let hint = "blank (an empty environment variable?): give a token, or `auth: none` to \
                turn auth off on purpose";
    if !from_flag.is_empty() {
        if let Some(i) = from_flag.iter().position(|t| t.trim().is_empty()) {
            return Err(format!("--{flag}: entry {} is {hint}", i + 1));
        }
        return Ok(from_flag.iter().map(|t| t.trim().to_string()).collect());
    }
    let Some(from_file) = from_file else {
        return Ok(Vec::new());
    };
    // Written but empty (`api_tokens: []`, a template whose values were missing): as
    // much a mistake as a blank entry.
    if from_file.is_empty() {
        return Err(file
            .error(
                key,
                "is an empty list: give a token, or `auth: none` to turn auth off on purpose",
            )
            .to_string());
    }
    if let Some(i) = from_file.iter().position(|t| t.trim().is_empty()) {
        return Err(file.error(&format!("{key}[{i}]"), hint).to_string());
    }
    Ok(from_file.iter().map(|t| t.trim().to_string()).collect())
}

/// An http(s) URL, or an error that does not repeat it (it may hold credentials).
fn http_url(value: &str, origin: &Origin<'_>) -> Result<(), String> {
    match reqwest::Url::parse(value.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(origin.error("not an http:// or https:// URL")),
    }
}

/// A directory that must exist.
fn directory(path: &std::path::Path, origin: &Origin<'_>) -> Result<PathBuf, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(path.to_path_buf()),
        Ok(_) => Err(origin.error(format!("`{}` is not a directory", path.display()))),
        Err(e) => Err(origin.error(format!("`{}`: {e}", path.display()))),
    }
}

/// Settings from flags and environment over the config file over the defaults. Every
/// error names the flag, or the file, line and key, and never shows a secret.
pub fn settings(args: &ServeArgs) -> Result<Resolved, String> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path).map_err(|e| e.to_string())?,
        None => FileConfig::default(),
    };
    let mut s = Settings::new();
    let addr = |value: &str, origin: Origin<'_>| -> Result<SocketAddr, String> {
        value.trim().parse().map_err(|e| {
            origin.error(format!(
                "`{value}` is not an address like 127.0.0.1:8080 ({e})"
            ))
        })
    };
    if let Some((v, o)) = pick(
        "listen",
        args.listen.as_ref(),
        &file,
        "listen",
        file.listen.as_ref(),
    ) {
        s.listen = addr(v, o)?;
    }
    if let Some((v, o)) = pick(
        "otlp-grpc-listen",
        args.otlp_grpc_listen.as_ref(),
        &file,
        "otlp_grpc_listen",
        file.otlp_grpc_listen.as_ref(),
    ) {
        s.otlp.grpc_listen = addr(v, o)?;
    }
    if let Some((v, o)) = pick(
        "otlp-http-listen",
        args.otlp_http_listen.as_ref(),
        &file,
        "otlp_http_listen",
        file.otlp_http_listen.as_ref(),
    ) {
        s.otlp.http_listen = addr(v, o)?;
    }
    if let Some((v, o)) = pick(
        "kayenta-listen",
        args.kayenta_listen.as_ref(),
        &file,
        "kayenta_listen",
        file.kayenta_listen.as_ref(),
    ) {
        s.kayenta_listen = Some(addr(v, o)?);
    }
    if let Some((v, o)) = pick(
        "database",
        args.database.as_ref(),
        &file,
        "database",
        file.database.as_ref(),
    ) {
        database(v, &o)?;
        s.database = v.trim().to_string();
    }
    // Not from the config file, which every replica shares: each needs a name of its own.
    if let Some(v) = &args.replica_id {
        if v.trim().is_empty() || v.len() > 200 {
            return Err(format!(
                "--replica-id `{v}`: give a name of 1 to 200 characters"
            ));
        }
        s.replicas.id = v.clone();
    }
    let (ms, hour) = (Duration::from_millis(100), Duration::from_secs(3600));
    if let Some((v, o)) = pick(
        "lease-ttl",
        args.lease_ttl.as_ref(),
        &file,
        "lease_ttl",
        file.lease_ttl.as_ref(),
    ) {
        s.replicas.lease_ttl = duration_in(v, &o, ms, hour)?;
    }
    if let Some((v, o)) = pick(
        "flush-grace",
        args.flush_grace.as_ref(),
        &file,
        "flush_grace",
        file.flush_grace.as_ref(),
    ) {
        s.replicas.flush_grace = duration_in(v, &o, ms, hour)?;
    }
    let dir = |flag: &'static str, from_flag: &Option<PathBuf>, from_file: &Option<PathBuf>| match (
        from_flag, from_file,
    ) {
        (Some(p), _) => directory(
            p,
            &Origin {
                flag,
                key: flag,
                file: None,
            },
        )
        .map(Some),
        (None, Some(p)) => directory(
            p,
            &Origin {
                flag,
                key: flag,
                file: Some(&file),
            },
        )
        .map(Some),
        (None, None) => Ok(None),
    };
    s.models = dir("models", &args.models, &file.models)?;
    s.queries = dir("queries", &args.queries, &file.queries)?;
    s.prometheus = prometheus(args, &file)?;
    let auth = auth(args, &file, &mut s)?;
    s.notifiers = Notifiers::from_config(&file.notifiers, &file.default_notify)
        .map_err(|e| notifiers_error(&file, &e))?;
    for (key, value) in [
        ("public_url", &file.public_url),
        ("grafana_url", &file.grafana_url),
    ] {
        if let Some(v) = value {
            http_url(
                v,
                &Origin {
                    flag: key,
                    key,
                    file: Some(&file),
                },
            )?;
        }
    }
    s.notifiers.links = Links {
        public_url: file.public_url.clone().unwrap_or_default(),
        grafana_url: file.grafana_url.clone(),
    };
    if let Some(value) = &file.notify_delivery {
        s.notifiers.delivery = file
            .typed("notify_delivery", value)
            .map_err(|e| e.to_string())?;
        delivery(&file, &s.notifiers.delivery)?;
    }
    if let Some(value) = &file.limits {
        limits(
            &file,
            &file.typed("limits", value).map_err(|e| e.to_string())?,
            &mut s,
        )?;
    }
    if let Some(n) = file.runner_concurrency {
        check_range(&file, "runner_concurrency", n, 1, 10_000)?;
        s.runner_concurrency = n;
    }
    let log_format = match (args.log_format, file.log_format.as_deref()) {
        (Some(f), _) => f,
        (None, None | Some("human")) => LogFormat::Human,
        (None, Some("json")) => LogFormat::Json,
        (None, Some(other)) => {
            return Err(file
                .error("log_format", format!("`{other}` is not `human` or `json`"))
                .to_string());
        }
    };
    Ok(Resolved {
        settings: s,
        log_format,
        auth,
    })
}

/// The `limits:` section onto the API's and the OTLP receiver's bounds, each checked.
fn limits(file: &FileConfig, l: &LimitsConfig, s: &mut Settings) -> Result<(), String> {
    let key = |k: &str| format!("limits.{k}");
    let duration = |k: &str, v: &Option<String>, min: Duration, max: Duration| {
        v.as_deref()
            .map(|text| {
                let d = humantime::parse_duration(text.trim()).map_err(|e| {
                    file.error(
                        &key(k),
                        format!("`{text}` is not a duration like 10s ({e})"),
                    )
                    .to_string()
                })?;
                check_duration(file, &key(k), d, min, max).map(|()| d)
            })
            .transpose()
    };
    let (second, hour) = (Duration::from_secs(1), Duration::from_secs(3600));
    let mib = 1usize << 20;
    if let Some(n) = l.api_body_bytes {
        check_range(file, &key("api_body_bytes"), n, 1024, 64 * mib)?;
        s.limits.body_bytes = n;
    }
    if let Some(d) = duration("api_request_timeout", &l.api_request_timeout, second, hour)? {
        s.limits.request_timeout = d;
    }
    if let Some(n) = l.max_connections {
        check_range(file, &key("max_connections"), n, 1, 1_000_000)?;
        s.limits.listener.max_connections = n;
        s.otlp.max_connections = n;
    }
    if let Some(d) = duration("header_read_timeout", &l.header_read_timeout, second, hour)? {
        s.limits.listener.header_read_timeout = d;
        s.otlp.header_read_timeout_seconds = d.as_secs();
    }
    if let Some(d) = duration("idle_timeout", &l.idle_timeout, second, hour)? {
        s.limits.listener.idle_timeout = d;
        s.otlp.idle_timeout_seconds = d.as_secs();
    }
    if let Some(n) = l.otlp_body_bytes {
        check_range(file, &key("otlp_body_bytes"), n, 1024, 256 * mib)?;
        s.otlp.max_body_bytes = n;
    }
    if let Some(n) = l.otlp_concurrent_requests {
        check_range(file, &key("otlp_concurrent_requests"), n, 1, 4096)?;
        s.otlp.max_concurrent_requests = n;
    }
    if let Some(n) = l.otlp_in_flight_bytes {
        let min = s.otlp.max_body_bytes;
        check_range(file, &key("otlp_in_flight_bytes"), n, min, 16 * 1024 * mib)?;
        s.otlp.max_in_flight_bytes = n;
    } else if s.otlp.max_in_flight_bytes < s.otlp.max_body_bytes {
        s.otlp.max_in_flight_bytes = s.otlp.max_body_bytes;
    }
    if let Some(d) = duration(
        "otlp_request_timeout",
        &l.otlp_request_timeout,
        second,
        hour,
    )? {
        s.otlp.request_timeout_seconds = d.as_secs();
    }
    if let Some(n) = l.judge_workers {
        check_range(file, &key("judge_workers"), n, 1, 256)?;
        s.judge_workers = n;
    }
    if let Some(n) = l.watches {
        check_range(file, &key("watches"), n, 2, 1_000_000)?;
        s.windows.max_watches = n;
    }
    if let Some(n) = l.watches_per_analysis {
        let most = s.windows.max_watches;
        check_range(file, &key("watches_per_analysis"), n, 2, most)?;
        s.windows.max_watches_per_analysis = n;
    } else {
        s.windows.max_watches_per_analysis = s
            .windows
            .max_watches_per_analysis
            .min(s.windows.max_watches);
    }
    // An idle timeout shorter than a request may take would cut a quiet request off.
    let longest = s
        .limits
        .request_timeout
        .max(Duration::from_secs(s.otlp.request_timeout_seconds));
    if s.limits.listener.idle_timeout < longest {
        return Err(file
            .error(
                "limits.idle_timeout",
                format!(
                    "{} is shorter than the longest request may take ({}): raise it",
                    humantime::format_duration(s.limits.listener.idle_timeout),
                    humantime::format_duration(longest)
                ),
            )
            .to_string());
    }
    Ok(())
}

/// A database URL `serve` can open: SQLite with a path, or PostgreSQL.
fn database(url: &str, origin: &Origin<'_>) -> Result<(), String> {
    let url = url.trim();
    let shown = crate::redact::url(url);
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(origin.error(format!(
                "`{shown}` names no file (sqlite://PATH, e.g. sqlite://augury.db)"
            )));
        }
        return Ok(());
    }
    if ["postgres://", "postgresql://"]
        .iter()
        .any(|s| url.starts_with(s))
    {
        return Ok(());
    }
    Err(origin.error(format!(
        "`{shown}` is not a database URL (sqlite://PATH or \
         postgres://USER:PASSWORD@HOST:PORT/DB)"
    )))
}

/// The `prometheus:` section, `--prometheus-url` over its `url`, checked as the client
/// will use it.
fn prometheus(args: &ServeArgs, file: &FileConfig) -> Result<Option<PrometheusConfig>, String> {
    let mut config: Option<PrometheusConfig> = match &file.prometheus {
        Some(value) => Some(file.typed("prometheus", value).map_err(|e| e.to_string())?),
        None => None,
    };
    if let Some(url) = &args.prometheus_url {
        match &mut config {
            Some(p) => p.url = url.clone(),
            None => config = Some(PrometheusConfig::new(url.clone())),
        }
    }
    let Some(config) = config else {
        return Ok(None);
    };
    if file.prometheus.is_some() {
        let (ms, ten_minutes) = (Duration::from_millis(100), Duration::from_secs(600));
        check_duration(file, "prometheus.timeout", config.timeout, ms, ten_minutes)?;
        check_duration(
            file,
            "prometheus.backoff",
            config.backoff,
            Duration::ZERO,
            ten_minutes,
        )?;
        check_range(file, "prometheus.retries", config.retries, 0, 10)?;
    }
    if let Err(e) = crate::ingest::prometheus::Client::new(&config) {
        let from_flag = args.prometheus_url.is_some() && matches!(e, PromConfigError::Url { .. });
        if from_flag {
            return Err(format!("--prometheus-url: {e}"));
        }
        let path = match &e {
            PromConfigError::Url { .. } => "prometheus.url".to_string(),
            PromConfigError::Header { name, .. } => format!("prometheus.headers.{name}"),
            _ => "prometheus".to_string(),
        };
        // The client's error names the field itself.
        return Err(ConfigError {
            file: file.file.clone(),
            line: file.lines.of(&path),
            reason: e.to_string(),
        }
        .to_string());
    }
    Ok(Some(config))
}

/// API auth: tokens from flags or the file, or `auth: none`. A token list that resolves
/// to nothing usable is an error, never auth silently off.
fn auth(args: &ServeArgs, file: &FileConfig, s: &mut Settings) -> Result<AuthMode, String> {
    // `auth: none` beside an empty list says the same thing twice: not an error.
    let none_said = args.auth.as_ref().or(file.auth.as_ref()).map(|m| m.trim()) == Some("none");
    let full = tokens(
        "api-tokens",
        &args.api_tokens,
        file,
        "api_tokens",
        file.api_tokens
            .as_ref()
            .filter(|l| !(none_said && l.is_empty())),
    )?;
    let read = tokens(
        "api-read-tokens",
        &args.api_read_tokens,
        file,
        "api_read_tokens",
        file.api_read_tokens
            .as_ref()
            .filter(|l| !(none_said && l.is_empty())),
    )?;
    let (mode, origin) = match (&args.auth, &file.auth) {
        (Some(m), _) => (
            Some(m.as_str()),
            Origin {
                flag: "auth",
                key: "auth",
                file: None,
            },
        ),
        (None, Some(m)) => (
            Some(m.as_str()),
            Origin {
                flag: "auth",
                key: "auth",
                file: Some(file),
            },
        ),
        (None, None) => (
            None,
            Origin {
                flag: "auth",
                key: "auth",
                file: None,
            },
        ),
    };
    let configured = !full.is_empty() || !read.is_empty();
    let mode =
        match (mode.map(str::trim), configured) {
            (Some("none"), true) => {
                return Err(origin
                    .error("is `none` but API tokens are configured: remove one or the other"));
            }
            (Some("none"), false) => AuthMode::Off,
            (Some("tokens"), false) => {
                return Err(origin
                    .error("is `tokens` but no token is configured (api_tokens, --api-tokens)"));
            }
            (Some("tokens") | None, true) => AuthMode::Tokens,
            (None, false) => AuthMode::OffByDefault,
            (Some(other), _) => {
                return Err(origin.error(format!("`{other}` is not `tokens` or `none`")));
            }
        };
    if full.is_empty() && !read.is_empty() {
        return Err(
            "read-only tokens are configured but no full one (api_tokens, --api-tokens): \
             nothing could create an analysis"
                .to_string(),
        );
    }
    s.auth = Tokens { full, read };
    Ok(mode)
}

/// A notifiers error with the line of the notifier (or field) it names.
fn notifiers_error(file: &FileConfig, e: &NotifiersError) -> String {
    let path = match e {
        NotifiersError::Unreadable { name, .. } => format!("notifiers.{name}"),
        NotifiersError::Invalid { name, problem } => {
            let shown = problem.to_string();
            let field = shown.split(':').next().unwrap_or_default();
            format!("notifiers.{name}.{field}")
        }
        NotifiersError::UnknownDefault(_) => "default_notify".to_string(),
    };
    ConfigError {
        file: file.file.clone(),
        line: file.lines.of(&path),
        reason: e.to_string(),
    }
    .to_string()
}

/// Delivery settings that can work: a timeout a real request can meet, at least one
/// attempt, at least one request at a time, a back-off that does not shrink.
fn delivery(file: &FileConfig, d: &crate::notify::DeliverySettings) -> Result<(), String> {
    let key = |k: &str| format!("notify_delivery.{k}");
    let (ms, day) = (Duration::from_millis(100), Duration::from_secs(86_400));
    check_duration(
        file,
        &key("timeout"),
        d.timeout,
        ms,
        Duration::from_secs(600),
    )?;
    check_duration(
        file,
        &key("initial_backoff"),
        d.initial_backoff,
        Duration::from_millis(10),
        day,
    )?;
    check_duration(
        file,
        &key("max_backoff"),
        d.max_backoff,
        d.initial_backoff,
        day,
    )?;
    check_duration(
        file,
        &key("flush_timeout"),
        d.flush_timeout,
        Duration::ZERO,
        Duration::from_secs(600),
    )?;
    check_range(file, &key("max_attempts"), d.max_attempts, 1, 1_000)?;
    check_range(file, &key("concurrency"), d.concurrency, 1, 1_024)?;
    Ok(())
}

pub(super) fn run(args: ServeArgs) -> i32 {
    let Resolved {
        settings,
        log_format,
        auth,
    } = match settings(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("augury serve: {e}");
            return EXIT_USAGE;
        }
    };
    let runtime = match super::daemon_runtime("serve") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let logging = super::logging::init(log_format);
        warn_about_auth(auth, settings.listen);
        let code = match Daemon::start(settings).await {
            Ok(daemon) => match daemon.run_until(shutdown_signal()).await {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "daemon failed");
                    EXIT_OPERATIONAL
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                if e.is_config() {
                    EXIT_USAGE
                } else {
                    EXIT_OPERATIONAL
                }
            }
        };
        logging.shutdown();
        code
    })
}

/// Auth off is said at start: as a warning when asked for, loudly when the API is open
/// to the network without anyone having asked.
fn warn_about_auth(auth: AuthMode, listen: SocketAddr) {
    let beyond_loopback = !listen.ip().is_loopback();
    match (auth, beyond_loopback) {
        (AuthMode::Tokens, _) => {}
        (AuthMode::Off, _) => tracing::warn!(
            listen = %listen,
            "API auth is off (`auth: none`): whoever reaches the API can create and cancel analyses"
        ),
        (AuthMode::OffByDefault, false) => tracing::info!(
            "API auth is off: no API token is configured (the API listens on loopback only)"
        ),
        (AuthMode::OffByDefault, true) => tracing::error!(
            listen = %listen,
            "API AUTH IS OFF ON A NETWORK ADDRESS: anyone who reaches this port can create \
             and cancel analyses and so pass or fail rollouts. Configure api_tokens \
             (--api-tokens), or say `auth: none` if that is what you want"
        ),
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub(super) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<&std::path::Path>) -> ServeArgs {
        ServeArgs {
            config: config.map(|p| p.to_path_buf()),
            ..ServeArgs::default()
        }
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("augury.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn error_of(text: &str) -> String {
        let (_dir, path) = file(text);
        settings(&args(Some(&path))).unwrap_err()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let r = settings(&args(None)).unwrap();
        let s = r.settings;
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.otlp.grpc_listen.to_string(), "127.0.0.1:4317");
        assert_eq!(s.otlp.http_listen.to_string(), "127.0.0.1:4318");
        assert_eq!(s.database, "sqlite://augury.db");
        assert!(s.prometheus.is_none() && s.auth.is_empty());
        assert_eq!(
            (r.log_format, r.auth),
            (LogFormat::Human, AuthMode::OffByDefault)
        );
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let (_dir, path) = file(
            "listen: 127.0.0.1:9000\notlp_http_listen: 0.0.0.0:14318\n\
             prometheus: {url: \"http://p:9090\", headers: {X-Scope-OrgID: team}}\n\
             log_format: json\napi_tokens: [a]\n",
        );
        let mut a = args(Some(&path));
        a.listen = Some("127.0.0.1:9100".into());
        a.prometheus_url = Some("http://q:9090".into());
        let r = settings(&a).unwrap();
        let s = r.settings;
        assert_eq!(s.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(s.otlp.http_listen.to_string(), "0.0.0.0:14318");
        let p = s.prometheus.unwrap();
        assert_eq!(p.url, "http://q:9090");
        assert_eq!(p.headers["X-Scope-OrgID"], "team");
        assert_eq!((r.log_format, r.auth), (LogFormat::Json, AuthMode::Tokens));
        assert_eq!(s.auth.full, vec!["a".to_string()]);
    }

    #[test]
    fn bad_flags_are_named() {
        let mut a = args(None);
        a.listen = Some("localhost".into());
        assert!(
            settings(&a)
                .unwrap_err()
                .starts_with("--listen: `localhost`")
        );
        let mut a = args(None);
        a.database = Some("mysql://u:pw@db/augury".into());
        let e = settings(&a).unwrap_err();
        assert!(e.contains("not a database URL") && !e.contains("pw"), "{e}");
        let mut a = args(None);
        a.database = Some("sqlite://".into());
        assert!(settings(&a).unwrap_err().contains("names no file"));
        let mut a = args(None);
        a.database = Some("postgres://u:pw@db/augury".into());
        a.lease_ttl = Some("2s".into());
        let s = settings(&a).unwrap().settings;
        assert_eq!(s.replicas.lease_ttl, Duration::from_secs(2));
        a.flush_grace = Some("soon".into());
        assert!(
            settings(&a)
                .unwrap_err()
                .starts_with("--flush-grace: `soon`")
        );
        let mut a = args(None);
        a.api_tokens = vec!["ok".into(), " ".into()];
        assert!(
            settings(&a)
                .unwrap_err()
                .starts_with("--api-tokens: entry 2 is blank")
        );
        let mut a = args(None);
        a.models = Some(PathBuf::from("/nonexistent/models"));
        assert!(
            settings(&a)
                .unwrap_err()
                .starts_with("--models: `/nonexistent/models`")
        );
    }

    #[test]
    fn bad_file_values_are_named_with_file_and_line() {
        let e = error_of("listen: 127.0.0.1:1\nprometheus: {uri: x}\n");
        assert!(
            e.contains("augury.yaml:2: prometheus.uri: unknown field `uri`"),
            "{e}"
        );
        let e = error_of("notify_delivery:\n  timeout: 0s\n");
        assert!(
            e.contains("augury.yaml:2: notify_delivery.timeout: 0s is out of range"),
            "{e}"
        );
        let e = error_of("notify_delivery:\n  timeout: 5s\n  max_attempts: 0\n");
        assert!(
            e.contains("augury.yaml:3: notify_delivery.max_attempts: 0 is out of range"),
            "{e}"
        );
        let e = error_of("runner_concurrency: 0\n");
        assert!(
            e.contains("augury.yaml:1: runner_concurrency: 0 is out of range"),
            "{e}"
        );
        let e = error_of("\n\nprometheus:\n  url: http://p:9090\n  timeout: 0s\n");
        assert!(e.contains("augury.yaml:5: prometheus.timeout"), "{e}");
        let e = error_of("prometheus:\n  url: \"ftp://u:hunter2@p\"\n");
        assert!(
            e.contains("augury.yaml:2: prometheus.url: `ftp://u:***@p`"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = error_of("database: \"sqlite://\"\n");
        assert!(e.contains("augury.yaml:1: database:"), "{e}");
        let e = error_of("listen: 0.0.0.0:8080\napi_tokens: []\n");
        assert!(
            e.contains("augury.yaml:2: api_tokens: is an empty list"),
            "{e}"
        );
        let e = error_of("api_tokens:\n  - good\n  - \"\"\n");
        assert!(e.contains("augury.yaml:3: api_tokens[1]: blank"), "{e}");
        let e = error_of("auth: none\napi_tokens: [t]\n");
        assert!(e.contains("augury.yaml:1: auth: is `none` but"), "{e}");
        let e = error_of("public_url: \"augury:8080\"\n");
        assert!(e.contains("augury.yaml:1: public_url: not an http"), "{e}");
        let e = error_of("notifiers:\n  pd:\n    type: pagerduty\n    routing_key: 1e30\n");
        assert!(
            e.contains("augury.yaml:3: notifiers.pd:") && !e.contains("1e30"),
            "{e}"
        );
    }

    #[test]
    fn limits_reach_every_listener_and_are_checked() {
        let (_dir, path) = file(
            "limits:\n  max_connections: 50\n  idle_timeout: 2m\n  otlp_body_bytes: 2048\n  \
             judge_workers: 3\n  watches: 100\n  watches_per_analysis: 10\n",
        );
        let s = settings(&args(Some(&path))).unwrap().settings;
        assert_eq!(s.limits.listener.max_connections, 50);
        assert_eq!(s.otlp.max_connections, 50);
        assert_eq!(s.otlp.idle_timeout_seconds, 120);
        assert_eq!(s.otlp.max_body_bytes, 2048);
        assert_eq!(s.judge_workers, 3);
        assert_eq!(
            (s.windows.max_watches, s.windows.max_watches_per_analysis),
            (100, 10)
        );
        let e = error_of("limits: {watches: 10, watches_per_analysis: 20}\n");
        assert!(
            e.contains("limits.watches_per_analysis: 20 is out of range (2 to 10)"),
            "{e}"
        );
        let e = error_of("limits:\n  max_connections: 0\n");
        assert!(
            e.contains("augury.yaml:2: limits.max_connections: 0 is out of range"),
            "{e}"
        );
        let e = error_of("limits:\n  idle_timeout: 5s\n");
        assert!(
            e.contains("augury.yaml:2: limits.idle_timeout: 5s is shorter"),
            "{e}"
        );
        let e = error_of("limits: {max_conections: 5}\n");
        assert!(e.contains("unknown field `max_conections`"), "{e}");
    }

    #[test]
    fn auth_is_off_only_when_nothing_or_none_is_said() {
        let (_dir, path) = file("auth: none\n");
        assert_eq!(settings(&args(Some(&path))).unwrap().auth, AuthMode::Off);
        let (_dir, path) = file("auth: none\napi_tokens: []\n");
        assert_eq!(settings(&args(Some(&path))).unwrap().auth, AuthMode::Off);
        let (_dir, path) = file("api_tokens: [w]\napi_read_tokens: [r]\n");
        let r = settings(&args(Some(&path))).unwrap();
        assert_eq!(r.auth, AuthMode::Tokens);
        assert_eq!(r.settings.auth.read, vec!["r".to_string()]);
        let e = error_of("api_read_tokens: [r]\n");
        assert!(e.contains("no full one"), "{e}");
    }
}
