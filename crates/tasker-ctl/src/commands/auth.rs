//! `tasker-ctl auth …`: the credentials `[auth]` takes — RS256 key pairs,
//! signed JWTs, and API keys with their stored hashes.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::{OsRng, RngCore};
use serde_json::json;
use tasker_types::auth::{TokenClaims, hash_api_key};

use crate::cli::{AuthCommand, Output};
use crate::exit::{CtlResult, FAILED, Failure, USAGE};
use crate::output::json as print_json;

pub(crate) fn run(output: Output, command: AuthCommand) -> CtlResult {
    match command {
        AuthCommand::GenerateKeys { out_dir, bits } => generate_keys(output, &out_dir, bits),
        AuthCommand::Token {
            subject,
            permissions,
            expires,
            private_key,
            secret,
            issuer,
            audience,
        } => {
            let lifetime = parse_lifetime(&expires).map_err(|m| Failure::new(USAGE, m))?;
            let now = chrono::Utc::now().timestamp();
            let claims = TokenClaims {
                sub: subject,
                iss: issuer,
                aud: audience,
                exp: now + lifetime,
                nbf: now,
                iat: now,
                permissions,
            };
            let token = sign(&claims, private_key.as_deref(), secret.as_deref())?;
            match output {
                Output::Json => print_json(&json!({ "token": token, "claims": claims })),
                Output::Table => {
                    println!("{token}");
                    Ok(())
                }
            }
        }
        AuthCommand::HashKey { key } => {
            let generated = key.is_none();
            let key = key.unwrap_or_else(random_key);
            let hash = hash_api_key(&key);
            match output {
                Output::Json => {
                    print_json(&json!({ "key": generated.then_some(&key), "key_hash": hash }))
                }
                Output::Table => {
                    if generated {
                        println!(
                            "key       {key}\n          (shown once: give it to the client, keep only the hash)"
                        );
                    }
                    println!("key_hash  {hash}");
                    Ok(())
                }
            }
        }
    }
}

/// Seconds in `raw`: a number, optionally followed by `s`, `m`, `h` or `d`.
fn parse_lifetime(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        other => {
            return Err(format!(
                "--expires: unknown unit `{other}` (use s, m, h or d)"
            ));
        }
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("--expires: `{raw}` is not a duration like 3600, 15m or 1h"))?;
    if n <= 0 {
        return Err("--expires must be positive".into());
    }
    n.checked_mul(scale)
        .filter(|s| *s <= 366 * 86_400)
        .ok_or_else(|| "--expires is longer than a year".to_owned())
}

fn sign(
    claims: &TokenClaims,
    private_key: Option<&Path>,
    secret: Option<&str>,
) -> CtlResult<String> {
    let (header, key) = match (private_key, secret) {
        (Some(path), _) => {
            let pem = std::fs::read(path)
                .map_err(|e| Failure::new(USAGE, format!("cannot read {}: {e}", path.display())))?;
            let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                Failure::new(
                    USAGE,
                    format!("{} is not an RSA private key: {e}", path.display()),
                )
            })?;
            (Header::new(Algorithm::RS256), key)
        }
        (None, Some(secret)) => {
            if secret.len() < 32 {
                return Err(Failure::new(
                    USAGE,
                    "the HS256 secret must be at least 32 bytes",
                ));
            }
            (
                Header::new(Algorithm::HS256),
                EncodingKey::from_secret(secret.as_bytes()),
            )
        }
        (None, None) => {
            return Err(Failure::new(
                USAGE,
                "give --private-key (RS256) or --secret / TASKER_JWT_SECRET (HS256)",
            ));
        }
    };
    jsonwebtoken::encode(&header, claims, &key)
        .map_err(|e| Failure::new(FAILED, format!("cannot sign the token: {e}")))
}

/// 32 random bytes from the operating system, as 64 hex digits.
fn random_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("tsk_{}", tasker_types::identity::sha256_hex(&bytes))
}

fn generate_keys(output: Output, dir: &Path, bits: u32) -> CtlResult {
    let private = rsa::RsaPrivateKey::new(&mut OsRng, bits as usize)
        .map_err(|e| Failure::new(FAILED, format!("cannot generate a key: {e}")))?;
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Failure::new(FAILED, e.to_string()))?;
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Failure::new(FAILED, e.to_string()))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::new(USAGE, format!("cannot create {}: {e}", dir.display())))?;
    let private_path = dir.join("tasker-jwt-private.pem");
    let public_path = dir.join("tasker-jwt-public.pem");
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(Failure::new(
                USAGE,
                format!("{} exists; not overwriting a key", path.display()),
            ));
        }
    }
    write_private(&private_path, private_pem.as_bytes())?;
    std::fs::write(&public_path, public_pem.as_bytes()).map_err(|e| {
        Failure::new(
            FAILED,
            format!("cannot write {}: {e}", public_path.display()),
        )
    })?;
    match output {
        Output::Json => print_json(&json!({
            "private_key": private_path, "public_key": public_path, "bits": bits
        })),
        Output::Table => {
            println!(
                "private key  {} (signs tokens: keep it secret)",
                private_path.display()
            );
            println!(
                "public key   {} (set auth.jwt_rs256_public_key_path to it)",
                public_path.display()
            );
            Ok(())
        }
    }
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> CtlResult {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| Failure::new(FAILED, format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_people_write_them() {
        assert_eq!(parse_lifetime("3600"), Ok(3600));
        assert_eq!(parse_lifetime("15m"), Ok(900));
        assert_eq!(parse_lifetime("1h"), Ok(3600));
        assert_eq!(parse_lifetime("2d"), Ok(172_800));
        assert!(parse_lifetime("0").is_err());
        assert!(parse_lifetime("1w").is_err());
        assert!(parse_lifetime("soon").is_err());
        assert!(parse_lifetime("400d").is_err());
    }

    #[test]
    fn random_keys_differ_and_hash_to_the_stored_form() {
        let (a, b) = (random_key(), random_key());
        assert_ne!(a, b);
        assert!(hash_api_key(&a).starts_with("sha256:"));
    }
}
