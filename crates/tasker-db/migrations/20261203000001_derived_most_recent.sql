-- SPEC §3: the current state lives on the task and step rows; a row's most
-- recent transition is the one with the highest `sort_key`. The
-- `most_recent` flag sat in a partial unique index, so every state change
-- also rewrote the previous transition row (a non-heap-only update with
-- index entries): four extra row versions per step. Transition rows are now
-- insert-only.
--
-- Each row keeps the sort key of its latest transition. The
-- compare-and-set that changes the state increments it, so the new
-- transition's key is read from the row version the writer holds locked:
-- never stale, never shared by two writers. The column is not indexed, so
-- the step update stays heap-only.

ALTER TABLE tasker.workflow_steps ADD COLUMN last_sort_key integer NOT NULL DEFAULT 0;
ALTER TABLE tasker.tasks ADD COLUMN last_sort_key integer NOT NULL DEFAULT 0;

UPDATE tasker.workflow_steps s SET last_sort_key = t.k
FROM (SELECT workflow_step_uuid, max(sort_key) AS k
      FROM tasker.workflow_step_transitions GROUP BY workflow_step_uuid) t
WHERE t.workflow_step_uuid = s.workflow_step_uuid;

UPDATE tasker.tasks s SET last_sort_key = t.k
FROM (SELECT task_uuid, max(sort_key) AS k
      FROM tasker.task_transitions GROUP BY task_uuid) t
WHERE t.task_uuid = s.task_uuid;

DROP INDEX tasker.workflow_step_transitions_most_recent_key;
DROP INDEX tasker.task_transitions_most_recent_key;
ALTER TABLE tasker.workflow_step_transitions DROP COLUMN most_recent;
ALTER TABLE tasker.task_transitions DROP COLUMN most_recent;
