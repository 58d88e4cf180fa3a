-- WatchTask (SPEC §8.2): every statement that records task or step
-- transitions announces the tasks it touched on one channel, so a server
-- streaming a task's changes wakes when they commit instead of polling.
-- The payload is only the task's UUID — a pointer: watchers read the
-- transitions themselves, so a lost or coalesced notification (PostgreSQL
-- folds identical payloads in one transaction) loses nothing.
-- Statement-level with a transition table: one trigger call per INSERT
-- statement, however many rows it writes.

CREATE FUNCTION tasker.notify_transitions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tasker_transitions', touched.task_uuid::text)
    FROM (SELECT DISTINCT task_uuid FROM new_rows) AS touched;
    RETURN NULL;
END
$$;

CREATE TRIGGER task_transitions_notify
    AFTER INSERT ON tasker.task_transitions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.notify_transitions();

CREATE TRIGGER workflow_step_transitions_notify
    AFTER INSERT ON tasker.workflow_step_transitions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.notify_transitions();
