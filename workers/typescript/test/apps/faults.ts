/**
 * Handlers that misbehave on purpose, for the end-to-end tests of retries,
 * failures, timeouts, crashes, shutdown and bad input (templates in
 * `workers/tests/templates`, the same the Python and Ruby suites run).
 * Importing this module registers them in the package's default
 * `registry`; in-process tests read what they did from the module-level
 * records {@link neverRan} and {@link sawCancel}.
 *
 * Every callable any template of `workers/tests/templates` names in the
 * `worker_faults` namespace is registered here, even those no TypeScript
 * test drives (`faults::interrupt_once`): a worker only serves a namespace
 * whose templates name nothing but callables it has.
 *
 * Port of the Python worker's `tests/apps/faults.py`. Where the Python
 * blocks a thread (`time.sleep`), these await timers: Node runs every
 * handler on one event loop, and blocking it would stall them all.
 * @module
 */

import { setTimeout as sleep } from "node:timers/promises";

import { Decision, PermanentError, RetryableError, handle, type StepContext, type Success } from "../../ts";

/** Steps (their `stepUuid`s) that ran a handler that must never run. */
export const neverRan: string[] = [];

/**
 * Set once `faults::overrun` saw `ctx.isCancelled()` turn true. A live
 * binding: read it as `faults.sawCancel` through `import * as faults`.
 */
export let sawCancel = false;

/** Clears {@link sawCancel} (before a test that waits for it). */
export function resetSawCancel(): void {
  sawCancel = false;
}

/** `key` of the task context, or `fallback` when it is absent or null. */
function contextValue(ctx: StepContext, key: string, fallback: unknown): unknown {
  const context: unknown = ctx.context;
  if (typeof context !== "object" || context === null || !Object.hasOwn(context, key)) return fallback;
  return (context as Record<string, unknown>)[key] ?? fallback;
}

/** Succeeds with `{}`. */
export function noop(_ctx: StepContext): Record<string, never> {
  return {};
}

/** Fails its first attempt, asking for a retry after 0.4 s (wins over the template's 2 s backoff). */
export function flakyOnce(ctx: StepContext): { attempt: number } {
  if (ctx.attempt === 1) {
    throw new RetryableError("upstream answered 503", { retryAfterMs: 400, code: "upstream_unavailable" });
  }
  return { attempt: ctx.attempt };
}

/** Fails permanently with a code and details. */
export function decline(_ctx: StepContext): never {
  throw new PermanentError("card declined", { code: "card_declined", details: { last4: "4242" } });
}

/** Depends on a step that fails permanently: records itself if it ever runs. */
export function neverRuns(ctx: StepContext): { ran: true } {
  neverRan.push(ctx.stepUuid);
  return { ran: true };
}

/** The helper {@link boom} calls: throws a built-in error, so the stack names it. */
export function parseRow(row: number): number {
  // A TypeError, not a Tasker error: the worker records its class, message and stack.
  throw new TypeError(`bad row ${row}`);
}

/** Throws an error that is not a Tasker error, from a helper (`context.row`, default 7). */
export function boom(ctx: StepContext): number {
  return parseRow(Math.trunc(Number(contextValue(ctx, "row", 7))));
}

/**
 * Runs past its timeout until it is told to stop, checking
 * `ctx.isCancelled()` between 10 ms timers (never a busy loop, which would
 * stall every other handler); gives up after 15 s.
 */
export async function overrun(ctx: StepContext): Promise<{ told: string } | { too: string }> {
  const deadline = performance.now() + 15_000;
  while (!ctx.isCancelled()) {
    if (performance.now() > deadline) return { told: "never" };
    await sleep(10);
  }
  sawCancel = true;
  return { too: "late" };
}

/**
 * Waits `context.seconds` (or `context.first_attempt_seconds` on attempt
 * 1), reporting its process id. Stops early only if the attempt is over
 * (its result would be discarded): a drain lets it finish.
 */
export async function nap(ctx: StepContext): Promise<{ napped: number; attempt: number; pid: number }> {
  let seconds = Number(contextValue(ctx, "seconds", 0));
  if (ctx.attempt === 1 && contextValue(ctx, "first_attempt_seconds", undefined) !== undefined) {
    seconds = Number(contextValue(ctx, "first_attempt_seconds", 0));
  }
  await sleep(seconds * 1000, undefined, { signal: ctx.signal });
  return { napped: seconds, attempt: ctx.attempt, pid: process.pid };
}

/**
 * Returns what JSON cannot carry: a BigInt (the instant Python's version
 * returns as a `datetime`). `JSON.stringify` would throw; the worker fails
 * the step as `invalid_result`, naming `result.when`.
 */
export function notJson(_ctx: StepContext): { when: bigint } {
  return { when: BigInt(Date.UTC(2026, 11, 1, 12, 0)) };
}

/** A decision naming a step the template does not have: fails the decision permanently. */
export function badDecision(_ctx: StepContext): Success {
  return Decision.createSteps(["no_such_step"], { result: { chose: "badly" } });
}

/** Awaits a 0.5 s timer: eight of them at concurrency 8 finish together. */
export async function asyncNap(_ctx: StepContext): Promise<{ slept: number }> {
  await sleep(500);
  return { slept: 0.5 };
}

/**
 * Python's `sync_nap` blocks a thread for 0.5 s. Node has no handler
 * threads, and a blocking sleep would stall the event loop (and every other
 * handler), so the closest equivalent is a plain, non-`async` function that
 * returns the timer's promise: the worker awaits whatever a handler returns.
 */
export function syncNap(_ctx: StepContext): Promise<{ slept: number }> {
  return sleep(500).then(() => ({ slept: 0.5 }));
}

/**
 * Awaits far past its timeout (60 s). JavaScript cannot cancel a promise as
 * asyncio cancels a task; the timer is tied to `ctx.signal`, which the
 * worker aborts once the attempt is over, so the handler ends (rejecting,
 * its failure refused as late) instead of lingering for a minute.
 */
export async function asyncOverrun(ctx: StepContext): Promise<{ too: string }> {
  await sleep(60_000, undefined, { signal: ctx.signal });
  return { too: "late" };
}

/** Whether this process is the `tasker-worker` command, whose `Worker.run()` handles SIGINT. */
function underWorkerCli(): boolean {
  return /tasker-worker(\.js)?$/.test(require.main?.filename ?? "");
}

/**
 * Python's version raises `KeyboardInterrupt` on its first attempt: Ctrl-C
 * inside a handler stops the worker and gives the step back unrecorded.
 * In Node, Ctrl-C is never an exception inside a handler, only a SIGINT
 * event; the closest equivalent is Ctrl-C twice while the handler runs
 * (the first drains, the second stops at once, giving running steps back).
 * So on attempt 1 this sends its own process SIGINT twice and waits until
 * the worker has given the step back; another worker's attempt 2 then
 * returns `{ attempt: 2 }`. It signals only under the `tasker-worker`
 * command (a `node:test` process must not receive SIGINT), and fails
 * otherwise.
 */
export async function interruptOnce(ctx: StepContext): Promise<{ attempt: number }> {
  if (ctx.attempt > 1) return { attempt: ctx.attempt };
  if (!underWorkerCli()) {
    throw new Error("faults::interrupt_once sends SIGINT to its process: run it under the tasker-worker command");
  }
  process.kill(process.pid, "SIGINT");
  // Apart, so the two signals are not merged into one pending signal.
  await sleep(200);
  process.kill(process.pid, "SIGINT");
  const deadline = performance.now() + 60_000;
  while (!ctx.isCancelled() && performance.now() < deadline) await sleep(10);
  // Given back: the worker refuses this late result.
  return { attempt: ctx.attempt };
}

handle("faults::noop", noop);
handle("faults::flaky_once", flakyOnce);
handle("faults::decline", decline);
handle("faults::never_runs", neverRuns);
handle("faults::boom", boom);
handle("faults::overrun", overrun);
handle("faults::nap", nap);
handle("faults::not_json", notJson);
handle("faults::bad_decision", badDecision);
handle("faults::async_nap", asyncNap);
handle("faults::sync_nap", syncNap);
handle("faults::async_overrun", asyncOverrun);
handle("faults::interrupt_once", interruptOnce);
