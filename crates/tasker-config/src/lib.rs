//! Tasker's typed configuration (SPEC §10).
//!
//! Configuration is TOML in layers, lowest first:
//!
//! 1. `config/tasker/base/*.toml` — every default, written once (compiled in);
//! 2. `config/tasker/environments/<TASKER_ENV>/*.toml` (compiled in);
//! 3. `$TASKER_CONFIG_DIR/base/*.toml` and
//!    `$TASKER_CONFIG_DIR/environments/<TASKER_ENV>/*.toml`, when set.
//!
//! Later layers win key by key. String values may use `${VAR}` and
//! `${VAR:-default}`. The merged table is read strictly — unknown keys and
//! wrong types are errors naming the key path — and then validated into
//! typed settings (`Duration`s, ranges, enums).
//!
//! ```
//! let config = tasker_config::ConfigLoader::new()
//!     .environment("test")
//!     .vars(|name| (name == "DATABASE_URL").then(|| "postgresql://db/tasker".to_owned()))
//!     .load()
//!     .unwrap();
//! assert_eq!(config.database.url, "postgresql://db/tasker");
//! assert_eq!(config.execution.default_timeout.as_secs(), 10);
//! ```

mod auth;
mod backpressure;
mod check;
mod circuit_breakers;
mod database;
mod error;
mod event_system;
mod execution;
mod grpc;
mod interpolate;
mod layers;
mod messaging;
mod orchestration;
mod redrive;
mod staleness;
mod telemetry;
mod web;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

pub use auth::{ApiKeyConfig, AuthConfig};
pub use backpressure::BackpressureConfig;
pub use circuit_breakers::{BreakerConfig, CircuitBreakersConfig};
pub use database::{DatabaseConfig, redact_url_password};
pub use error::ConfigError;
pub use event_system::{DeploymentMode, EventSystemConfig};
pub use execution::ExecutionConfig;
pub use grpc::GrpcConfig;
pub use layers::KNOWN_ENVIRONMENTS;
pub use messaging::{MessagingBackend, MessagingConfig, RabbitConfig};
pub use orchestration::{ExpansionLimitsConfig, OrchestrationConfig};
pub use redrive::RedriveConfig;
pub use staleness::StalenessConfig;
pub use telemetry::{LogFormat, TelemetryConfig};
pub use web::WebConfig;
pub use worker::WorkerConfig;

/// The whole validated configuration of one process.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskerConfig {
    /// The environment it was loaded for (`TASKER_ENV`).
    pub environment: String,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[messaging]`.
    pub messaging: MessagingConfig,
    /// `[execution]`.
    pub execution: ExecutionConfig,
    /// `[orchestration]`.
    pub orchestration: OrchestrationConfig,
    /// `[staleness]`.
    pub staleness: StalenessConfig,
    /// `[redrive]`.
    pub redrive: RedriveConfig,
    /// `[worker]`.
    pub worker: WorkerConfig,
    /// `[web]`.
    pub web: WebConfig,
    /// `[grpc]`.
    pub grpc: GrpcConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[telemetry]`.
    pub telemetry: TelemetryConfig,
    /// `[circuit_breakers]`.
    pub circuit_breakers: CircuitBreakersConfig,
    /// `[backpressure]`.
    pub backpressure: BackpressureConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: database::RawDatabase,
    messaging: messaging::RawMessaging,
    execution: execution::RawExecution,
    orchestration: orchestration::RawOrchestration,
    staleness: staleness::RawStaleness,
    redrive: redrive::RawRedrive,
    worker: worker::RawWorker,
    web: web::RawWeb,
    grpc: grpc::RawGrpc,
    auth: auth::RawAuth,
    telemetry: telemetry::RawTelemetry,
    circuit_breakers: circuit_breakers::RawCircuitBreakers,
    backpressure: backpressure::RawBackpressure,
}

type VarLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Loads configuration; by default from the process environment.
#[derive(Clone)]
pub struct ConfigLoader {
    environment: Option<String>,
    dir: Option<PathBuf>,
    vars: VarLookup,
    overrides: Vec<(String, toml::Value)>,
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigLoader {
    /// A loader that reads `TASKER_ENV`, `TASKER_CONFIG_DIR` and `${VAR}`s
    /// from the process environment.
    pub fn new() -> Self {
        Self {
            environment: None,
            dir: None,
            vars: Arc::new(|name| std::env::var(name).ok()),
            overrides: Vec::new(),
        }
    }

    /// Uses `environment` instead of `TASKER_ENV`.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Uses `dir` instead of `TASKER_CONFIG_DIR`.
    #[must_use]
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Resolves `${VAR}` (and `TASKER_ENV`, `TASKER_CONFIG_DIR`) with `lookup`
    /// instead of the process environment.
    #[must_use]
    pub fn vars(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.vars = Arc::new(lookup);
        self
    }

    /// Sets the key at dotted path `key` (e.g. `worker.concurrency`) to
    /// `value`, above every layer — for hosts that take settings as
    /// arguments (the foreign-language workers' keyword options). The
    /// replaced value's placeholders are never evaluated, so setting
    /// `database.url` works where `${DATABASE_URL}` is required. The result
    /// is validated like a file: an unknown key or a value out of range is
    /// an error naming the key.
    ///
    /// ```
    /// let config = tasker_config::ConfigLoader::new()
    ///     .environment("test")
    ///     .vars(|name| (name == "DATABASE_URL").then(|| "postgresql://db/tasker".to_owned()))
    ///     .set("worker.concurrency", toml::Value::Integer(3))
    ///     .load()
    ///     .unwrap();
    /// assert_eq!(config.worker.concurrency.get(), 3);
    /// ```
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: toml::Value) -> Self {
        self.overrides.push((key.into(), value));
        self
    }

    /// The environment this loader will use.
    pub fn resolved_environment(&self) -> String {
        self.environment
            .clone()
            .or_else(|| (self.vars)("TASKER_ENV").filter(|e| !e.is_empty()))
            .unwrap_or_else(|| "development".to_owned())
    }

    /// The merged, interpolated table before validation (what `config show`
    /// prints, after redaction).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or key at fault.
    pub fn merged(&self) -> Result<toml::Table, ConfigError> {
        let environment = self.resolved_environment();
        let dir = self
            .dir
            .clone()
            .or_else(|| (self.vars)("TASKER_CONFIG_DIR").map(PathBuf::from));
        let sources = layers::sources(&environment, dir.as_deref())?;
        let mut table = layers::merge(&sources)?;
        // Before interpolation: an overridden key's placeholder (say a
        // required `${DATABASE_URL}`) is never evaluated.
        for (key, value) in &self.overrides {
            layers::set_path(&mut table, key, value.clone())?;
        }
        interpolate::interpolate(&mut table, &*self.vars)?;
        Ok(table)
    }

    /// Loads and validates the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or key at fault.
    pub fn load(&self) -> Result<TaskerConfig, ConfigError> {
        let table = self.merged()?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
                ConfigError::Shape {
                    key: err.path().to_string(),
                    message: err.into_inner().message().to_owned(),
                }
            })?;
        Ok(TaskerConfig {
            environment: self.resolved_environment(),
            database: raw.database.validate()?,
            messaging: raw.messaging.validate()?,
            execution: raw.execution.validate()?,
            orchestration: raw.orchestration.validate()?,
            staleness: raw.staleness.validate()?,
            redrive: raw.redrive.validate()?,
            worker: raw.worker.validate((self.vars)("TASKER_TEMPLATE_PATH"))?,
            web: raw.web.validate()?,
            grpc: raw.grpc.validate()?,
            auth: raw.auth.validate()?,
            telemetry: raw.telemetry.validate()?,
            circuit_breakers: raw.circuit_breakers.validate()?,
            backpressure: raw.backpressure.validate()?,
        })
    }
}

/// Loads the configuration from the process environment.
///
/// # Errors
/// [`ConfigError`] naming the file or key at fault.
pub fn load() -> Result<TaskerConfig, ConfigError> {
    ConfigLoader::new().load()
}

/// A name for this process when configuration gives none:
/// `<role>-<host>-<pid>-<4 hex digits>`, unique enough to tell processes
/// apart in transition rows and logs.
pub fn process_identity(role: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{role}-{host}-{}-{:04x}",
        std::process::id(),
        nanos & 0xffff
    )
}
