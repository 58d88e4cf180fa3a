//! Turns the credentials a request carries into a [`Principal`].

use tasker_config::AuthConfig;

use super::api_key::ApiKeys;
use super::jwt::JwtVerifier;
use super::principal::Principal;
use crate::services::error::ServiceError;

/// Why auth settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The RS256 public key file cannot be read.
    #[error("cannot read the RS256 public key {path}: {source}")]
    KeyFile {
        /// The configured path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A key that does not parse.
    #[error("invalid {what}: {message}")]
    Key {
        /// Which key.
        what: String,
        /// Why.
        message: String,
    },
}

/// Checks credentials against the `[auth]` settings.
#[derive(Debug)]
pub struct Authenticator {
    enabled: bool,
    jwt: JwtVerifier,
    keys: ApiKeys,
}

impl Authenticator {
    /// Auth off: every caller is [`Principal::unauthenticated`].
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            jwt: JwtVerifier::none(),
            keys: ApiKeys::default(),
        }
    }

    /// An authenticator for `config` (reads the RS256 key file, if named).
    ///
    /// # Errors
    /// [`AuthSetupError`] for an unreadable or invalid key, or an API key
    /// granting an unknown permission.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        if !config.enabled {
            return Ok(Self::disabled());
        }
        Ok(Self {
            enabled: true,
            jwt: JwtVerifier::from_config(config)?,
            keys: ApiKeys::from_config(&config.api_keys)?,
        })
    }

    /// Whether credentials are required.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The caller behind the raw `Authorization` and `X-API-Key` values. A
    /// bearer token is checked when present (a bad one is not rescued by a
    /// key), an API key otherwise.
    ///
    /// # Errors
    /// [`ServiceError`] of kind unauthorized, saying what was wrong.
    pub fn authenticate_headers(
        &self,
        authorization: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<Principal, ServiceError> {
        if !self.enabled {
            return Ok(Principal::unauthenticated());
        }
        if let Some(header) = authorization {
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ServiceError::unauthorized("the Authorization header must be `Bearer <token>`")
                })?;
            return self.jwt.verify(token);
        }
        if let Some(key) = api_key {
            return self.keys.verify(key.trim());
        }
        Err(ServiceError::unauthorized(
            "credentials required: send `Authorization: Bearer <token>` or `X-API-Key: <key>`",
        ))
    }
}
