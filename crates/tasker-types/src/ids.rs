//! Typed identifiers. Every key is a UUIDv7 generated in Rust (SPEC §5), wrapped in
//! a newtype so a step id can never be passed where a task id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (read from the database or a message).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies one task (one run of a template).
    TaskUuid
);
uuid_id!(
    /// Identifies one workflow step of one task.
    StepUuid
);
uuid_id!(
    /// Identifies one registered template version (a row of `named_tasks`).
    TemplateUuid
);
uuid_id!(
    /// Follows a task through every log line, message and span (SPEC §1).
    CorrelationId
);
uuid_id!(
    /// Identifies one dead-letter-queue investigation entry.
    DlqEntryUuid
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_v7_and_round_trip_through_text() {
        let first = TaskUuid::new();
        let second = TaskUuid::new();
        assert_eq!(first.as_uuid().get_version_num(), 7);
        assert!(first < second, "v7 ids sort by creation time");
        let parsed: TaskUuid = first.to_string().parse().unwrap();
        assert_eq!(parsed, first);
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            format!("\"{first}\"")
        );
    }
}
