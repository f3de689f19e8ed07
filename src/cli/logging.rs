//! The daemon's logs (`tracing`, human or JSON lines on stderr, filtered by `AUGURY_LOG`
//! or `RUST_LOG`, default `info`) and, when the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, its own traces over OTLP: gRPC by
//! default, HTTP/protobuf when `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`. The exporter
//! reads the other standard variables (headers, timeout) itself.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::serve::LogFormat;

/// What must be flushed before the process exits.
pub struct Logging {
    provider: Option<SdkTracerProvider>,
}

impl Logging {
    /// Sends the traces still buffered.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("augury: flushing own traces: {e}");
        }
    }
}

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("AUGURY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        // The exporter's own HTTP/gRPC stack stays quiet, or exporting would trace itself.
        .unwrap_or_else(|_| {
            EnvFilter::new(format!("{default},h2=warn,hyper=warn,tonic=warn,sqlx=warn"))
        })
}

fn exporter() -> Result<Option<opentelemetry_otlp::SpanExporter>, String> {
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    if !configured {
        return Ok(None);
    }
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "grpc".into());
    let built = match protocol.as_str() {
        "grpc" => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build(),
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build(),
        other => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL `{other}` is not supported (grpc or http/protobuf)"
            ));
        }
    };
    built.map(Some).map_err(|e| e.to_string())
}

/// Installs the global subscriber at level `info` unless `AUGURY_LOG`/`RUST_LOG` say
/// otherwise. Call once, inside the async runtime (the gRPC exporter's channel lives on it).
pub fn init(format: LogFormat) -> Logging {
    init_with(format, "info")
}

/// [`init`] with another default level.
pub fn init_with(format: LogFormat, default_level: &str) -> Logging {
    let fmt = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (provider, problem) = match exporter() {
        Ok(Some(exporter)) => {
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("augury")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build();
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            (Some(provider), None)
        }
        Ok(None) => (None, None),
        Err(e) => (None, Some(e)),
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("augury")));
    let _ = tracing_subscriber::registry()
        .with(filter(default_level))
        .with(fmt)
        .with(otel)
        .try_init();
    if let Some(problem) = problem {
        tracing::warn!(%problem, "own traces are not exported");
    } else if provider.is_some() {
        tracing::info!("exporting own traces over OTLP");
    }
    Logging { provider }
}
