//! Who is calling: the subject of a checked credential and what it may do.

use super::permission::{Grants, Permission};
use crate::services::error::{ErrorKind, ServiceError};

/// How the caller proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// Auth is off: nobody is authenticated and everything is allowed.
    Disabled,
    /// A JWT bearer token.
    Jwt,
    /// An API key.
    ApiKey,
}

/// The caller of a service function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    subject: Option<String>,
    grants: Grants,
    method: AuthMethod,
}

impl Principal {
    /// The caller when auth is off: anonymous, allowed everything.
    pub fn unauthenticated() -> Self {
        Self {
            subject: None,
            grants: Grants::everything(),
            method: AuthMethod::Disabled,
        }
    }

    /// An authenticated caller.
    pub fn authenticated(subject: impl Into<String>, grants: Grants, method: AuthMethod) -> Self {
        Self {
            subject: Some(subject.into()),
            grants,
            method,
        }
    }

    /// The authenticated subject (a token's `sub`, an API key's name);
    /// `None` when auth is off.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// How it was authenticated.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// Whether the caller holds `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.grants.allows(permission)
    }

    /// Succeeds when the caller holds `permission`.
    ///
    /// # Errors
    /// [`ErrorKind::Forbidden`] naming the missing permission.
    pub fn require(&self, permission: Permission) -> Result<(), ServiceError> {
        if self.allows(permission) {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorKind::Forbidden,
            "forbidden",
            format!(
                "`{}` lacks the permission `{permission}`",
                self.subject().unwrap_or("the caller")
            ),
        )
        .with_details(serde_json::json!({ "required": permission.as_str() })))
    }

    /// Who an operator action is recorded as: the authenticated subject; a
    /// name given in the request only when nobody is authenticated (auth
    /// off), so a body field can never impersonate anyone.
    pub fn actor<'a>(&'a self, claimed: Option<&'a str>) -> Option<&'a str> {
        match self.method {
            AuthMethod::Disabled => claimed.filter(|c| !c.trim().is_empty()),
            AuthMethod::Jwt | AuthMethod::ApiKey => self.subject(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_actors_cannot_be_impersonated() {
        let alice = Principal::authenticated(
            "alice",
            Grants::parse(&["steps:resolve"]).unwrap(),
            AuthMethod::Jwt,
        );
        assert_eq!(alice.actor(Some("mallory")), Some("alice"));
        assert_eq!(alice.actor(None), Some("alice"));
        let nobody = Principal::unauthenticated();
        assert_eq!(nobody.actor(Some("ops-bob")), Some("ops-bob"));
        assert_eq!(nobody.actor(Some("  ")), None);
    }

    #[test]
    fn require_names_the_missing_permission() {
        let reader = Principal::authenticated(
            "ci",
            Grants::parse(&["tasks:read"]).unwrap(),
            AuthMethod::ApiKey,
        );
        assert!(reader.require(Permission::TasksRead).is_ok());
        let err = reader.require(Permission::TasksCreate).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Forbidden);
        assert!(err.message().contains("tasks:create"), "{}", err.message());
        assert!(
            Principal::unauthenticated()
                .require(Permission::DlqUpdate)
                .is_ok()
        );
    }
}
