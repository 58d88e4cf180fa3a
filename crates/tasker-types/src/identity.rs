//! Task identity and idempotency (SPEC §4.8): a SHA-256 over canonical JSON, so
//! the order of keys in a context never changes a task's identity.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How a template decides whether two task requests are the same task.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStrategy {
    /// Same template and same context (canonically) → same task.
    #[default]
    Strict,
    /// Same template and same `idempotency_key` → same task; the key is required.
    CallerProvided,
    /// Every request creates a new task (unless the caller supplies a key).
    AlwaysUnique,
}

impl IdentityStrategy {
    /// The strategy's name as stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentityStrategy::Strict => "strict",
            IdentityStrategy::CallerProvided => "caller_provided",
            IdentityStrategy::AlwaysUnique => "always_unique",
        }
    }
}

impl std::str::FromStr for IdentityStrategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Self::Strict),
            "caller_provided" => Ok(Self::CallerProvided),
            "always_unique" => Ok(Self::AlwaysUnique),
            other => Err(format!("`{other}` is not an identity strategy")),
        }
    }
}

/// A request that cannot be given an identity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The template uses `caller_provided` and the request has no key.
    #[error("template uses identity strategy `caller_provided`: `idempotency_key` is required")]
    IdempotencyKeyRequired,
    /// The key is empty or longer than 255 characters.
    #[error("`idempotency_key` must be 1 to 255 characters long")]
    InvalidIdempotencyKey,
}

/// The template a task belongs to, as far as identity is concerned.
#[derive(Clone, Copy, Debug)]
pub struct TemplateKey<'a> {
    /// Namespace.
    pub namespace: &'a str,
    /// Template name.
    pub name: &'a str,
    /// Template version.
    pub version: &'a str,
}

/// The identity hash of a task request, or `None` when the task is unique by
/// construction.
///
/// A supplied `idempotency_key` always decides identity (explicit caller
/// intent wins over the template's default); otherwise `strict` hashes the
/// canonical context and `always_unique` has no identity.
///
/// # Errors
/// [`IdentityError`] when `caller_provided` has no key, or the key is malformed.
pub fn identity_hash(
    strategy: IdentityStrategy,
    template: TemplateKey<'_>,
    context: &Value,
    idempotency_key: Option<&str>,
) -> Result<Option<String>, IdentityError> {
    let payload = match (strategy, idempotency_key) {
        (_, Some(key)) => {
            if key.is_empty() || key.chars().count() > 255 {
                return Err(IdentityError::InvalidIdempotencyKey);
            }
            format!("key\n{key}")
        }
        (IdentityStrategy::CallerProvided, None) => {
            return Err(IdentityError::IdempotencyKeyRequired);
        }
        (IdentityStrategy::Strict, None) => format!("context\n{}", canonical_json(context)),
        (IdentityStrategy::AlwaysUnique, None) => return Ok(None),
    };
    let input = format!(
        "tasker-identity-v1\n{}\n{}\n{}\n{payload}",
        template.namespace, template.name, template.version
    );
    Ok(Some(sha256_hex(input.as_bytes())))
}

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Serializes `value` with object keys sorted (by UTF-8 bytes) at every
/// depth and no insignificant whitespace. Numbers keep serde_json's text, so
/// `1` and `1.0` stay distinct.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const T: TemplateKey<'static> = TemplateKey {
        namespace: "payments",
        name: "refund",
        version: "1.0.0",
    };

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"d":1,"c":2}],"x":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1}"#
        );
    }

    #[test]
    fn key_order_never_changes_a_strict_identity() {
        let a = json!({"order": 7, "items": [{"sku": "x", "qty": 2}], "note": "é\"quoted\""});
        let b: Value = serde_json::from_str(
            r#"{"note":"é\"quoted\"","items":[{"qty":2,"sku":"x"}],"order":7}"#,
        )
        .unwrap();
        let ha = identity_hash(IdentityStrategy::Strict, T, &a, None).unwrap();
        let hb = identity_hash(IdentityStrategy::Strict, T, &b, None).unwrap();
        assert_eq!(ha, hb);
        assert_eq!(ha.as_ref().map(String::len), Some(64));
    }

    #[test]
    fn strict_identity_depends_on_context_and_template() {
        let ctx = json!({"order": 7});
        let base = identity_hash(IdentityStrategy::Strict, T, &ctx, None).unwrap();
        let other_ctx =
            identity_hash(IdentityStrategy::Strict, T, &json!({"order": 8}), None).unwrap();
        let other_version = identity_hash(
            IdentityStrategy::Strict,
            TemplateKey {
                version: "1.0.1",
                ..T
            },
            &ctx,
            None,
        )
        .unwrap();
        assert_ne!(base, other_ctx);
        assert_ne!(base, other_version);
    }

    #[test]
    fn caller_provided_requires_a_key_and_ignores_the_context() {
        assert_eq!(
            identity_hash(IdentityStrategy::CallerProvided, T, &json!({}), None),
            Err(IdentityError::IdempotencyKeyRequired)
        );
        let a = identity_hash(
            IdentityStrategy::CallerProvided,
            T,
            &json!({"a": 1}),
            Some("k-1"),
        );
        let b = identity_hash(
            IdentityStrategy::CallerProvided,
            T,
            &json!({"a": 2}),
            Some("k-1"),
        );
        assert_eq!(a, b);
        assert_eq!(
            identity_hash(IdentityStrategy::CallerProvided, T, &json!({}), Some("")),
            Err(IdentityError::InvalidIdempotencyKey)
        );
    }

    #[test]
    fn always_unique_has_no_identity_unless_a_key_is_given() {
        assert_eq!(
            identity_hash(IdentityStrategy::AlwaysUnique, T, &json!({}), None),
            Ok(None)
        );
        assert!(
            identity_hash(IdentityStrategy::AlwaysUnique, T, &json!({}), Some("k"))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
