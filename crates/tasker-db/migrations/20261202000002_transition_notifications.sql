-- WatchTask (SPEC §8.2): a statement that records transitions of a
-- *watched* task announces that task's UUID on one channel, so a server
-- streaming its changes wakes when they commit instead of polling.
--
-- Only watched tasks notify. PostgreSQL wakes every listening backend of
-- the database for every notification and serialises the commits of
-- notifying transactions, so notifying on every transition cost the engine
-- a measured ~50% on per-step latency; with nobody watching the trigger
-- costs one probe of an empty table.
--
-- The payload is only a pointer: watchers read the transitions themselves,
-- so a lost or folded notification (PostgreSQL folds identical payloads in
-- one transaction) loses nothing; a slow fallback re-read covers a
-- transaction that was already writing when the watch was registered.
-- Statement-level with a transition table: one call per INSERT statement.

-- One row per open watch stream. No foreign key: registering must not lock
-- the task row the engine updates. Rows of a server that died are only
-- extra notifications until the next server start removes old ones.
CREATE TABLE tasker.task_watches (
    watch_uuid  uuid PRIMARY KEY,
    task_uuid   uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX task_watches_task_idx ON tasker.task_watches (task_uuid);

CREATE FUNCTION tasker.notify_transitions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tasker.task_watches) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('tasker_transitions', touched.task_uuid::text)
    FROM (SELECT DISTINCT n.task_uuid
            FROM new_rows n
           WHERE EXISTS (SELECT 1 FROM tasker.task_watches w
                          WHERE w.task_uuid = n.task_uuid)) AS touched;
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
