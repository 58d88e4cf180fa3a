//! Permissions: `resource:action` strings, granted with `resource:*` and `*`
//! wildcards (SPEC §8.3). Pure: what a grant covers is decided here alone.

use std::fmt;
use std::str::FromStr;

/// One thing an operation needs to be allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Create tasks.
    TasksCreate,
    /// Read, list and watch tasks.
    TasksRead,
    /// Cancel tasks.
    TasksCancel,
    /// Read steps and their audit trails.
    StepsRead,
    /// Repair steps: reset, resolve or complete them by hand.
    StepsResolve,
    /// List, show and validate templates.
    TemplatesRead,
    /// Register templates.
    TemplatesWrite,
    /// Read the DLQ.
    DlqRead,
    /// Record investigations on DLQ entries.
    DlqUpdate,
    /// Read analytics.
    AnalyticsRead,
}

impl Permission {
    /// Every permission, in a stable order.
    pub const ALL: &'static [Permission] = &[
        Permission::TasksCreate,
        Permission::TasksRead,
        Permission::TasksCancel,
        Permission::StepsRead,
        Permission::StepsResolve,
        Permission::TemplatesRead,
        Permission::TemplatesWrite,
        Permission::DlqRead,
        Permission::DlqUpdate,
        Permission::AnalyticsRead,
    ];

    /// The permission's `resource:action` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::TasksCreate => "tasks:create",
            Permission::TasksRead => "tasks:read",
            Permission::TasksCancel => "tasks:cancel",
            Permission::StepsRead => "steps:read",
            Permission::StepsResolve => "steps:resolve",
            Permission::TemplatesRead => "templates:read",
            Permission::TemplatesWrite => "templates:write",
            Permission::DlqRead => "dlq:read",
            Permission::DlqUpdate => "dlq:update",
            Permission::AnalyticsRead => "analytics:read",
        }
    }

    /// The resource part (`tasks` of `tasks:create`).
    pub fn resource(self) -> &'static str {
        self.as_str().split_once(':').map_or("", |(r, _)| r)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that is not one of [`Permission::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// What a credential was granted: exact permissions, whole resources
/// (`tasks:*`) or everything (`*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    entries: Vec<Grant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Grant {
    Everything,
    Resource(String),
    Exact(Permission),
}

impl Grants {
    /// Every permission (`*`).
    pub fn everything() -> Self {
        Self {
            entries: vec![Grant::Everything],
        }
    }

    /// Parses grant strings, refusing any that names no permission (a typo
    /// in a token or key would otherwise silently grant nothing).
    ///
    /// # Errors
    /// [`UnknownPermission`] for the first bad entry.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownPermission> {
        let entries = names
            .iter()
            .map(|n| {
                let name = n.as_ref().trim();
                if name == "*" {
                    return Ok(Grant::Everything);
                }
                if let Some(resource) = name.strip_suffix(":*") {
                    return if Permission::ALL.iter().any(|p| p.resource() == resource) {
                        Ok(Grant::Resource(resource.to_owned()))
                    } else {
                        Err(UnknownPermission(name.to_owned()))
                    };
                }
                name.parse().map(Grant::Exact)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Whether `permission` is granted.
    pub fn allows(&self, permission: Permission) -> bool {
        self.entries.iter().any(|g| match g {
            Grant::Everything => true,
            Grant::Resource(r) => r == permission.resource(),
            Grant::Exact(p) => *p == permission,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), *p);
        }
        assert!("tasks:delete".parse::<Permission>().is_err());
    }

    #[test]
    fn exact_grants_cover_only_themselves() {
        let grants = Grants::parse(&["tasks:read"]).unwrap();
        assert!(grants.allows(Permission::TasksRead));
        assert!(!grants.allows(Permission::TasksCreate));
        assert!(!grants.allows(Permission::StepsRead));
    }

    #[test]
    fn resource_wildcards_cover_that_resource() {
        let grants = Grants::parse(&["tasks:*", "dlq:read"]).unwrap();
        assert!(grants.allows(Permission::TasksCreate));
        assert!(grants.allows(Permission::TasksCancel));
        assert!(grants.allows(Permission::DlqRead));
        assert!(!grants.allows(Permission::DlqUpdate));
        assert!(!grants.allows(Permission::TemplatesRead));
    }

    #[test]
    fn star_covers_everything_and_nothing_covers_nothing() {
        let all = Grants::parse(&["*"]).unwrap();
        let none = Grants::parse::<&str>(&[]).unwrap();
        for p in Permission::ALL {
            assert!(all.allows(*p));
            assert!(!none.allows(*p));
        }
    }

    #[test]
    fn unknown_names_and_resources_are_refused() {
        assert_eq!(
            Grants::parse(&["tasks:read", "task:read"]).unwrap_err(),
            UnknownPermission("task:read".into())
        );
        assert!(Grants::parse(&["widgets:*"]).is_err());
        assert!(Grants::parse(&["tasks:"]).is_err());
    }
}
