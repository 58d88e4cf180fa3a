//! The global tracing subscriber and the OTLP exporter behind it.

use std::io::IsTerminal;
use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tasker_config::{LogFormat, TelemetryConfig};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOutput {
    /// Standard output (servers and CLIs).
    Stdout,
    /// Standard error (workers embedded in another language's process,
    /// whose standard output belongs to the host).
    Stderr,
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (a malformed endpoint, or no
    /// tokio runtime to run its client on).
    #[error("OTLP exporter for {endpoint}: {message}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
}

/// The installed telemetry. Dropping it (or [`Telemetry::shutdown`]) sends
/// the spans still buffered, so a process's last spans are not lost.
#[derive(Debug)]
#[must_use = "dropping Telemetry flushes and stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    installed: bool,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Whether this call installed the process's subscriber (a later call
    /// in the same process leaves the first one in place).
    pub fn installed(&self) -> bool {
        self.installed
    }

    /// Sends every buffered span now, waiting for the exporter.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "flushing spans failed");
        }
    }

    /// Flushes and stops trace export.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.force_flush() {
                tracing::warn!(error = %err, "flushing spans failed");
            }
            if let Err(err) = provider.shutdown() {
                tracing::debug!(error = %err, "stopping trace export");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Installs the process's subscriber: the log format and filter from
/// `config` (`RUST_LOG` wins over `log_level`), and, when
/// `config.otlp_endpoint` is set, a layer exporting every span over OTLP/gRPC
/// as `service_name`. A second call in one process changes nothing and
/// returns a [`Telemetry`] that exports nothing.
///
/// Call it from inside a tokio runtime when OTLP may be on: the exporter's
/// gRPC client runs on it.
///
/// # Errors
/// [`TelemetryError::Exporter`] when the OTLP exporter cannot be built.
pub fn init(
    config: &TelemetryConfig,
    service_name: &str,
    output: LogOutput,
) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let terminal = match output {
        LogOutput::Stdout => std::io::stdout().is_terminal(),
        LogOutput::Stderr => std::io::stderr().is_terminal(),
    };
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !terminal,
    };
    let logs = log_layer(json, terminal, output);
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(exporter(endpoint, service_name)?),
        None => None,
    };
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("tasker"))
            .boxed()
    });
    let installed = Registry::default()
        .with(logs)
        .with(traces)
        .with(filter)
        .try_init()
        .is_ok();
    if !installed {
        // Another subscriber owns this process; spans would not reach ours.
        if let Some(p) = provider {
            let _ = p.shutdown();
        }
        return Ok(Telemetry {
            provider: None,
            installed,
        });
    }
    if let (Some(endpoint), Some(_)) = (&config.otlp_endpoint, &provider) {
        tracing::info!(%endpoint, service_name, "exporting traces over OTLP");
    }
    Ok(Telemetry {
        provider,
        installed,
    })
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn log_layer(json: bool, terminal: bool, output: LogOutput) -> BoxedLayer {
    let layer = tracing_subscriber::fmt::layer();
    match (json, output) {
        (true, LogOutput::Stdout) => layer.json().flatten_event(true).boxed(),
        (true, LogOutput::Stderr) => layer
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
        (false, LogOutput::Stdout) => layer.with_ansi(terminal).boxed(),
        (false, LogOutput::Stderr) => layer
            .with_ansi(terminal)
            .with_writer(std::io::stderr)
            .boxed(),
    }
}

fn exporter(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let refuse = |message: String| TelemetryError::Exporter {
        endpoint: endpoint.to_owned(),
        message,
    };
    // The gRPC client lives on a tokio runtime: the caller's, or (for a
    // host with none, such as a Python process) one kept for the process.
    let _entered = match tokio::runtime::Handle::try_current() {
        Ok(_) => None,
        Err(_) => Some(export_runtime().map_err(|e| refuse(e.to_string()))?.enter()),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| refuse(e.to_string()))?;
    // OTEL_SERVICE_NAME (read by the SDK) wins over the process's default.
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder()
            .with_service_name(service_name.to_owned())
            .build()
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

static EXPORT_RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn export_runtime() -> std::io::Result<&'static tokio::runtime::Runtime> {
    if let Some(rt) = EXPORT_RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tasker-otlp")
        .enable_all()
        .build()?;
    Ok(EXPORT_RUNTIME.get_or_init(|| rt))
}

static PROCESS: OnceLock<Telemetry> = OnceLock::new();

/// [`init`] for hosts that cannot hold the returned guard — a worker
/// embedded in Python, Ruby or Node: the first call installs telemetry for
/// the life of the process, later calls do nothing. Call
/// [`flush_process`] before the host exits so the last spans are sent.
///
/// # Errors
/// As [`init`].
pub fn init_process(
    config: &TelemetryConfig,
    service_name: &str,
    output: LogOutput,
) -> Result<(), TelemetryError> {
    if PROCESS.get().is_some() {
        return Ok(());
    }
    let telemetry = init(config, service_name, output)?;
    // A racing first call keeps its own; this one's guard then drops.
    let _ = PROCESS.set(telemetry);
    Ok(())
}

/// Sends the spans buffered by [`init_process`]'s exporter, waiting for it.
pub fn flush_process() {
    if let Some(telemetry) = PROCESS.get() {
        telemetry.flush();
    }
}
