/**
 * The one place where Tasker's snake_case wire names meet TypeScript's
 * camelCase: the step context the core sends, and the outcome envelope it
 * reads back. Users' own JSON (task contexts, results) passes through as is.
 */

/** A step context as the core serialises it. */
export interface WireContext {
  task_uuid: string;
  step_uuid: string;
  namespace: string;
  task_name: string;
  task_version: string;
  context: unknown;
  step_name: string;
  template_step: string;
  attempt: number;
  max_attempts: number;
  initialization: unknown;
  inputs: unknown;
  direct_parents: string[];
  dependency_results: Record<string, unknown>;
  failed_parents: Record<string, unknown>;
  batch_config: WireBatchConfig | null;
  batch_cursor: WireCursor | null;
  checkpoint: WireCheckpoint | null;
  correlation_id: string;
}

interface WireBatchConfig {
  worker_template: string;
  parallelism: number;
  failure_strategy: string;
  batch_size: number;
}

interface WireCursor {
  batch_id: string;
  start_cursor: unknown;
  end_cursor: unknown;
  batch_size: number;
}

interface WireCheckpoint {
  cursor: unknown;
  items_processed: number;
  partial_results?: unknown;
}

/** A batchable step's `batch_config` from its template. */
export interface BatchConfig {
  workerTemplate: string;
  parallelism: number;
  failureStrategy: string;
  batchSize: number;
}

/** The slice of a dataset one batch worker processes. */
export interface CursorConfig {
  /** Unique within the batch; the worker step is named `<worker>_<batchId>`. */
  batchId: string;
  /** Where the batch starts (inclusive). */
  startCursor: unknown;
  /** Where the batch ends (exclusive). */
  endCursor: unknown;
  /** Items per unit of work within the batch. */
  batchSize: number;
}

/** How far an earlier attempt of a batch worker got. */
export interface Checkpoint {
  /** Where to resume: the next item to process. */
  cursor: unknown;
  /** Items processed so far, across attempts. */
  itemsProcessed: number;
  /** What the processed items added up to. */
  partialResults?: unknown;
}

/** The context's fields, camelCase. */
export interface ContextFields {
  taskUuid: string;
  stepUuid: string;
  namespace: string;
  taskName: string;
  taskVersion: string;
  context: unknown;
  stepName: string;
  templateStep: string;
  attempt: number;
  maxAttempts: number;
  initialization: unknown;
  inputs: unknown;
  directParents: string[];
  dependencyResults: Record<string, unknown>;
  failedParents: Record<string, unknown>;
  batchConfig: BatchConfig | null;
  batchCursor: CursorConfig | null;
  checkpoint: Checkpoint | null;
  correlationId: string;
}

/** The core's context as camelCase fields. */
export function fromWire(w: Partial<WireContext>): ContextFields {
  return {
    taskUuid: w.task_uuid ?? "",
    stepUuid: w.step_uuid ?? "",
    namespace: w.namespace ?? "",
    taskName: w.task_name ?? "",
    taskVersion: w.task_version ?? "",
    context: w.context ?? {},
    stepName: w.step_name ?? "",
    templateStep: w.template_step ?? "",
    attempt: w.attempt ?? 1,
    maxAttempts: w.max_attempts ?? 1,
    initialization: w.initialization ?? {},
    inputs: w.inputs ?? null,
    directParents: w.direct_parents ?? [],
    dependencyResults: w.dependency_results ?? {},
    failedParents: w.failed_parents ?? {},
    batchConfig: w.batch_config
      ? {
          workerTemplate: w.batch_config.worker_template,
          parallelism: w.batch_config.parallelism,
          failureStrategy: w.batch_config.failure_strategy,
          batchSize: w.batch_config.batch_size,
        }
      : null,
    batchCursor: w.batch_cursor ? cursorFromWire(w.batch_cursor) : null,
    checkpoint: w.checkpoint
      ? {
          cursor: w.checkpoint.cursor,
          itemsProcessed: w.checkpoint.items_processed,
          partialResults: w.checkpoint.partial_results,
        }
      : null,
    correlationId: w.correlation_id ?? "",
  };
}

function cursorFromWire(c: WireCursor): CursorConfig {
  return { batchId: c.batch_id, startCursor: c.start_cursor, endCursor: c.end_cursor, batchSize: c.batch_size };
}

/** Test fields (camelCase, all optional) as the core would send them. */
export function toWire(fields: Partial<ContextFields>): Partial<WireContext> {
  const wire: Partial<WireContext> = {
    task_uuid: fields.taskUuid,
    step_uuid: fields.stepUuid,
    namespace: fields.namespace,
    task_name: fields.taskName,
    task_version: fields.taskVersion,
    context: fields.context,
    step_name: fields.stepName,
    template_step: fields.templateStep,
    attempt: fields.attempt,
    max_attempts: fields.maxAttempts,
    initialization: fields.initialization,
    inputs: fields.inputs,
    direct_parents: fields.directParents,
    dependency_results: fields.dependencyResults,
    failed_parents: fields.failedParents,
    batch_config: fields.batchConfig
      ? {
          worker_template: fields.batchConfig.workerTemplate,
          parallelism: fields.batchConfig.parallelism,
          failure_strategy: fields.batchConfig.failureStrategy,
          batch_size: fields.batchConfig.batchSize,
        }
      : undefined,
    batch_cursor: fields.batchCursor ? cursorToWire(fields.batchCursor) : undefined,
    checkpoint: fields.checkpoint ? checkpointToWire(fields.checkpoint) : undefined,
    correlation_id: fields.correlationId,
  };
  return Object.fromEntries(Object.entries(wire).filter(([, v]) => v !== undefined)) as Partial<WireContext>;
}

/** A cursor on the wire. */
export function cursorToWire(c: CursorConfig): WireCursor {
  return { batch_id: c.batchId, start_cursor: c.startCursor, end_cursor: c.endCursor, batch_size: c.batchSize };
}

/** A checkpoint on the wire. */
export function checkpointToWire(c: Checkpoint): WireCheckpoint {
  return { cursor: c.cursor, items_processed: c.itemsProcessed, partial_results: c.partialResults ?? null };
}

/** A failure as the envelope carries it. */
export interface WireFailure {
  message: string;
  retryable: boolean;
  error_type?: string;
  code?: string;
  details?: unknown;
  retry_after_ms?: number;
}

/** What a decision or batchable step asks orchestration to create, on the wire. */
export type WireControl =
  | { type: "decision"; outcome: "create_steps"; steps: string[] }
  | { type: "decision"; outcome: "no_branches" }
  | { type: "batches"; outcome: "create_batches"; worker_count: number; cursor_configs: WireCursor[] }
  | { type: "batches"; outcome: "no_batches" };

/** The outcome envelope the core reads. */
export type WireOutcome =
  | { status: "success"; result: unknown; control?: WireControl }
  | { status: "failure"; error: WireFailure };
