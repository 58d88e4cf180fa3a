/**
 * What a handler returns: a plain JSON value, or a {@link Success} when it
 * also tells orchestration what to create next (decisions and batches).
 */

import { cursorToWire, type CursorConfig, type WireControl } from "./wire";

/**
 * A successful attempt: `result` is what dependents receive; `control`
 * (set by the decision and batch helpers) is what a decision or batchable
 * step asks orchestration to create. Returning a plain value `v` is the
 * same as returning `new Success(v)`.
 */
export class Success {
  constructor(
    readonly result: unknown = null,
    readonly control?: WireControl,
  ) {}
}

/** Options of the decision and batch helpers. */
export interface ResultOption {
  /** The step's own result, what dependents receive. */
  result?: unknown;
}

/**
 * A decision: create these downstream steps (names reachable from the
 * decision in the template); naming any other fails the decision
 * permanently.
 */
export function createSteps(steps: readonly string[], options: ResultOption = {}): Success {
  for (const name of steps) {
    if (typeof name !== "string") throw new TypeError(`step names must be strings, not ${typeof name}`);
  }
  return new Success(options.result ?? null, { type: "decision", outcome: "create_steps", steps: [...steps] });
}

/** A decision that creates nothing; convergence steps still run. */
export function noBranches(options: ResultOption = {}): Success {
  return new Success(options.result ?? null, { type: "decision", outcome: "no_branches" });
}

/** A batchable step's plan: one batch worker per cursor. */
export function createBatches(cursors: readonly CursorConfig[], options: ResultOption = {}): Success {
  return new Success(options.result ?? null, {
    type: "batches",
    outcome: "create_batches",
    worker_count: cursors.length,
    cursor_configs: cursors.map(cursorToWire),
  });
}

/** A batchable step with nothing to process; convergence still runs. */
export function noBatches(options: ResultOption = {}): Success {
  return new Success(options.result ?? null, { type: "batches", outcome: "no_batches" });
}

/** Options of {@link cursors}. */
export interface CursorOptions {
  /** The first batch id's number (default 1). */
  firstId?: number;
  /** Zero-pad ids to this width (default 3: "001"). */
  idWidth?: number;
}

/**
 * Cursors that cover `[0, totalItems)` once, `batchSize` (at least 1) at a
 * time, with batch ids "001", "002", …
 */
export function cursors(totalItems: number, batchSize: number, options: CursorOptions = {}): CursorConfig[] {
  const size = Math.max(Math.trunc(batchSize), 1);
  const first = options.firstId ?? 1;
  const width = options.idWidth ?? 3;
  const out: CursorConfig[] = [];
  for (let start = 0, i = 0; start < totalItems; start += size, i += 1) {
    out.push({
      batchId: String(first + i).padStart(width, "0"),
      startCursor: start,
      endCursor: Math.min(start + size, totalItems),
      batchSize: size,
    });
  }
  return out;
}
