//! API keys (`X-API-Key`): stored as SHA-256 hashes, compared in constant
//! time, each with its own permissions.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tasker_config::ApiKeyConfig;

use super::authenticator::AuthSetupError;
use super::permission::Grants;
use super::principal::{AuthMethod, Principal};
use crate::services::error::ServiceError;

#[derive(Debug)]
struct StoredKey {
    name: String,
    hash: [u8; 32],
    grants: Grants,
}

/// The accepted keys.
#[derive(Debug, Default)]
pub(super) struct ApiKeys {
    keys: Vec<StoredKey>,
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.strip_prefix("sha256:")?;
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ApiKeys {
    pub(super) fn from_config(keys: &[ApiKeyConfig]) -> Result<Self, AuthSetupError> {
        let keys = keys
            .iter()
            .map(|k| {
                let hash = parse_hash(&k.key_hash).ok_or_else(|| AuthSetupError::Key {
                    what: format!("API key `{}`", k.name),
                    message: "key_hash is not `sha256:` and 64 hex digits".into(),
                })?;
                let grants = Grants::parse(&k.permissions).map_err(|e| AuthSetupError::Key {
                    what: format!("API key `{}`", k.name),
                    message: e.to_string(),
                })?;
                Ok(StoredKey {
                    name: k.name.clone(),
                    hash,
                    grants,
                })
            })
            .collect::<Result<_, AuthSetupError>>()?;
        Ok(Self { keys })
    }

    /// The key's owner. Every stored hash is compared, in constant time, so
    /// neither the time taken nor an early exit tells which key came close.
    pub(super) fn verify(&self, presented: &str) -> Result<Principal, ServiceError> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&StoredKey> = None;
        for key in &self.keys {
            if bool::from(key.hash.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        found
            .map(|k| Principal::authenticated(k.name.clone(), k.grants.clone(), AuthMethod::ApiKey))
            .ok_or_else(|| ServiceError::unauthorized("the API key is not recognised"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permission;

    fn keys() -> ApiKeys {
        ApiKeys::from_config(&[ApiKeyConfig {
            name: "ci".into(),
            key_hash: tasker_types::auth::hash_api_key("s3cret-key"),
            permissions: vec!["tasks:read".into()],
        }])
        .unwrap()
    }

    #[test]
    fn a_known_key_is_its_owner_with_its_permissions() {
        let principal = keys().verify("s3cret-key").unwrap();
        assert_eq!(principal.subject(), Some("ci"));
        assert!(principal.allows(Permission::TasksRead));
        assert!(!principal.allows(Permission::TasksCreate));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(keys().verify("s3cret-kez").is_err());
        assert!(keys().verify("").is_err());
    }

    #[test]
    fn keys_granting_unknown_permissions_are_refused_at_setup() {
        let err = ApiKeys::from_config(&[ApiKeyConfig {
            name: "ci".into(),
            key_hash: tasker_types::auth::hash_api_key("k"),
            permissions: vec!["tasks:launch".into()],
        }])
        .unwrap_err();
        assert!(err.to_string().contains("tasks:launch"), "{err}");
    }
}
