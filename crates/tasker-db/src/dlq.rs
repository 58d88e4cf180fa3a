//! `tasker.tasks_dlq`: investigation records for tasks that need a person
//! (SPEC §4.10). At most one open entry per task (a partial unique index);
//! closed entries stay as history.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use tasker_types::dlq::{DlqFilter, DlqReason, DlqStats, DlqStatus};
use tasker_types::ids::{DlqEntryUuid, TaskUuid};
use uuid::Uuid;

use crate::error::DbError;

/// An entry as stored, with its task's namespace and name: the API's view
/// of it, field for field.
pub use tasker_types::dlq::DlqEntryView as DlqEntry;

/// An entry to record.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDlqEntry {
    /// The task.
    pub task_uuid: TaskUuid,
    /// Why.
    pub reason: DlqReason,
    /// The task's state now.
    pub original_state: String,
    /// The task and its steps now, and what was detected.
    pub snapshot: Value,
}

/// Records `entry` unless its task already has an open one. Returns the new
/// entry's id, or `None` when an open entry existed (nothing written).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn insert_open(
    conn: &mut PgConnection,
    entry: &NewDlqEntry,
) -> Result<Option<DlqEntryUuid>, DbError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO tasker.tasks_dlq (dlq_entry_uuid, task_uuid, reason, original_state, snapshot)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (task_uuid) WHERE status IN ('pending', 'investigating') DO NOTHING
           RETURNING dlq_entry_uuid"#,
        Uuid::now_v7(),
        entry.task_uuid.as_uuid(),
        entry.reason.as_str(),
        entry.original_state,
        entry.snapshot
    )
    .fetch_optional(conn)
    .await?;
    Ok(id.map(DlqEntryUuid::from_uuid))
}

/// One entry.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn get(
    executor: impl PgExecutor<'_>,
    entry: DlqEntryUuid,
) -> Result<Option<DlqEntry>, DbError> {
    let row = sqlx::query_as!(
        DlqRecord,
        r#"SELECT d.dlq_entry_uuid, d.task_uuid, t.namespace, t.name, d.reason, d.status,
                  d.original_state, d.snapshot, d.resolution_notes, d.resolved_by,
                  d.created_at, d.updated_at, d.resolved_at
           FROM tasker.tasks_dlq d JOIN tasker.tasks t USING (task_uuid)
           WHERE d.dlq_entry_uuid = $1"#,
        entry.as_uuid()
    )
    .fetch_optional(executor)
    .await?;
    row.map(DlqEntry::try_from).transpose()
}

/// Every entry of `task`, newest first.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn list_for_task(
    executor: impl PgExecutor<'_>,
    task: TaskUuid,
) -> Result<Vec<DlqEntry>, DbError> {
    let rows = sqlx::query_as!(
        DlqRecord,
        r#"SELECT d.dlq_entry_uuid, d.task_uuid, t.namespace, t.name, d.reason, d.status,
                  d.original_state, d.snapshot, d.resolution_notes, d.resolved_by,
                  d.created_at, d.updated_at, d.resolved_at
           FROM tasker.tasks_dlq d JOIN tasker.tasks t USING (task_uuid)
           WHERE d.task_uuid = $1 ORDER BY d.dlq_entry_uuid DESC"#,
        task.as_uuid()
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(DlqEntry::try_from).collect()
}

/// Entries matching `filter`, newest first, older than `before` when given.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn list(
    executor: impl PgExecutor<'_>,
    filter: &DlqFilter,
    before: Option<DlqEntryUuid>,
    limit: u32,
) -> Result<Vec<DlqEntry>, DbError> {
    let rows = sqlx::query_as!(
        DlqRecord,
        r#"SELECT d.dlq_entry_uuid, d.task_uuid, t.namespace, t.name, d.reason, d.status,
                  d.original_state, d.snapshot, d.resolution_notes, d.resolved_by,
                  d.created_at, d.updated_at, d.resolved_at
           FROM tasker.tasks_dlq d JOIN tasker.tasks t USING (task_uuid)
           WHERE ($1::text IS NULL OR d.status = $1)
             AND ($2::text IS NULL OR d.reason = $2)
             AND ($3::text IS NULL OR t.namespace = $3)
             AND ($4::timestamptz IS NULL OR d.created_at < $4)
             AND ($5::uuid IS NULL OR d.dlq_entry_uuid < $5)
           ORDER BY d.dlq_entry_uuid DESC
           LIMIT $6"#,
        filter.status.map(DlqStatus::as_str),
        filter.reason.map(DlqReason::as_str),
        filter.namespace,
        filter.created_before,
        before.map(|b| b.as_uuid()),
        i64::from(limit),
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter().map(DlqEntry::try_from).collect()
}

/// Counts by reason and status (one grouped scan of the table, which holds
/// one row per investigation, not per step).
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn stats(executor: impl PgExecutor<'_>) -> Result<DlqStats, DbError> {
    let rows = sqlx::query!(
        r#"SELECT reason, status, count(*) AS "count!", min(created_at) AS "oldest!"
           FROM tasker.tasks_dlq GROUP BY reason, status"#
    )
    .fetch_all(executor)
    .await?;
    let mut stats = DlqStats::default();
    for row in rows {
        let count = u64::try_from(row.count).unwrap_or(0);
        let status: DlqStatus = row
            .status
            .parse()
            .map_err(|e: tasker_types::state::ParseStateError| DbError::Corrupt(e.to_string()))?;
        stats.total += count;
        if status.is_open() {
            stats.open += count;
            stats.oldest_open_at = Some(
                stats
                    .oldest_open_at
                    .map_or(row.oldest, |o| o.min(row.oldest)),
            );
        }
        *stats.by_reason.entry(row.reason).or_default() += count;
        *stats.by_status.entry(row.status).or_default() += count;
    }
    Ok(stats)
}

/// An investigation's outcome to record.
#[derive(Clone, Debug, PartialEq)]
pub struct DlqChange<'a> {
    /// The new status.
    pub status: DlqStatus,
    /// Notes (replace the old ones when given).
    pub resolution_notes: Option<&'a str>,
    /// Who acted.
    pub resolved_by: Option<&'a str>,
}

/// Moves `entry` to `change.status` when its status allows it; closing
/// stamps `resolved_at`.
///
/// # Errors
/// [`DbError::DlqEntryNotFound`]; [`DbError::DlqStatusConflict`] when the
/// entry is closed or the move goes backwards.
pub async fn update(
    conn: &mut PgConnection,
    entry: DlqEntryUuid,
    change: &DlqChange<'_>,
) -> Result<DlqEntry, DbError> {
    let current = sqlx::query_scalar!(
        "SELECT status FROM tasker.tasks_dlq WHERE dlq_entry_uuid = $1 FOR UPDATE",
        entry.as_uuid()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::DlqEntryNotFound(entry))?;
    let from: DlqStatus = current
        .parse()
        .map_err(|e: tasker_types::state::ParseStateError| DbError::Corrupt(e.to_string()))?;
    if !from.may_become(change.status) {
        return Err(DbError::DlqStatusConflict {
            entry,
            from,
            to: change.status,
        });
    }
    sqlx::query!(
        r#"UPDATE tasker.tasks_dlq
           SET status = $2, resolution_notes = COALESCE($3, resolution_notes),
               resolved_by = COALESCE($4, resolved_by), updated_at = now(),
               resolved_at = CASE WHEN $5 THEN now() ELSE resolved_at END
           WHERE dlq_entry_uuid = $1"#,
        entry.as_uuid(),
        change.status.as_str(),
        change.resolution_notes,
        change.resolved_by,
        !change.status.is_open()
    )
    .execute(&mut *conn)
    .await?;
    get(&mut *conn, entry)
        .await?
        .ok_or(DbError::DlqEntryNotFound(entry))
}

/// Moves every open entry matching `filter` to `change.status` at once.
/// Returns how many changed.
///
/// # Errors
/// [`DbError::DlqStatusConflict`] (with a nil entry) when `change.status`
/// is `pending`, which no open entry can move to.
pub async fn update_matching(
    conn: &mut PgConnection,
    filter: &DlqFilter,
    change: &DlqChange<'_>,
) -> Result<u64, DbError> {
    let from: Vec<String> = [DlqStatus::Pending, DlqStatus::Investigating]
        .into_iter()
        .filter(|s| filter.status.is_none_or(|f| f == *s) && s.may_become(change.status))
        .map(|s| s.as_str().to_owned())
        .collect();
    if change.status == DlqStatus::Pending {
        return Err(DbError::DlqStatusConflict {
            entry: DlqEntryUuid::from_uuid(Uuid::nil()),
            from: DlqStatus::Investigating,
            to: change.status,
        });
    }
    let changed = sqlx::query!(
        r#"UPDATE tasker.tasks_dlq d
           SET status = $1, resolution_notes = COALESCE($2, d.resolution_notes),
               resolved_by = COALESCE($3, d.resolved_by), updated_at = now(),
               resolved_at = CASE WHEN $4 THEN now() ELSE d.resolved_at END
           FROM tasker.tasks t
           WHERE t.task_uuid = d.task_uuid AND d.status = ANY($5)
             AND ($6::text IS NULL OR d.reason = $6)
             AND ($7::text IS NULL OR t.namespace = $7)
             AND ($8::timestamptz IS NULL OR d.created_at < $8)"#,
        change.status.as_str(),
        change.resolution_notes,
        change.resolved_by,
        !change.status.is_open(),
        &from,
        filter.reason.map(DlqReason::as_str),
        filter.namespace,
        filter.created_before,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed)
}

struct DlqRecord {
    dlq_entry_uuid: Uuid,
    task_uuid: Uuid,
    namespace: String,
    name: String,
    reason: String,
    status: String,
    original_state: String,
    snapshot: Value,
    resolution_notes: Option<String>,
    resolved_by: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    resolved_at: Option<DateTime<Utc>>,
}

impl TryFrom<DlqRecord> for DlqEntry {
    type Error = DbError;

    fn try_from(r: DlqRecord) -> Result<Self, DbError> {
        let corrupt = |e: tasker_types::state::ParseStateError| DbError::Corrupt(e.to_string());
        Ok(DlqEntry {
            dlq_entry_uuid: DlqEntryUuid::from_uuid(r.dlq_entry_uuid),
            task_uuid: TaskUuid::from_uuid(r.task_uuid),
            namespace: r.namespace,
            name: r.name,
            reason: r.reason.parse().map_err(corrupt)?,
            status: r.status.parse().map_err(corrupt)?,
            original_state: r.original_state,
            snapshot: r.snapshot,
            resolution_notes: r.resolution_notes,
            resolved_by: r.resolved_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            resolved_at: r.resolved_at,
        })
    }
}
