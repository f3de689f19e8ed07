//! `augury serve`: settings from flags, `AUGURY_*` variables and the config file (in that
//! order of precedence), logging, signals, and the daemon until it is told to stop.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::ValueEnum;

use super::{EXIT_OPERATIONAL, EXIT_USAGE};
use crate::config::FileConfig;
use crate::daemon::{Daemon, Settings};
use crate::ingest::prometheus::PrometheusConfig;
use crate::notify::{Links, Notifiers};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (the default).
    Human,
    /// One JSON object per event, for log pipelines.
    Json,
}

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// YAML config file: everything the flags hold, plus Prometheus auth and notifiers.
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
    /// Bearer tokens accepted on mutating API routes, comma-separated (default: no auth).
    #[arg(
        long,
        env = "AUGURY_API_TOKENS",
        value_name = "TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,
}

/// Settings from flags and environment over the config file over the defaults.
pub fn settings(args: &ServeArgs) -> Result<(Settings, LogFormat), String> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path).map_err(|e| e.to_string())?,
        None => FileConfig::default(),
    };
    let source = args
        .config
        .as_ref()
        .map_or("default".to_string(), |p| p.display().to_string());
    let mut s = Settings::new();
    let addr = |flag: &str, value: &str| -> Result<SocketAddr, String> {
        value
            .parse()
            .map_err(|e| format!("{flag} `{value}`: not an address like 127.0.0.1:8080 ({e})"))
    };
    if let Some(v) = args.listen.as_ref().or(file.listen.as_ref()) {
        s.listen = addr("listen", v)?;
    }
    if let Some(v) = args
        .otlp_grpc_listen
        .as_ref()
        .or(file.otlp_grpc_listen.as_ref())
    {
        s.otlp.grpc_listen = addr("otlp-grpc-listen", v)?;
    }
    if let Some(v) = args
        .otlp_http_listen
        .as_ref()
        .or(file.otlp_http_listen.as_ref())
    {
        s.otlp.http_listen = addr("otlp-http-listen", v)?;
    }
    if let Some(v) = args.database.as_ref().or(file.database.as_ref()) {
        s.database = v.clone();
    }
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| s.database.starts_with(scheme))
    {
        return Err(format!(
            "database `{}`: not a database URL (sqlite://PATH or \
             postgres://USER:PASSWORD@HOST:PORT/DB)",
            crate::store::redacted(&s.database)
        ));
    }
    // Not from the config file, which every replica shares: each needs a name of its own.
    if let Some(v) = &args.replica_id {
        if v.trim().is_empty() || v.len() > 200 {
            return Err(format!(
                "replica-id `{v}`: give a name of 1 to 200 characters"
            ));
        }
        s.replicas.id = v.clone();
    }
    let duration = |flag: &str, value: &str| -> Result<std::time::Duration, String> {
        match humantime::parse_duration(value) {
            Ok(d) if d >= std::time::Duration::from_millis(100) => Ok(d),
            Ok(_) => Err(format!("{flag} `{value}`: at least 100ms")),
            Err(e) => Err(format!("{flag} `{value}`: not a duration like 15s ({e})")),
        }
    };
    if let Some(v) = args.lease_ttl.as_ref().or(file.lease_ttl.as_ref()) {
        s.replicas.lease_ttl = duration("lease-ttl", v)?;
    }
    if let Some(v) = args.flush_grace.as_ref().or(file.flush_grace.as_ref()) {
        s.replicas.flush_grace = duration("flush-grace", v)?;
    }
    s.models = args.models.clone().or(file.models.clone());
    s.queries = args.queries.clone().or(file.queries.clone());
    let mut prometheus: Option<PrometheusConfig> = match file.prometheus {
        Some(value) => Some(
            serde_json::from_value(value)
                .map_err(|e| format!("config {source}: prometheus: {e}"))?,
        ),
        None => None,
    };
    if let Some(url) = &args.prometheus_url {
        match &mut prometheus {
            Some(p) => p.url = url.clone(),
            None => prometheus = Some(PrometheusConfig::new(url.clone())),
        }
    }
    s.prometheus = prometheus;
    s.api_tokens = if args.api_tokens.is_empty() {
        file.api_tokens.clone()
    } else {
        args.api_tokens.clone()
    };
    s.api_tokens.retain(|t| !t.trim().is_empty());
    s.notifiers = Notifiers::from_config(&file.notifiers, &file.default_notify)
        .map_err(|e| format!("config {source}: {e}"))?;
    s.notifiers.links = Links {
        public_url: file.public_url.clone().unwrap_or_default(),
        grafana_url: file.grafana_url.clone(),
    };
    if let Some(value) = &file.notify_delivery {
        s.notifiers.delivery = serde_json::from_value(value.clone())
            .map_err(|e| format!("config {source}: notify_delivery: {e}"))?;
    }
    if let Some(n) = file.runner_concurrency {
        s.runner_concurrency = n.max(1);
    }
    let log_format = match (args.log_format, file.log_format.as_deref()) {
        (Some(f), _) => f,
        (None, None | Some("human")) => LogFormat::Human,
        (None, Some("json")) => LogFormat::Json,
        (None, Some(other)) => {
            return Err(format!(
                "config {source}: log_format `{other}` is not `human` or `json`"
            ));
        }
    };
    Ok((s, log_format))
}

pub(super) fn run(args: ServeArgs) -> i32 {
    let (settings, log_format) = match settings(&args) {
        Ok(s) => s,
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
                EXIT_OPERATIONAL
            }
        };
        logging.shutdown();
        code
    })
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

    #[test]
    fn defaults_are_the_documented_ones() {
        let (s, f) = settings(&args(None)).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.otlp.grpc_listen.to_string(), "127.0.0.1:4317");
        assert_eq!(s.otlp.http_listen.to_string(), "127.0.0.1:4318");
        assert_eq!(s.database, "sqlite://augury.db");
        assert!(s.prometheus.is_none() && s.api_tokens.is_empty());
        assert_eq!(f, LogFormat::Human);
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("augury.yaml");
        std::fs::write(
            &path,
            "listen: 127.0.0.1:9000\notlp_http_listen: 0.0.0.0:14318\n\
             prometheus: {url: \"http://p:9090\", headers: {X-Scope-OrgID: team}}\n\
             log_format: json\napi_tokens: [a]\n",
        )
        .unwrap();
        let mut a = args(Some(&path));
        a.listen = Some("127.0.0.1:9100".into());
        a.prometheus_url = Some("http://q:9090".into());
        let (s, f) = settings(&a).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(s.otlp.http_listen.to_string(), "0.0.0.0:14318");
        let p = s.prometheus.unwrap();
        assert_eq!(p.url, "http://q:9090");
        assert_eq!(p.headers["X-Scope-OrgID"], "team");
        assert_eq!((f, s.api_tokens), (LogFormat::Json, vec!["a".to_string()]));
    }

    #[test]
    fn bad_values_are_named() {
        let mut a = args(None);
        a.listen = Some("localhost".into());
        assert!(settings(&a).unwrap_err().starts_with("listen `localhost`"));
        let mut a = args(None);
        a.database = Some("mysql://u:pw@db/augury".into());
        let e = settings(&a).unwrap_err();
        assert!(e.contains("not a database URL") && !e.contains("pw"), "{e}");
        let mut a = args(None);
        a.database = Some("postgres://u:pw@db/augury".into());
        a.lease_ttl = Some("2s".into());
        let (s, _) = settings(&a).unwrap();
        assert_eq!(s.replicas.lease_ttl, std::time::Duration::from_secs(2));
        a.flush_grace = Some("soon".into());
        assert!(settings(&a).unwrap_err().starts_with("flush-grace `soon`"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "prometheus: {uri: x}\n").unwrap();
        let e = settings(&args(Some(&path))).unwrap_err();
        assert!(e.contains("prometheus") && e.contains("uri"), "{e}");
    }
}
