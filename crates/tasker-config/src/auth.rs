//! `[auth]`: who may call the APIs (SPEC §8.3). Off by default; secrets come
//! from the environment through `${VAR}` placeholders.

use std::path::PathBuf;

use serde::Deserialize;

use crate::check::in_range;
use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    enabled: bool,
    jwt_issuer: String,
    jwt_audience: String,
    jwt_hs256_secret: String,
    jwt_rs256_public_key: String,
    jwt_rs256_public_key_path: String,
    clock_skew_seconds: u64,
    #[serde(default)]
    api_keys: Vec<RawApiKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    name: String,
    key_hash: String,
    permissions: Vec<String>,
}

/// One accepted API key: its SHA-256 hash, never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyConfig {
    /// Who the key belongs to; recorded as the actor of its operations.
    pub name: String,
    /// `sha256:<64 hex digits>` of the key (`tasker-ctl auth hash-key`).
    pub key_hash: String,
    /// What it may do (`resource:action`, `resource:*`, `*`).
    pub permissions: Vec<String>,
}

/// Authentication and permission settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// Whether credentials are required at all.
    pub enabled: bool,
    /// The `iss` every token must carry.
    pub jwt_issuer: String,
    /// The `aud` every token must carry.
    pub jwt_audience: String,
    /// The HS256 shared secret; `None` refuses HS256 tokens.
    pub jwt_hs256_secret: Option<String>,
    /// The RS256 public key (PEM text); `None` unless given inline.
    pub jwt_rs256_public_key: Option<String>,
    /// A file holding the RS256 public key (PEM).
    pub jwt_rs256_public_key_path: Option<PathBuf>,
    /// Leeway on `exp` and `nbf`, for clocks that disagree a little.
    pub clock_skew_seconds: u64,
    /// Accepted API keys.
    pub api_keys: Vec<ApiKeyConfig>,
}

impl AuthConfig {
    /// Whether any RS256 key is configured.
    pub fn has_rs256(&self) -> bool {
        self.jwt_rs256_public_key.is_some() || self.jwt_rs256_public_key_path.is_some()
    }
}

fn non_empty(value: String) -> Option<String> {
    Some(value).filter(|v| !v.trim().is_empty())
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

impl RawAuth {
    pub(crate) fn validate(self) -> Result<AuthConfig, ConfigError> {
        let mut api_keys = Vec::with_capacity(self.api_keys.len());
        for (i, key) in self.api_keys.into_iter().enumerate() {
            let at = |field: &str| format!("auth.api_keys[{i}].{field}");
            if key.name.trim().is_empty() {
                return Err(invalid(&at("name"), "must not be empty"));
            }
            let hex = key.key_hash.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    &at("key_hash"),
                    "must be `sha256:` and 64 hex digits (see `tasker-ctl auth hash-key`)",
                ));
            }
            if api_keys.iter().any(|k: &ApiKeyConfig| k.name == key.name) {
                return Err(invalid(
                    &at("name"),
                    format!("`{}` is listed twice", key.name),
                ));
            }
            api_keys.push(ApiKeyConfig {
                name: key.name,
                key_hash: format!("sha256:{}", hex.to_ascii_lowercase()),
                permissions: key.permissions,
            });
        }
        let config = AuthConfig {
            enabled: self.enabled,
            jwt_issuer: self.jwt_issuer,
            jwt_audience: self.jwt_audience,
            jwt_hs256_secret: non_empty(self.jwt_hs256_secret),
            jwt_rs256_public_key: non_empty(self.jwt_rs256_public_key),
            jwt_rs256_public_key_path: non_empty(self.jwt_rs256_public_key_path).map(PathBuf::from),
            clock_skew_seconds: in_range(
                "auth.clock_skew_seconds",
                self.clock_skew_seconds,
                0,
                600,
            )?,
            api_keys,
        };
        if config
            .jwt_hs256_secret
            .as_ref()
            .is_some_and(|s| s.len() < 32)
        {
            return Err(invalid(
                "auth.jwt_hs256_secret",
                "must be at least 32 bytes: a short HS256 secret can be guessed offline",
            ));
        }
        if config.enabled
            && config.jwt_hs256_secret.is_none()
            && !config.has_rs256()
            && config.api_keys.is_empty()
        {
            return Err(invalid(
                "auth.enabled",
                "auth is on but no credential could ever pass: set jwt_hs256_secret, \
                 jwt_rs256_public_key(_path) or api_keys",
            ));
        }
        if config.enabled && (config.jwt_issuer.is_empty() || config.jwt_audience.is_empty()) {
            return Err(invalid(
                "auth.jwt_issuer",
                "issuer and audience must be set when auth is on",
            ));
        }
        Ok(config)
    }
}
