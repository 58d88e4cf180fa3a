-- Analytics (SPEC §8.1, `/v1/analytics/*`; tasker_db::analytics). Every
-- analytics query reads one time window, so each table it starts from gets
-- an index on the instant that places a row in a window, and nothing more:
-- namespace and template filters are applied to the rows of the window, and
-- tasks and steps are reached from there by primary key.

-- Tasks finished in the window. Partial: a task has a `completed_at` only
-- from its final update on, and tasks updates already touch an index
-- (tasks_active_state_idx holds `updated_at`), so this index takes one entry
-- per task, written once, when the task finishes; running tasks cost nothing.
CREATE INDEX tasks_completed_at_idx
    ON tasker.tasks (completed_at) WHERE completed_at IS NOT NULL;

-- Step attempts finished in the window (handler run times, retries,
-- failures). The audit table is insert-only and written in `finished_at`
-- order, so this costs one entry per attempt at the right-hand edge of the
-- index, and a window's rows sit together in the heap. workflow_steps gets
-- no index: its state changes are heap-only updates (see
-- 20261201000001_dynamic_workflows_and_repair.sql), and an index on
-- `completed_at` would end that for every step's last update.
CREATE INDEX workflow_step_result_audit_finished_at_idx
    ON tasker.workflow_step_result_audit (finished_at);
