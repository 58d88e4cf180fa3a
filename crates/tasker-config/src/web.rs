//! `[web]`: the REST API.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::check::{in_range, millis};
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWeb {
    enabled: bool,
    bind_address: String,
    request_timeout_ms: u64,
    max_body_bytes: usize,
    max_json_depth: usize,
}

/// How the REST API is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebConfig {
    /// Whether to serve it at all.
    pub enabled: bool,
    /// Listen address.
    pub bind_address: SocketAddr,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting.
    pub max_json_depth: usize,
}

impl RawWeb {
    pub(crate) fn validate(self) -> Result<WebConfig, ConfigError> {
        let bind_address = self
            .bind_address
            .parse()
            .map_err(|_| ConfigError::Invalid {
                key: "web.bind_address".into(),
                message: format!(
                    "`{}` is not an address like 0.0.0.0:8080",
                    self.bind_address
                ),
            })?;
        Ok(WebConfig {
            enabled: self.enabled,
            bind_address,
            request_timeout: millis(
                "web.request_timeout_ms",
                self.request_timeout_ms,
                100,
                600_000,
            )?,
            max_body_bytes: in_range(
                "web.max_body_bytes",
                self.max_body_bytes,
                1024,
                64 * 1024 * 1024,
            )?,
            max_json_depth: in_range("web.max_json_depth", self.max_json_depth, 2, 128)?,
        })
    }
}
