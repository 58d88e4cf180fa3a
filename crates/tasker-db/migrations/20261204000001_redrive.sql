-- Re-drive (ADR 010): when a step's pointer was last re-sent, so that the
-- sweep re-sends it at most once per threshold, and an index over the
-- states whose age is measured by `updated_at` (in-progress and
-- waiting-for-retry steps have theirs already, on `lease_expires_at` and
-- `next_retry_at`). `redriven_at` is not progress: `updated_at` and the
-- staleness detector ignore it.
ALTER TABLE tasker.workflow_steps ADD COLUMN redriven_at timestamptz;

CREATE INDEX workflow_steps_waiting_pointer_idx
    ON tasker.workflow_steps (updated_at)
    WHERE state IN ('enqueued', 'enqueued_for_orchestration',
                    'enqueued_as_error_for_orchestration');
