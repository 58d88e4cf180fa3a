//! What every binding does first: load the configuration with the host's
//! keyword options on top, and send the core's logs somewhere.

use tasker_config::{ConfigError, ConfigLoader, TaskerConfig};

use super::embedded::EmbeddedWorkerOptions;
use crate::registry::HandlerRegistry;

/// A binding's start options as they arrive from its host language.
#[derive(Debug)]
pub struct HostOptions<'a> {
    /// The configuration environment, instead of `TASKER_ENV`.
    pub environment: Option<&'a str>,
    /// A directory of TOML overrides, instead of `TASKER_CONFIG_DIR`.
    pub config_dir: Option<&'a str>,
    /// The host's keyword options as a JSON object of dotted keys.
    pub overrides_json: &'a str,
    /// The callables the host has handlers for.
    pub callables: Vec<String>,
    /// Also serve Rust's built-in `tasker::*` handlers.
    pub include_builtins: bool,
}

/// Everything a binding does before [`super::EmbeddedWorker::start`]: loads
/// the configuration ([`load_config`]), sets up telemetry for the process
/// ([`init_telemetry`]: logs to stderr, OTLP trace export when configured),
/// and picks the Rust handlers to serve beside the host's.
///
/// # Errors
/// [`ConfigError`] naming the key at fault.
pub fn prepare(options: HostOptions<'_>) -> Result<EmbeddedWorkerOptions, ConfigError> {
    let config = load_config(
        options.environment,
        options.config_dir,
        options.overrides_json,
    )?;
    init_telemetry(&config)?;
    let rust_handlers = if options.include_builtins {
        HandlerRegistry::with_builtins()
    } else {
        HandlerRegistry::new()
    };
    Ok(EmbeddedWorkerOptions {
        config,
        callables: options.callables,
        rust_handlers,
    })
}

/// Loads configuration the way every Tasker process does (TOML layers,
/// `TASKER_ENV`, `TASKER_CONFIG_DIR`, `${VAR}`s), with `environment` and
/// `config_dir` in place of those variables when given, and then the
/// host's keyword options: `overrides_json` is a JSON object of dotted keys
/// (`{"worker.concurrency": 8, "database.url": "…"}`), validated like a file.
///
/// # Errors
/// [`ConfigError`] naming the key at fault, or saying the overrides are not
/// a JSON object of TOML-representable values.
pub fn load_config(
    environment: Option<&str>,
    config_dir: Option<&str>,
    overrides_json: &str,
) -> Result<TaskerConfig, ConfigError> {
    let mut loader = ConfigLoader::new();
    if let Some(environment) = environment {
        loader = loader.environment(environment);
    }
    if let Some(dir) = config_dir {
        loader = loader.config_dir(dir);
    }
    let overrides: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(overrides_json).map_err(|e| ConfigError::Shape {
            key: "(options)".to_owned(),
            message: format!("not a JSON object of settings: {e}"),
        })?;
    for (key, value) in overrides {
        let value = toml::Value::try_from(&value).map_err(|e| ConfigError::Shape {
            key: key.clone(),
            message: format!("{value} is not a configuration value: {e}"),
        })?;
        loader = loader.set(key, value);
    }
    loader.load()
}

/// Sets up the process's telemetry from `config.telemetry` with
/// [`tasker_telemetry::init_process`]: the core's logs go to stderr
/// (standard output belongs to the host), filtered by `RUST_LOG` or
/// `log_level`, and spans are exported over OTLP when an endpoint is set.
/// The first call in a process installs it; later ones do nothing.
///
/// # Errors
/// [`ConfigError::Invalid`] on `telemetry.otlp_endpoint` when the exporter
/// cannot be built from it.
pub fn init_telemetry(config: &TaskerConfig) -> Result<(), ConfigError> {
    tasker_telemetry::init_process(
        &config.telemetry,
        "tasker-worker",
        tasker_telemetry::LogOutput::Stderr,
    )
    .map_err(|e| ConfigError::Invalid {
        key: "telemetry.otlp_endpoint".into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_land_on_their_keys_and_bad_ones_are_named() {
        let config = load_config(
            Some("test"),
            None,
            r#"{"worker.concurrency": 3, "database.url": "postgresql://h/db"}"#,
        )
        .unwrap();
        assert_eq!(config.worker.concurrency.get(), 3);
        assert_eq!(config.database.url, "postgresql://h/db");
        let err = load_config(Some("test"), None, r#"{"worker.concurrency": null}"#).unwrap_err();
        assert!(err.to_string().starts_with("worker.concurrency"), "{err}");
        let err = load_config(Some("test"), None, "[1]").unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }
}
