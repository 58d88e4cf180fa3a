//! DLQ operations (SPEC §4.10): list, count, show a task's entries, record
//! an investigation's outcome, and resolve many entries by filter.

use tasker_db::dlq::{self, DlqChange};
use tasker_types::dlq::{
    DlqBulkResolve, DlqBulkResult, DlqEntryView, DlqList, DlqListQuery, DlqStats, DlqUpdate,
};
use tasker_types::ids::{DlqEntryUuid, TaskUuid};

use crate::Orchestrator;
use crate::auth::{Permission, Principal};
use crate::error::OrchestrationError;
use crate::services::error::ServiceError;
use crate::services::tasks::{DEFAULT_PAGE, MAX_PAGE};

/// Longest `resolution_notes` accepted.
const MAX_NOTES: usize = 10_000;

/// A page of entries, newest first.
///
/// # Errors
/// Forbidden without `dlq:read`.
pub async fn list(
    orchestrator: &Orchestrator,
    principal: &Principal,
    query: DlqListQuery,
) -> Result<DlqList, ServiceError> {
    principal.require(Permission::DlqRead)?;
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
/// Forbidden without `dlq:read`.
pub async fn stats(
    orchestrator: &Orchestrator,
    principal: &Principal,
) -> Result<DlqStats, ServiceError> {
    principal.require(Permission::DlqRead)?;
    Ok(dlq::stats(orchestrator.pool()).await?)
}

/// Every entry of a task, newest first.
///
/// # Errors
/// Forbidden without `dlq:read`; the task not found.
pub async fn for_task(
    orchestrator: &Orchestrator,
    principal: &Principal,
    task: TaskUuid,
) -> Result<Vec<DlqEntryView>, ServiceError> {
    principal.require(Permission::DlqRead)?;
    tasker_db::task::get(orchestrator.pool(), task)
        .await?
        .ok_or(OrchestrationError::TaskNotFound(task))?;
    Ok(dlq::list_for_task(orchestrator.pool(), task).await?)
}

/// Records an investigation's outcome on one entry. `resolved_by` is the
/// authenticated caller; the request's counts only when auth is off.
///
/// # Errors
/// Forbidden without `dlq:update`; invalid when closing without anyone to
/// record; not found; conflict for a closed entry.
pub async fn update(
    orchestrator: &Orchestrator,
    principal: &Principal,
    entry: DlqEntryUuid,
    update: DlqUpdate,
) -> Result<DlqEntryView, ServiceError> {
    principal.require(Permission::DlqUpdate)?;
    let update = as_recorded(principal, update);
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
    principal: &Principal,
    mut request: DlqBulkResolve,
) -> Result<DlqBulkResult, ServiceError> {
    principal.require(Permission::DlqUpdate)?;
    request.update = as_recorded(principal, request.update);
    check(&request.update)?;
    if request.filter.status.is_some_and(|s| !s.is_open()) {
        return Err(ServiceError::invalid(
            "`filter.status` may only narrow to `pending` or `investigating`: closed entries stay closed",
        ));
    }
    let mut tx = orchestrator.pool().begin().await?;
    let updated = dlq::update_matching(&mut tx, &request.filter, &change(&request.update)).await?;
    tx.commit().await?;
    tracing::info!(updated, status = request.update.status.as_str(),
        resolved_by = ?request.update.resolved_by, "DLQ entries resolved in bulk");
    Ok(DlqBulkResult { updated })
}

/// The update with `resolved_by` set to who is recorded (see
/// [`Principal::actor`]); a different name the caller typed is appended to
/// the notes, never recorded as the resolver.
fn as_recorded(principal: &Principal, mut update: DlqUpdate) -> DlqUpdate {
    let claimed = update.resolved_by.take();
    let actor = principal.actor(claimed.as_deref()).map(str::to_owned);
    if let (Some(claimed), Some(actor)) = (claimed.as_deref(), actor.as_deref())
        && claimed.trim() != actor
        && !claimed.trim().is_empty()
    {
        let note = format!("(named as resolver: {})", claimed.trim());
        update.resolution_notes = Some(match update.resolution_notes.take() {
            Some(notes) => format!("{notes}\n{note}"),
            None => note,
        });
    }
    update.resolved_by = actor;
    update
}

fn check(update: &DlqUpdate) -> Result<(), ServiceError> {
    let by = update.resolved_by.as_deref().map(str::trim).unwrap_or("");
    if !update.status.is_open() && by.is_empty() {
        return Err(ServiceError::invalid(format!(
            "`resolved_by` is required to move an entry to `{}`",
            update.status
        )));
    }
    if by.chars().count() > 255 {
        return Err(ServiceError::invalid(
            "`resolved_by` must be at most 255 characters",
        ));
    }
    if update
        .resolution_notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTES)
    {
        return Err(ServiceError::invalid(format!(
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
