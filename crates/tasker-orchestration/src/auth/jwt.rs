//! JWT bearer tokens: HS256 and RS256, with issuer, audience, expiry and
//! not-before checked under a configurable clock skew.

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use tasker_config::AuthConfig;
use tasker_types::auth::TokenClaims;

use super::authenticator::AuthSetupError;
use super::permission::Grants;
use super::principal::{AuthMethod, Principal};
use crate::services::error::ServiceError;

/// The keys tokens are checked with.
pub(super) struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
    issuer: String,
    audience: String,
    leeway: u64,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("JwtVerifier")
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

fn refused(reason: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::unauthorized(message).with_details(json!({ "reason": reason }))
}

impl JwtVerifier {
    /// Accepts no token at all.
    pub(super) fn none() -> Self {
        Self {
            hs256: None,
            rs256: None,
            issuer: String::new(),
            audience: String::new(),
            leeway: 0,
        }
    }

    pub(super) fn from_config(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        let pem =
            match (
                &config.jwt_rs256_public_key,
                &config.jwt_rs256_public_key_path,
            ) {
                (Some(text), _) => Some(text.clone()),
                (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|source| {
                    AuthSetupError::KeyFile {
                        path: path.display().to_string(),
                        source,
                    }
                })?),
                (None, None) => None,
            };
        let rs256 = pem
            .map(|pem| {
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| AuthSetupError::Key {
                    what: "RS256 public key".into(),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Self {
            hs256: config
                .jwt_hs256_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.as_bytes())),
            rs256,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            leeway: config.clock_skew_seconds,
        })
    }

    /// The token's subject and permissions, when it checks out.
    pub(super) fn verify(&self, token: &str) -> Result<Principal, ServiceError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refused("malformed", "the bearer token is not a JWT"))?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or_else(|| {
            refused(
                "algorithm",
                format!("{:?} tokens are not accepted by this server", header.alg),
            )
        })?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<TokenClaims>(token, key, &validation)
            .map_err(|e| match e.kind() {
                JwtErrorKind::ExpiredSignature => refused("expired", "the token has expired"),
                JwtErrorKind::ImmatureSignature => {
                    refused("not_yet_valid", "the token is not valid yet (nbf)")
                }
                JwtErrorKind::InvalidIssuer => {
                    refused("issuer", "the token was issued by someone else (iss)")
                }
                JwtErrorKind::InvalidAudience => {
                    refused("audience", "the token is meant for another audience (aud)")
                }
                JwtErrorKind::InvalidSignature => {
                    refused("signature", "the token's signature does not verify")
                }
                JwtErrorKind::MissingRequiredClaim(claim) => {
                    refused("claims", format!("the token lacks the `{claim}` claim"))
                }
                _ => refused("malformed", format!("the token is invalid: {e}")),
            })?
            .claims;
        if claims.sub.trim().is_empty() {
            return Err(refused("claims", "the token's `sub` is empty"));
        }
        let grants = Grants::parse(&claims.permissions)
            .map_err(|e| refused("permissions", format!("the token grants {e}")))?;
        Ok(Principal::authenticated(
            claims.sub,
            grants,
            AuthMethod::Jwt,
        ))
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn verifier() -> JwtVerifier {
        JwtVerifier {
            hs256: Some(DecodingKey::from_secret(SECRET.as_bytes())),
            rs256: None,
            issuer: "tasker".into(),
            audience: "tasker-api".into(),
            leeway: 5,
        }
    }

    fn token(edit: impl FnOnce(&mut TokenClaims), secret: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = TokenClaims {
            sub: "alice".into(),
            iss: "tasker".into(),
            aud: "tasker-api".into(),
            exp: now + 60,
            nbf: now - 1,
            iat: now,
            permissions: vec!["tasks:*".into()],
        };
        edit(&mut claims);
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn reason(err: &ServiceError) -> &str {
        err.details()["reason"].as_str().unwrap()
    }

    #[test]
    fn a_good_token_is_its_subject() {
        let p = verifier().verify(&token(|_| {}, SECRET)).unwrap();
        assert_eq!(p.subject(), Some("alice"));
        assert!(p.allows(crate::auth::Permission::TasksCancel));
        assert!(!p.allows(crate::auth::Permission::DlqRead));
    }

    #[test]
    fn each_bad_claim_is_named() {
        let v = verifier();
        let now = chrono::Utc::now().timestamp();
        type Edit = Box<dyn FnOnce(&mut TokenClaims)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(move |c| c.exp = now - 60), "expired"),
            (Box::new(move |c| c.nbf = now + 60), "not_yet_valid"),
            (Box::new(|c| c.iss = "other".into()), "issuer"),
            (Box::new(|c| c.aud = "other".into()), "audience"),
            (
                Box::new(|c| c.permissions = vec!["tasks:fly".into()]),
                "permissions",
            ),
        ];
        for (edit, expected) in cases {
            let err = v.verify(&token(edit, SECRET)).unwrap_err();
            assert_eq!(reason(&err), expected, "{}", err.message());
        }
        let forged = v
            .verify(&token(|_| {}, "another-secret-another-secret-xx"))
            .unwrap_err();
        assert_eq!(reason(&forged), "signature");
        assert_eq!(reason(&v.verify("not.a.jwt").unwrap_err()), "malformed");
    }

    #[test]
    fn skew_is_tolerated_up_to_the_leeway() {
        let now = chrono::Utc::now().timestamp();
        assert!(
            verifier()
                .verify(&token(|c| c.exp = now - 2, SECRET))
                .is_ok()
        );
    }

    #[test]
    fn algorithms_without_a_key_are_refused() {
        let v = JwtVerifier::none();
        assert_eq!(
            reason(&v.verify(&token(|_| {}, SECRET)).unwrap_err()),
            "algorithm"
        );
    }
}
