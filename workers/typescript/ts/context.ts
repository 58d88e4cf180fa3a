/**
 * What a handler knows about the step it runs: the same fields as Rust's
 * step context (SPEC §7), camelCase, JSON as plain values.
 */

import { PermanentError, RetryableError } from "./errors";
import type { NativeWorker } from "./native";
import { checkJson } from "./json";
import {
  checkpointToWire,
  fromWire,
  toWire,
  type BatchConfig,
  type Checkpoint,
  type ContextFields,
  type CursorConfig,
  type WireContext,
} from "./wire";

/** Everything a handler knows about the step it runs. */
export class StepContext implements Readonly<Omit<ContextFields, "batchCursor">> {
  readonly taskUuid: string;
  readonly stepUuid: string;
  readonly namespace: string;
  readonly taskName: string;
  readonly taskVersion: string;
  /** The task's context. */
  readonly context: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- users' JSON
  readonly stepName: string;
  readonly templateStep: string;
  /** This attempt's number, from 1. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The step's `handler.initialization`. */
  readonly initialization: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Extra inputs: a batch cursor, or inputs edited by an operator. */
  readonly inputs: unknown;
  /** The step's direct parents that exist in this task. */
  readonly directParents: string[];
  /** Every completed ancestor's result, by step name. */
  readonly dependencyResults: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Direct parents that failed permanently (tolerated batches), with their errors. */
  readonly failedParents: Record<string, unknown>;
  readonly batchConfig: BatchConfig | null;
  /** The last checkpoint an earlier attempt saved: resume from here. */
  readonly checkpoint: Checkpoint | null;
  readonly correlationId: string;
  /**
   * Aborted once the attempt is over (task cancelled, lease lost, timeout
   * overrun): pass it to `fetch` and other cancellable calls.
   */
  readonly signal: AbortSignal;
  /** Checkpoints saved through a {@link StepContext.forTest} context. */
  readonly savedCheckpoints: Checkpoint[] = [];
  private readonly cursor: CursorConfig | null;

  /** @internal made by the worker from what the core sends */
  constructor(
    wire: Partial<WireContext>,
    private readonly native?: NativeWorker,
    private readonly dispatchId?: number,
    signal?: AbortSignal,
  ) {
    const f = fromWire(wire);
    this.signal = signal ?? new AbortController().signal;
    this.taskUuid = f.taskUuid;
    this.stepUuid = f.stepUuid;
    this.namespace = f.namespace;
    this.taskName = f.taskName;
    this.taskVersion = f.taskVersion;
    this.context = f.context;
    this.stepName = f.stepName;
    this.templateStep = f.templateStep;
    this.attempt = f.attempt;
    this.maxAttempts = f.maxAttempts;
    this.initialization = f.initialization;
    this.inputs = f.inputs;
    this.directParents = f.directParents;
    this.dependencyResults = f.dependencyResults;
    this.failedParents = f.failedParents;
    this.batchConfig = f.batchConfig;
    this.cursor = f.batchCursor;
    this.checkpoint = f.checkpoint;
    this.correlationId = f.correlationId;
  }

  /**
   * A context not linked to a worker, for unit tests of handlers: give any
   * field (`{ context: {...}, attempt: 2, batchCursor: {...} }`).
   * `isCancelled()` is false; checkpoints land in `savedCheckpoints`.
   */
  static forTest(fields: Partial<ContextFields> = {}): StepContext {
    return new StepContext(toWire(fields));
  }

  /** The result of ancestor step `name`. */
  dependency<T = any>(name: string): T | undefined { // eslint-disable-line @typescript-eslint/no-explicit-any
    // Own keys only: a step named `constructor` is not Object.prototype's.
    return (Object.hasOwn(this.dependencyResults, name) ? this.dependencyResults[name] : undefined) as T | undefined;
  }

  /** `[name, result]` of each direct parent, in `directParents` order. */
  parentResults(): Array<[string, unknown]> {
    return this.directParents
      .filter((n) => Object.hasOwn(this.dependencyResults, n))
      .map((n) => [n, this.dependencyResults[n]]);
  }

  /**
   * The task context through `parse`; a context it rejects (it throws a
   * `TypeError`, `RangeError` or `SyntaxError`) fails the step permanently,
   * as no retry can fix it.
   */
  contextAs<T>(parse: (value: unknown) => T): T {
    return parsed(parse, this.context, "task context");
  }

  /** The step's `handler.initialization` through `parse`, like {@link contextAs}. */
  initializationAs<T>(parse: (value: unknown) => T): T {
    return parsed(parse, this.initialization, "handler initialization");
  }

  /**
   * This batch worker's slice of the dataset.
   * @throws PermanentError the step is not a batch worker
   */
  batchCursor(): CursorConfig {
    if (this.cursor === null) {
      throw new PermanentError(`step \`${this.stepName}\` has no batch cursor: only batch workers do`);
    }
    return this.cursor;
  }

  /**
   * Whether to stop early: the task was cancelled, this attempt lost its
   * lease, or it overran its timeout (its result will be discarded).
   * Cheap; check it in long loops.
   */
  isCancelled(): boolean {
    if (this.native === undefined || this.dispatchId === undefined) return false;
    return this.native.isCancelled(this.dispatchId);
  }

  /**
   * Records how far this attempt got, so a retried attempt resumes from
   * `cursor` with `partialResults` instead of starting over (SPEC §4.7).
   * Save after the items it counts are done.
   * @throws RetryableError this attempt is no longer current (stop working),
   *   or the database failed
   */
  async saveCheckpoint(checkpoint: Checkpoint): Promise<void> {
    let text: string;
    try {
      text = JSON.stringify(checkJson(checkpointToWire(checkpoint), "checkpoint"));
    } catch (err) {
      throw new PermanentError(`the checkpoint is not JSON: ${(err as Error).message}`);
    }
    if (this.native === undefined || this.dispatchId === undefined) {
      const saved = JSON.parse(text) as { cursor: unknown; items_processed: number; partial_results: unknown };
      this.savedCheckpoints.push({
        cursor: saved.cursor,
        itemsProcessed: saved.items_processed,
        partialResults: saved.partial_results,
      });
      return;
    }
    const refused = await this.native.saveCheckpoint(this.dispatchId, text);
    if (refused) {
      const Class = refused.retryable ? RetryableError : PermanentError;
      throw new Class(refused.message, { errorType: refused.errorType });
    }
  }
}

function parsed<T>(parse: (value: unknown) => T, value: unknown, what: string): T {
  try {
    return parse(value);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) {
      throw new PermanentError(`invalid ${what}: ${err.message}`);
    }
    throw err;
  }
}
