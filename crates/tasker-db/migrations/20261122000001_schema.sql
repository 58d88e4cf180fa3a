-- Tasker schema (SPEC §5). PGMQ lives in schema `pgmq`, installed before this
-- migration by tasker_db::migrate from the pgmq crate's bundled SQL.
--
-- Every task and step row carries its current `state`, the target of the
-- compare-and-set that fences concurrent writers; every change also appends a
-- transition row, and a partial unique index keeps one `most_recent` row per
-- entity. The `state` columns are checked against the state machines of
-- tasker_types::state.

CREATE SCHEMA IF NOT EXISTS tasker;

CREATE TABLE tasker.task_namespaces (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,29}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasker.named_tasks (
    named_task_uuid    uuid PRIMARY KEY,
    namespace          text NOT NULL REFERENCES tasker.task_namespaces (name),
    name               text NOT NULL,
    version            text NOT NULL,
    -- The validated template, defaults filled in (tasker_types::template::TaskTemplate).
    template           jsonb NOT NULL,
    -- SHA-256 of the template's canonical JSON: same content, same hash.
    content_hash       text NOT NULL,
    identity_strategy  text NOT NULL
        CHECK (identity_strategy IN ('strict', 'caller_provided', 'always_unique')),
    description        text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace, name, version)
);

CREATE TABLE tasker.tasks (
    task_uuid        uuid PRIMARY KEY,
    named_task_uuid  uuid NOT NULL REFERENCES tasker.named_tasks (named_task_uuid),
    -- Copied from the template for listing and filtering without a join.
    namespace        text NOT NULL,
    name             text NOT NULL,
    version          text NOT NULL,
    state            text NOT NULL CHECK (state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
        'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry',
        'blocked_by_failures', 'complete', 'error', 'cancelled', 'resolved_manually')),
    context          jsonb NOT NULL,
    -- SHA-256 identity (SPEC §4.8); NULL for always_unique tasks.
    identity_hash    text,
    idempotency_key  text,
    correlation_id   uuid NOT NULL,
    priority         integer NOT NULL DEFAULT 0,
    tags             text[] NOT NULL DEFAULT '{}',
    initiator        text,
    source_system    text,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);

CREATE UNIQUE INDEX tasks_identity_hash_key
    ON tasker.tasks (identity_hash) WHERE identity_hash IS NOT NULL;
CREATE INDEX tasks_created_at_idx ON tasker.tasks (created_at DESC);
CREATE INDEX tasks_namespace_name_idx ON tasker.tasks (namespace, name, created_at DESC);
CREATE INDEX tasks_active_state_idx ON tasker.tasks (state, updated_at)
    WHERE state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually');

CREATE TABLE tasker.workflow_steps (
    workflow_step_uuid  uuid PRIMARY KEY,
    task_uuid           uuid NOT NULL REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE,
    -- Instance name, unique in the task (batch clones are `<template_step>_<batch_id>`).
    name                text NOT NULL,
    -- The template step this one was made from.
    template_step       text NOT NULL,
    step_type           text NOT NULL CHECK (step_type IN (
        'standard', 'decision', 'deferred_convergence', 'batchable', 'batch_worker')),
    -- The handler and its settings, resolved for the environment at creation,
    -- so a step runs the same way whichever process picks it up.
    callable            text NOT NULL,
    initialization      jsonb NOT NULL DEFAULT '{}',
    timeout_seconds     integer CHECK (timeout_seconds BETWEEN 1 AND 86400),
    max_attempts        integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    retryable           boolean NOT NULL,
    backoff             text NOT NULL CHECK (backoff IN ('none', 'linear', 'exponential')),
    backoff_base_ms     bigint NOT NULL CHECK (backoff_base_ms >= 0),
    max_backoff_ms      bigint NOT NULL CHECK (max_backoff_ms >= 0),
    state               text NOT NULL CHECK (state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    -- The current attempt: incremented by each claim, and the fence every
    -- result write is checked against.
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Extra inputs: a batch cursor, or inputs edited by an operator.
    inputs              jsonb,
    results             jsonb,
    -- What a decision or batchable step's handler asked to create next.
    flow_control        jsonb,
    last_error          jsonb,
    -- A batch worker's last checkpoint (cursor, items done, partial results).
    checkpoint          jsonb,
    next_retry_at       timestamptz,
    -- The current attempt's lease; another worker may re-claim after it.
    lease_expires_at    timestamptz,
    claimed_by          text,
    attempt_started_at  timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    completed_at        timestamptz,
    UNIQUE (task_uuid, name)
);

CREATE INDEX workflow_steps_expired_leases_idx
    ON tasker.workflow_steps (lease_expires_at) WHERE state = 'in_progress';
CREATE INDEX workflow_steps_retry_due_idx
    ON tasker.workflow_steps (next_retry_at) WHERE state = 'waiting_for_retry';

CREATE TABLE tasker.workflow_step_edges (
    task_uuid       uuid NOT NULL REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE,
    from_step_uuid  uuid NOT NULL REFERENCES tasker.workflow_steps (workflow_step_uuid) ON DELETE CASCADE,
    to_step_uuid    uuid NOT NULL REFERENCES tasker.workflow_steps (workflow_step_uuid) ON DELETE CASCADE,
    PRIMARY KEY (from_step_uuid, to_step_uuid),
    CHECK (from_step_uuid <> to_step_uuid)
);

CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges (to_step_uuid);
CREATE INDEX workflow_step_edges_task_idx ON tasker.workflow_step_edges (task_uuid);

CREATE TABLE tasker.task_transitions (
    task_transition_uuid  uuid PRIMARY KEY,
    task_uuid             uuid NOT NULL REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE,
    from_state            text,
    to_state              text NOT NULL,
    event                 text NOT NULL,
    sort_key              integer NOT NULL,
    most_recent           boolean NOT NULL,
    metadata              jsonb NOT NULL DEFAULT '{}',
    processor_id          text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_uuid, sort_key)
);

CREATE UNIQUE INDEX task_transitions_most_recent_key
    ON tasker.task_transitions (task_uuid) WHERE most_recent;

CREATE TABLE tasker.workflow_step_transitions (
    workflow_step_transition_uuid  uuid PRIMARY KEY,
    workflow_step_uuid             uuid NOT NULL
        REFERENCES tasker.workflow_steps (workflow_step_uuid) ON DELETE CASCADE,
    task_uuid                      uuid NOT NULL,
    from_state                     text,
    to_state                       text NOT NULL,
    event                          text NOT NULL,
    -- The step's attempt number after the transition.
    attempt                        integer NOT NULL,
    sort_key                       integer NOT NULL,
    most_recent                    boolean NOT NULL,
    metadata                       jsonb NOT NULL DEFAULT '{}',
    processor_id                   text,
    created_at                     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_step_uuid, sort_key)
);

CREATE UNIQUE INDEX workflow_step_transitions_most_recent_key
    ON tasker.workflow_step_transitions (workflow_step_uuid) WHERE most_recent;
CREATE INDEX workflow_step_transitions_task_idx ON tasker.workflow_step_transitions (task_uuid);

-- One row per finished attempt: what the worker reported, accepted or not.
CREATE TABLE tasker.workflow_step_result_audit (
    audit_uuid          uuid PRIMARY KEY,
    workflow_step_uuid  uuid NOT NULL
        REFERENCES tasker.workflow_steps (workflow_step_uuid) ON DELETE CASCADE,
    task_uuid           uuid NOT NULL,
    attempt             integer NOT NULL,
    outcome             text NOT NULL CHECK (outcome IN ('success', 'failure', 'manual')),
    -- false when the attempt was no longer current (its lease was re-claimed
    -- or the task cancelled) and its report was rejected.
    accepted            boolean NOT NULL,
    result              jsonb,
    error               jsonb,
    worker_id           text,
    actor               text,
    reason              text,
    started_at          timestamptz,
    finished_at         timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workflow_step_result_audit_step_idx
    ON tasker.workflow_step_result_audit (workflow_step_uuid, attempt);

-- Investigation records for tasks that need a person (SPEC §4.10).
CREATE TABLE tasker.tasks_dlq (
    dlq_entry_uuid    uuid PRIMARY KEY,
    task_uuid         uuid NOT NULL REFERENCES tasker.tasks (task_uuid) ON DELETE CASCADE,
    reason            text NOT NULL CHECK (reason IN (
        'staleness_timeout', 'max_retries_exceeded', 'worker_unavailable',
        'dependency_cycle_detected', 'manual_dlq')),
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'investigating', 'resolved', 'resolved_manually', 'permanently_failed', 'cancelled')),
    original_state    text NOT NULL,
    snapshot          jsonb NOT NULL,
    resolution_notes  text,
    resolved_by       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    resolved_at       timestamptz
);

CREATE UNIQUE INDEX tasks_dlq_one_open_entry_key
    ON tasker.tasks_dlq (task_uuid) WHERE status IN ('pending', 'investigating');
CREATE INDEX tasks_dlq_status_idx ON tasker.tasks_dlq (status, created_at DESC);
