//! The DLQ: entry views, listings, counts, and the list, update and bulk
//! resolve requests.

use tasker_types::dlq::{
    DlqBulkResolve, DlqBulkResult, DlqEntryView, DlqFilter, DlqList, DlqListQuery, DlqReason,
    DlqStats, DlqStatus, DlqUpdate,
};
use tasker_types::ids::DlqEntryUuid;

use super::json;
use super::names::{parse_name, parse_optional_name, parse_optional_uuid};
use super::time::{optional_instant, optional_timestamp, timestamp};
use crate::v1;

impl From<DlqEntryView> for v1::DlqEntryView {
    fn from(entry: DlqEntryView) -> Self {
        Self {
            dlq_entry_uuid: entry.dlq_entry_uuid.to_string(),
            task_uuid: entry.task_uuid.to_string(),
            namespace: entry.namespace,
            name: entry.name,
            reason: entry.reason.as_str().to_owned(),
            status: entry.status.as_str().to_owned(),
            original_state: entry.original_state,
            snapshot_json: json::text(&entry.snapshot),
            resolution_notes: entry.resolution_notes,
            resolved_by: entry.resolved_by,
            created_at: Some(timestamp(entry.created_at)),
            updated_at: Some(timestamp(entry.updated_at)),
            resolved_at: optional_timestamp(entry.resolved_at),
        }
    }
}

impl From<DlqList> for v1::DlqList {
    fn from(list: DlqList) -> Self {
        Self {
            entries: list.entries.into_iter().map(Into::into).collect(),
            next_cursor: list.next_cursor.map(|c| c.to_string()),
        }
    }
}

impl From<Vec<DlqEntryView>> for v1::ListDlqEntriesForTaskResponse {
    fn from(entries: Vec<DlqEntryView>) -> Self {
        Self {
            entries: entries.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<DlqStats> for v1::DlqStats {
    fn from(stats: DlqStats) -> Self {
        Self {
            total: stats.total,
            open: stats.open,
            by_reason: stats.by_reason,
            by_status: stats.by_status,
            oldest_open_at: optional_timestamp(stats.oldest_open_at),
        }
    }
}

impl From<DlqBulkResult> for v1::DlqBulkResult {
    fn from(result: DlqBulkResult) -> Self {
        Self {
            updated: result.updated,
        }
    }
}

impl TryFrom<v1::ListDlqEntriesRequest> for DlqListQuery {
    type Error = String;

    fn try_from(request: v1::ListDlqEntriesRequest) -> Result<Self, String> {
        Ok(Self {
            status: parse_optional_name("status", "DLQ status", request.status.as_deref())?,
            reason: parse_optional_name("reason", "DLQ reason", request.reason.as_deref())?,
            namespace: request.namespace,
            created_before: optional_instant("created_before", request.created_before.as_ref())?,
            before: parse_optional_uuid("before", request.before.as_deref())?,
            limit: request.limit,
        })
    }
}

impl From<DlqListQuery> for v1::ListDlqEntriesRequest {
    fn from(query: DlqListQuery) -> Self {
        Self {
            status: query.status.map(|s| s.as_str().to_owned()),
            reason: query.reason.map(|r| r.as_str().to_owned()),
            namespace: query.namespace,
            created_before: optional_timestamp(query.created_before),
            before: query.before.map(|b| b.to_string()),
            limit: query.limit,
        }
    }
}

/// The three fields of an update, wherever they sit; `prefix` names where
/// (`update.` inside a bulk request) so errors point at the right field.
fn update(
    prefix: &str,
    status: &str,
    resolution_notes: Option<String>,
    resolved_by: Option<String>,
) -> Result<DlqUpdate, String> {
    Ok(DlqUpdate {
        status: parse_name::<DlqStatus>(&format!("{prefix}status"), "DLQ status", status)?,
        resolution_notes,
        resolved_by,
    })
}

/// The update part of the request; the adapter reads `entry_uuid` itself
/// (it is the REST path, not the body).
impl TryFrom<v1::UpdateDlqEntryRequest> for DlqUpdate {
    type Error = String;

    fn try_from(request: v1::UpdateDlqEntryRequest) -> Result<Self, String> {
        update(
            "",
            &request.status,
            request.resolution_notes,
            request.resolved_by,
        )
    }
}

impl v1::UpdateDlqEntryRequest {
    /// The request applying `update` to entry `entry`.
    pub fn new(entry: DlqEntryUuid, update: DlqUpdate) -> Self {
        Self {
            entry_uuid: entry.to_string(),
            status: update.status.as_str().to_owned(),
            resolution_notes: update.resolution_notes,
            resolved_by: update.resolved_by,
        }
    }
}

impl From<DlqUpdate> for v1::DlqUpdate {
    fn from(update: DlqUpdate) -> Self {
        Self {
            status: update.status.as_str().to_owned(),
            resolution_notes: update.resolution_notes,
            resolved_by: update.resolved_by,
        }
    }
}

fn filter(filter: v1::DlqFilter) -> Result<DlqFilter, String> {
    Ok(DlqFilter {
        status: parse_optional_name("filter.status", "DLQ status", filter.status.as_deref())?,
        reason: parse_optional_name::<DlqReason>(
            "filter.reason",
            "DLQ reason",
            filter.reason.as_deref(),
        )?,
        namespace: filter.namespace,
        created_before: optional_instant("filter.created_before", filter.created_before.as_ref())?,
    })
}

impl From<DlqFilter> for v1::DlqFilter {
    fn from(filter: DlqFilter) -> Self {
        Self {
            status: filter.status.map(|s| s.as_str().to_owned()),
            reason: filter.reason.map(|r| r.as_str().to_owned()),
            namespace: filter.namespace,
            created_before: optional_timestamp(filter.created_before),
        }
    }
}

impl TryFrom<v1::ResolveMatchingDlqEntriesRequest> for DlqBulkResolve {
    type Error = String;

    fn try_from(request: v1::ResolveMatchingDlqEntriesRequest) -> Result<Self, String> {
        // REST defaults an absent filter (match every open entry) and
        // requires the update; so does this.
        let wanted = request
            .update
            .ok_or_else(|| "`update`: required".to_owned())?;
        Ok(Self {
            filter: request.filter.map(filter).transpose()?.unwrap_or_default(),
            update: update(
                "update.",
                &wanted.status,
                wanted.resolution_notes,
                wanted.resolved_by,
            )?,
        })
    }
}

impl From<DlqBulkResolve> for v1::ResolveMatchingDlqEntriesRequest {
    fn from(request: DlqBulkResolve) -> Self {
        Self {
            filter: Some(request.filter.into()),
            update: Some(request.update.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::DateTime;
    use serde_json::json;
    use tasker_types::ids::TaskUuid;

    use super::*;

    #[test]
    fn list_queries_round_trip_and_name_bad_fields() {
        let query = DlqListQuery {
            status: Some(DlqStatus::Investigating),
            reason: Some(DlqReason::StalenessTimeout),
            namespace: Some("ns".into()),
            created_before: DateTime::from_timestamp(9, 5),
            before: Some(DlqEntryUuid::new()),
            limit: Some(5),
        };
        let message = v1::ListDlqEntriesRequest::from(query.clone());
        assert_eq!(DlqListQuery::try_from(message).unwrap(), query);
        let bad = v1::ListDlqEntriesRequest {
            reason: Some("bored".into()),
            ..Default::default()
        };
        assert_eq!(
            DlqListQuery::try_from(bad).unwrap_err(),
            "`reason`: unknown DLQ reason `bored`"
        );
    }

    #[test]
    fn updates_round_trip() {
        let update = DlqUpdate {
            status: DlqStatus::Resolved,
            resolution_notes: Some("reset the step".into()),
            resolved_by: Some("ops".into()),
        };
        let entry = DlqEntryUuid::new();
        let message = v1::UpdateDlqEntryRequest::new(entry, update.clone());
        assert_eq!(message.entry_uuid, entry.to_string());
        assert_eq!(DlqUpdate::try_from(message).unwrap(), update);
        let bad = v1::UpdateDlqEntryRequest {
            status: "done".into(),
            ..Default::default()
        };
        assert_eq!(
            DlqUpdate::try_from(bad).unwrap_err(),
            "`status`: unknown DLQ status `done`"
        );
    }

    #[test]
    fn bulk_resolutions_round_trip_and_require_the_update() {
        let request = DlqBulkResolve {
            filter: DlqFilter {
                status: Some(DlqStatus::Pending),
                reason: Some(DlqReason::ManualDlq),
                namespace: None,
                created_before: DateTime::from_timestamp(100, 0),
            },
            update: DlqUpdate {
                status: DlqStatus::Cancelled,
                resolution_notes: None,
                resolved_by: Some("ops".into()),
            },
        };
        let message = v1::ResolveMatchingDlqEntriesRequest::from(request.clone());
        assert_eq!(DlqBulkResolve::try_from(message.clone()).unwrap(), request);
        let no_filter = v1::ResolveMatchingDlqEntriesRequest {
            filter: None,
            ..message.clone()
        };
        assert_eq!(
            DlqBulkResolve::try_from(no_filter).unwrap().filter,
            DlqFilter::default()
        );
        let no_update = v1::ResolveMatchingDlqEntriesRequest {
            update: None,
            ..message.clone()
        };
        assert_eq!(
            DlqBulkResolve::try_from(no_update).unwrap_err(),
            "`update`: required"
        );
        let bad_status = v1::ResolveMatchingDlqEntriesRequest {
            update: Some(v1::DlqUpdate {
                status: "x".into(),
                ..Default::default()
            }),
            ..message
        };
        assert_eq!(
            DlqBulkResolve::try_from(bad_status).unwrap_err(),
            "`update.status`: unknown DLQ status `x`"
        );
    }

    #[test]
    fn entries_and_stats_carry_every_field() {
        let at = DateTime::from_timestamp(50, 0).unwrap();
        let entry = DlqEntryView {
            dlq_entry_uuid: DlqEntryUuid::new(),
            task_uuid: TaskUuid::new(),
            namespace: "ns".into(),
            name: "t".into(),
            reason: DlqReason::MaxRetriesExceeded,
            status: DlqStatus::ResolvedManually,
            original_state: "error".into(),
            snapshot: json!({"steps": [{"attempts": 3}]}),
            resolution_notes: None,
            resolved_by: Some("ops".into()),
            created_at: at,
            updated_at: at,
            resolved_at: Some(at),
        };
        let message = v1::DlqEntryView::from(entry.clone());
        assert_eq!(message.reason, "max_retries_exceeded");
        assert_eq!(message.status, "resolved_manually");
        assert_eq!(message.snapshot_json, r#"{"steps":[{"attempts":3}]}"#);
        assert_eq!(message.resolved_at, Some(timestamp(at)));
        let list = v1::DlqList::from(DlqList {
            entries: vec![entry],
            next_cursor: None,
        });
        assert_eq!(list.entries.len(), 1);

        let stats = DlqStats {
            total: 3,
            open: 1,
            by_reason: BTreeMap::from([("manual_dlq".to_owned(), 3)]),
            by_status: BTreeMap::from([("pending".to_owned(), 1), ("resolved".to_owned(), 2)]),
            oldest_open_at: Some(at),
        };
        let message = v1::DlqStats::from(stats.clone());
        assert_eq!(message.by_status, stats.by_status);
        assert_eq!(message.oldest_open_at, Some(timestamp(at)));
    }
}
