//! What credentials carry, shared by the server that checks them and the
//! CLI that makes them (SPEC §8.3).

use serde::{Deserialize, Serialize};

use crate::identity::sha256_hex;

/// The claims of a Tasker JWT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Who the token speaks for; recorded as the actor of operator actions.
    pub sub: String,
    /// Issuer; must equal `auth.jwt_issuer`.
    pub iss: String,
    /// Audience; must equal `auth.jwt_audience`.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not valid before, seconds since the epoch.
    pub nbf: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Granted permissions (`resource:action`, `resource:*`, `*`).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// The stored form of an API key: `sha256:<64 hex digits>`. Keys are
/// random and long (`tasker-ctl auth hash-key` makes 32 random bytes), so a
/// fast hash is enough: there is no dictionary to guess from, and what the
/// configuration holds cannot be replayed as a key.
pub fn hash_api_key(key: &str) -> String {
    format!("sha256:{}", sha256_hex(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hashes_are_prefixed_sha256() {
        let hash = hash_api_key("abc");
        assert_eq!(
            hash,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
