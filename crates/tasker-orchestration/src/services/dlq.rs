//! DLQ operations (SPEC §4.10): list, count, show a task's entries, record
//! an investigation's outcome, and resolve many entries by filter.

use tasker_db::dlq::{self, DlqChange};
use tasker_types::dlq::{
    DlqBulkResolve, DlqBulkResult, DlqEntryView, DlqList, DlqListQuery, DlqStats, DlqUpdate,
};
use tasker_types::ids::{DlqEntryUuid, TaskUuid};

use crate::Orchestrator;
use crate::error::OrchestrationError;
use crate::services::tasks::{DEFAULT_PAGE, MAX_PAGE};

/// Longest `resolution_notes` accepted.
const MAX_NOTES: usize = 10_000;

/// A page of entries, newest first.
///
/// # Errors
/// [`OrchestrationError::Db`] on database failure.
pub async fn list(
    orchestrator: &Orchestrator,
    query: DlqListQuery,
) -> Result<DlqList, OrchestrationError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let mut rows = dlq::list(
        orchestrator.pool(),
        &query.filter(),
        query.before,
        limit + 1,
    )
    .await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| rows.last().map(|r| r.dlq_entry_uuid))
        .flatten();
    Ok(DlqList {
        entries: rows,
        next_cursor,
    })
}

/// Counts by reason and status.
///
/// # Errors
/// [`OrchestrationError::Db`] on database failure.
pub async fn stats(orchestrator: &Orchestrator) -> Result<DlqStats, OrchestrationError> {
    Ok(dlq::stats(orchestrator.pool()).await?)
}

/// Every entry of a task, newest first.
///
/// # Errors
/// [`OrchestrationError::TaskNotFound`].
pub async fn for_task(
    orchestrator: &Orchestrator,
    task: TaskUuid,
) -> Result<Vec<DlqEntryView>, OrchestrationError> {
    tasker_db::task::get(orchestrator.pool(), task)
        .await?
        .ok_or(OrchestrationError::TaskNotFound(task))?;
    Ok(dlq::list_for_task(orchestrator.pool(), task).await?)
}

/// Records an investigation's outcome on one entry.
///
/// # Errors
/// [`OrchestrationError::BadRequest`] when closing without `resolved_by`;
/// `Db(DlqEntryNotFound)`; `Db(DlqStatusConflict)` for a closed entry.
pub async fn update(
    orchestrator: &Orchestrator,
    entry: DlqEntryUuid,
    update: DlqUpdate,
) -> Result<DlqEntryView, OrchestrationError> {
    check(&update)?;
    let mut tx = orchestrator.pool().begin().await?;
    let updated = dlq::update(&mut tx, entry, &change(&update)).await?;
    tx.commit().await?;
    tracing::info!(dlq_entry_uuid = %entry, status = updated.status.as_str(),
        resolved_by = ?update.resolved_by, "DLQ entry updated");
    Ok(updated)
}

/// Moves every open entry matching the filter at once.
///
/// # Errors
/// As [`update`].
pub async fn resolve_matching(
    orchestrator: &Orchestrator,
    request: DlqBulkResolve,
) -> Result<DlqBulkResult, OrchestrationError> {
    check(&request.update)?;
    if request.filter.status.is_some_and(|s| !s.is_open()) {
        return Err(OrchestrationError::BadRequest(
            "`filter.status` may only narrow to `pending` or `investigating`: closed entries stay closed".into(),
        ));
    }
    let mut tx = orchestrator.pool().begin().await?;
    let updated = dlq::update_matching(&mut tx, &request.filter, &change(&request.update)).await?;
    tx.commit().await?;
    tracing::info!(updated, status = request.update.status.as_str(),
        resolved_by = ?request.update.resolved_by, "DLQ entries resolved in bulk");
    Ok(DlqBulkResult { updated })
}

fn check(update: &DlqUpdate) -> Result<(), OrchestrationError> {
    let by = update.resolved_by.as_deref().map(str::trim).unwrap_or("");
    if !update.status.is_open() && by.is_empty() {
        return Err(OrchestrationError::BadRequest(format!(
            "`resolved_by` is required to move an entry to `{}`",
            update.status
        )));
    }
    if by.chars().count() > 255 {
        return Err(OrchestrationError::BadRequest(
            "`resolved_by` must be at most 255 characters".into(),
        ));
    }
    if update
        .resolution_notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTES)
    {
        return Err(OrchestrationError::BadRequest(format!(
            "`resolution_notes` must be at most {MAX_NOTES} characters"
        )));
    }
    Ok(())
}

fn change(update: &DlqUpdate) -> DlqChange<'_> {
    DlqChange {
        status: update.status,
        resolution_notes: update.resolution_notes.as_deref(),
        resolved_by: update.resolved_by.as_deref(),
    }
}
