-- Dynamic workflows and repair (SPEC §4.6, §4.7, §4.10).
--
-- An operator's reset_for_retry gives a failed step a fresh attempt budget
-- without renumbering its attempts (the attempt number is the fence every
-- result write is checked against), so max_attempts grows past the
-- template's 1–100 with each reset; templates are still held to 1–100 at
-- registration.
ALTER TABLE tasker.workflow_steps
    DROP CONSTRAINT workflow_steps_max_attempts_check,
    ADD CONSTRAINT workflow_steps_max_attempts_check CHECK (max_attempts >= 1);

-- DLQ listings filter by reason as well as status.
CREATE INDEX tasks_dlq_reason_idx ON tasker.tasks_dlq (reason, created_at DESC);

-- Cheaper state changes (docs/benchmarks.md). Every step update used to
-- touch every index of workflow_steps, because two partial indexes named
-- `state` in their predicates; no query used them (leases and retries are
-- found through queue messages, by primary key), so they go, and with
-- free space on each page a state change becomes a heap-only update that
-- writes no index entries at all. Transition rows are read by step, never
-- by task, so their task index goes too.
DROP INDEX tasker.workflow_steps_expired_leases_idx;
DROP INDEX tasker.workflow_steps_retry_due_idx;
DROP INDEX tasker.workflow_step_transitions_task_idx;
ALTER TABLE tasker.workflow_steps SET (fillfactor = 80);
