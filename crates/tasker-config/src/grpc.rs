//! `[grpc]`: the gRPC API (SPEC §8.2).

use std::net::SocketAddr;

use serde::Deserialize;

use crate::check::in_range;
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrpc {
    enabled: bool,
    bind_address: String,
    max_watchers: usize,
    watch_buffer: usize,
    max_message_bytes: usize,
    watch_fallback_poll_ms: u64,
}

/// How the gRPC API is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcConfig {
    /// Whether to serve it at all.
    pub enabled: bool,
    /// Listen address.
    pub bind_address: SocketAddr,
    /// Most `WatchTask` streams open at once; more are refused as unavailable.
    pub max_watchers: usize,
    /// Events buffered per watcher before it waits for the client.
    pub watch_buffer: usize,
    /// Largest request message accepted.
    pub max_message_bytes: usize,
    /// How often every watcher re-reads its task even without a
    /// notification (a transaction already writing when the watch began
    /// notified nobody).
    pub watch_fallback_poll: std::time::Duration,
}

impl RawGrpc {
    pub(crate) fn validate(self) -> Result<GrpcConfig, ConfigError> {
        let bind_address = self
            .bind_address
            .parse()
            .map_err(|_| ConfigError::Invalid {
                key: "grpc.bind_address".into(),
                message: format!(
                    "`{}` is not an address like 0.0.0.0:9190",
                    self.bind_address
                ),
            })?;
        Ok(GrpcConfig {
            enabled: self.enabled,
            bind_address,
            max_watchers: in_range("grpc.max_watchers", self.max_watchers, 1, 100_000)?,
            watch_buffer: in_range("grpc.watch_buffer", self.watch_buffer, 1, 65_536)?,
            max_message_bytes: in_range(
                "grpc.max_message_bytes",
                self.max_message_bytes,
                1024,
                64 * 1024 * 1024,
            )?,
            watch_fallback_poll: crate::check::millis(
                "grpc.watch_fallback_poll_ms",
                self.watch_fallback_poll_ms,
                100,
                600_000,
            )?,
        })
    }
}
