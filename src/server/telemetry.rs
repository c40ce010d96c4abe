//! Logging and tracing through `tracing`: human-readable text by default, JSON lines for log
//! collectors, and, when an OTLP endpoint is configured, every call's span exported to an
//! OpenTelemetry collector.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

use crate::config::{LogConfig, LogFormat};

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the OTLP exporter: {0}")]
pub struct TelemetryError(#[from] opentelemetry_otlp::ExporterBuildError);

/// Exports the spans still buffered when dropped; hold it until the process ends.
#[must_use]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("sinergi: spans not exported at exit: {error}");
        }
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured filter.
/// Must run inside the Tokio runtime when OTLP export is on (the exporter's gRPC client
/// lives there).
pub fn init(config: &LogConfig) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let output = match config.format {
        // Colour codes only help a person at a terminal; in files and collectors they are noise.
        LogFormat::Text => fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .boxed(),
        LogFormat::Json => fmt::layer().json().boxed(),
    };
    let tracer_provider = match &config.otlp_endpoint {
        Some(endpoint) => {
            let exporter = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        Resource::builder()
                            .with_service_name(config.service_name.clone())
                            .build(),
                    )
                    .build(),
            )
        }
        None => None,
    };
    let spans = tracer_provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("sinergi")));
    // A subscriber may already be installed (by an embedding program); keep it then.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .with(spans)
        .try_init();
    Ok(Telemetry { tracer_provider })
}
