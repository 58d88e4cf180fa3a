//! The dead-letter queue's vocabulary and API shapes (SPEC §4.10): why a
//! task needs a person, where the investigation stands, and the requests
//! that list, count and resolve entries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{DlqEntryUuid, TaskUuid};
use crate::state::ParseStateError;

/// Why a task was sent to the DLQ. Mirrored by `tasks_dlq.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DlqReason {
    /// The task sat in a waiting or in-process state beyond its threshold.
    StalenessTimeout,
    /// A step used up its attempts.
    MaxRetriesExceeded,
    /// Its steps sat on a queue no worker took them from.
    WorkerUnavailable,
    /// The task's graph could not be evaluated.
    DependencyCycleDetected,
    /// An operator sent it.
    ManualDlq,
}

/// Where an investigation stands. Mirrored by `tasks_dlq.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DlqStatus {
    /// Recorded; nobody has looked yet.
    Pending,
    /// Somebody is looking.
    Investigating,
    /// Closed: the task was repaired (e.g. a step reset or completed by hand).
    Resolved,
    /// Closed: the task was declared done by hand.
    ResolvedManually,
    /// Closed: the task cannot be saved.
    PermanentlyFailed,
    /// Closed: the entry was withdrawn.
    Cancelled,
}

macro_rules! names {
    ($ty:ident, $machine:literal, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The name stored in the database and shown by the API.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ParseStateError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| ParseStateError {
                    machine: $machine,
                    value: s.to_owned(),
                })
            }
        }
    };
}

names!(DlqReason, "dlq reason",
    StalenessTimeout => "staleness_timeout",
    MaxRetriesExceeded => "max_retries_exceeded",
    WorkerUnavailable => "worker_unavailable",
    DependencyCycleDetected => "dependency_cycle_detected",
    ManualDlq => "manual_dlq",
);

names!(DlqStatus, "dlq status",
    Pending => "pending",
    Investigating => "investigating",
    Resolved => "resolved",
    ResolvedManually => "resolved_manually",
    PermanentlyFailed => "permanently_failed",
    Cancelled => "cancelled",
);

impl DlqStatus {
    /// Whether the investigation is still open (one open entry per task).
    pub const fn is_open(self) -> bool {
        matches!(self, DlqStatus::Pending | DlqStatus::Investigating)
    }

    /// Whether an entry in this status may be moved to `to`: open entries
    /// move anywhere except back to `pending`; closed ones stay closed.
    pub const fn may_become(self, to: DlqStatus) -> bool {
        match (self, to) {
            (_, DlqStatus::Pending) | (DlqStatus::Investigating, DlqStatus::Investigating) => false,
            (from, _) => from.is_open(),
        }
    }
}

/// A DLQ entry as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqEntryView {
    /// The entry.
    pub dlq_entry_uuid: DlqEntryUuid,
    /// Its task.
    pub task_uuid: TaskUuid,
    /// The task's namespace.
    pub namespace: String,
    /// The task's template name.
    pub name: String,
    /// Why it was recorded.
    pub reason: DlqReason,
    /// Where the investigation stands.
    pub status: DlqStatus,
    /// The task's state when it was recorded.
    pub original_state: String,
    /// The task and its steps when it was recorded, and what was detected.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub snapshot: Value,
    /// What the investigation found or did.
    pub resolution_notes: Option<String>,
    /// Who closed it.
    pub resolved_by: Option<String>,
    /// Recorded.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Closed.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Filters of DLQ listings and bulk resolution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams, utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct DlqFilter {
    /// Only entries in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DlqStatus>,
    /// Only entries recorded for this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DlqReason>,
    /// Only tasks of this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only entries recorded before this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<DateTime<Utc>>,
}

/// Filters and paging of `GET /v1/dlq`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct DlqListQuery {
    /// Only entries in this status.
    pub status: Option<DlqStatus>,
    /// Only entries recorded for this reason.
    pub reason: Option<DlqReason>,
    /// Only tasks of this namespace.
    pub namespace: Option<String>,
    /// Only entries recorded before this instant (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub before: Option<DlqEntryUuid>,
    /// Page size, 1 to 100 (default 25).
    pub limit: Option<u32>,
}

impl DlqListQuery {
    /// The filter part of the query.
    pub fn filter(&self) -> DlqFilter {
        DlqFilter {
            status: self.status,
            reason: self.reason,
            namespace: self.namespace.clone(),
            created_before: self.created_before,
        }
    }
}

/// A page of DLQ entries, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqList {
    /// The entries.
    pub entries: Vec<DlqEntryView>,
    /// Pass as `before` for the next (older) page; absent on the last.
    pub next_cursor: Option<DlqEntryUuid>,
}

/// Counts of DLQ entries (`GET /v1/dlq/stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqStats {
    /// Every entry.
    pub total: u64,
    /// Entries still open (`pending` or `investigating`).
    pub open: u64,
    /// Entries by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Entries by status.
    pub by_status: BTreeMap<String, u64>,
    /// When the oldest open entry was recorded.
    pub oldest_open_at: Option<DateTime<Utc>>,
}

/// An investigation's outcome (`PATCH /v1/dlq/entry/{uuid}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DlqUpdate {
    /// The new status.
    pub status: DlqStatus,
    /// What was found or done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_notes: Option<String>,
    /// Who did it (required when closing an entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

/// Resolve every open entry matching a filter (`POST /v1/dlq/resolve`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DlqBulkResolve {
    /// Which open entries (a `status` here narrows to `pending` or `investigating`).
    #[serde(default)]
    pub filter: DlqFilter,
    /// What they become.
    pub update: DlqUpdate,
}

/// How many entries a bulk resolution changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqBulkResult {
    /// Entries updated.
    pub updated: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for reason in DlqReason::ALL {
            assert_eq!(reason.as_str().parse::<DlqReason>().unwrap(), *reason);
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        for status in DlqStatus::ALL {
            assert_eq!(status.as_str().parse::<DlqStatus>().unwrap(), *status);
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn open_entries_close_once_and_stay_closed() {
        use DlqStatus::*;
        assert!(Pending.may_become(Investigating));
        assert!(Pending.may_become(Resolved));
        assert!(Investigating.may_become(PermanentlyFailed));
        assert!(!Investigating.may_become(Pending));
        assert!(!Investigating.may_become(Investigating));
        for closed in [Resolved, ResolvedManually, PermanentlyFailed, Cancelled] {
            assert!(!closed.is_open());
            for to in DlqStatus::ALL {
                assert!(!closed.may_become(*to), "{closed} → {to}");
            }
        }
    }
}
