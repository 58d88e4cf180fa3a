-- Observability (SPEC §11).

-- The W3C traceparent of the span that created the task, so the pointers
-- sent for its steps carry it and a worker's spans join the trace the
-- create request started. NULL when tracing was off.
ALTER TABLE tasker.tasks ADD COLUMN traceparent text;

-- Tasks by state and DLQ entries by status, maintained incrementally so a
-- metrics sample never counts the big tables. Every statement that writes
-- tasks or DLQ entries appends its net change per state to
-- state_count_deltas (an insert: no row that concurrent writers contend
-- for, so no lock waits and no deadlocks on a hot counter row); the metrics
-- sampler folds the deltas into state_counts, which holds one row per
-- (kind, state).
CREATE TABLE tasker.state_counts (
    kind   text   NOT NULL CHECK (kind IN ('task', 'dlq')),
    state  text   NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (kind, state)
);

CREATE TABLE tasker.state_count_deltas (
    id     bigserial PRIMARY KEY,
    kind   text   NOT NULL,
    state  text   NOT NULL,
    delta  bigint NOT NULL
);

CREATE FUNCTION tasker.count_task_states() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tasker.state_count_deltas (kind, state, delta)
        SELECT 'task', state, count(*) FROM new_rows GROUP BY state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO tasker.state_count_deltas (kind, state, delta)
        SELECT 'task', state, -count(*) FROM old_rows GROUP BY state;
    ELSE
        INSERT INTO tasker.state_count_deltas (kind, state, delta)
        SELECT 'task', state, sum(d)
        FROM (SELECT state, 1 AS d FROM new_rows
              UNION ALL SELECT state, -1 FROM old_rows) c
        GROUP BY state HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION tasker.count_dlq_statuses() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tasker.state_count_deltas (kind, state, delta)
        SELECT 'dlq', status, count(*) FROM new_rows GROUP BY status;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO tasker.state_count_deltas (kind, state, delta)
        SELECT 'dlq', status, -count(*) FROM old_rows GROUP BY status;
    ELSE
        INSERT INTO tasker.state_count_deltas (kind, state, delta)
        SELECT 'dlq', status, sum(d)
        FROM (SELECT status, 1 AS d FROM new_rows
              UNION ALL SELECT status, -1 FROM old_rows) c
        GROUP BY status HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasker.tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_task_states();
CREATE TRIGGER tasks_count_update AFTER UPDATE ON tasker.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_task_states();
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasker.tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_task_states();

CREATE TRIGGER tasks_dlq_count_insert AFTER INSERT ON tasker.tasks_dlq
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_dlq_statuses();
CREATE TRIGGER tasks_dlq_count_update AFTER UPDATE ON tasker.tasks_dlq
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_dlq_statuses();
CREATE TRIGGER tasks_dlq_count_delete AFTER DELETE ON tasker.tasks_dlq
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_dlq_statuses();

-- What exists when this migration runs (the one full count, done once).
INSERT INTO tasker.state_counts (kind, state, n)
SELECT 'task', state, count(*) FROM tasker.tasks GROUP BY state;
INSERT INTO tasker.state_counts (kind, state, n)
SELECT 'dlq', status, count(*) FROM tasker.tasks_dlq GROUP BY status;
