/**
 * Failures end to end: retries with the handler's delay, permanent
 * failures, unexpected exceptions, timeouts, and bad input — each a clear
 * step error, never a crashed worker. (Port of the Python worker's
 * `tests/test_failures.py`.)
 */

import * as assert from "node:assert/strict";
import { test } from "node:test";

import type { TaskerClient, TaskView } from "../ts";
import * as faults from "./apps/faults";
import { eventually, runTask, secondsBetween, setup, stepsByName } from "./support";

function run(client: TaskerClient, name: string, context: unknown = {}, namespace = "worker_faults"): Promise<TaskView> {
  return runTask(client, namespace, name, context);
}

test("a retryable error retries after the delay the handler asked for", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await run(h.client, "retry_then_success");
  assert.equal(done.state, "complete", JSON.stringify(done));
  const step = stepsByName(done).flaky!;
  assert.equal(step.attempts, 2);
  assert.deepEqual(step.results, { attempt: 2 });
  const { attempts } = await h.client.stepAudit(done.task_uuid, step.workflow_step_uuid);
  const [first, second] = [...attempts].sort((a, b) => a.attempt - b.attempt);
  assert.ok(first && second, JSON.stringify(attempts));
  assert.equal(first.outcome, "failure");
  assert.equal(first.error.code, "upstream_unavailable");
  assert.equal(first.error.retry_after_ms, 400);
  const gap = secondsBetween(first.finished_at, second.started_at);
  // The handler's 0.4 s wins over the policy's 2 s exponential backoff.
  assert.ok(gap >= 0.4 && gap < 1.9, `gap ${gap} s`);
});

test("a permanent error fails the task and its dependents never run", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await run(h.client, "permanent_failure");
  assert.equal(done.state, "error", JSON.stringify(done));
  const steps = stepsByName(done);
  const charge = steps.charge!;
  assert.equal(charge.state, "error");
  assert.equal(charge.attempts, 1, "a permanent failure is not retried");
  assert.equal(charge.last_error.code, "card_declined");
  assert.equal(charge.last_error.message, "card declined");
  assert.deepEqual(charge.last_error.details, { last4: "4242" });
  assert.equal(steps.ship!.state, "pending");
  assert.equal(steps.ship!.attempts, 0);
  assert.deepEqual(faults.neverRan, []);
});

test("a thrown error carries its class, message and stack", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await run(h.client, "unexpected_exception", { row: 7 });
  assert.equal(done.state, "error", JSON.stringify(done));
  const error = stepsByName(done).parse!.last_error;
  assert.equal(error.error_type, "exception");
  assert.equal(error.message, "TypeError: bad row 7");
  assert.equal(error.retryable, true);
  assert.equal(error.details.exception_type, "TypeError");
  const stack: string = error.details.backtrace;
  assert.equal(typeof stack, "string", JSON.stringify(error));
  assert.ok(stack.startsWith("TypeError: bad row 7"), stack);
  // The stack names the helper that threw, in the faults module, under the handler.
  assert.ok(/faults\.(js|ts)/.test(stack), stack);
  assert.ok(stack.includes("parseRow"), stack);
  assert.ok(stack.includes("boom"), stack);
});

test("an overrunning handler is told through ctx.isCancelled() and its late result is refused", async (t) => {
  faults.resetSawCancel();
  const h = await setup(t);
  const worker = await h.startWorker();
  const done = await run(h.client, "overrun");
  assert.equal(done.state, "error", JSON.stringify(done));
  const steps = stepsByName(done);
  for (const name of ["overrun", "async_overrun"]) {
    assert.equal(steps[name]!.last_error.error_type, "timeout", name);
    assert.equal(steps[name]!.results, null, name);
  }
  await eventually(() => faults.sawCancel, "faults::overrun to see ctx.isCancelled()", 10_000);
  // Both late completions (the polling handler's result, the awaiting
  // handler's) were refused; nothing is left running.
  const status = await eventually(
    () => {
      const s = worker.status();
      return s.totals.refused === 2 ? s : undefined;
    },
    "both late completions",
    15_000,
  );
  assert.deepEqual(status.slots, { queued: 0, running: 0, ended: 0 });
  assert.equal(status.handlersRunning, 0);
});

test("a result that is not JSON is an invalid result", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await run(h.client, "bad_result");
  const error = stepsByName(done).not_json!.last_error;
  assert.equal(done.state, "error", JSON.stringify(done));
  assert.equal(error.error_type, "invalid_result");
  assert.ok(error.message.includes("not JSON"), error.message);
  // faults::not_json returns a BigInt where Python's returns a datetime.
  assert.ok(error.message.includes("result.when") && error.message.includes("bigint"), error.message);
  assert.equal(error.retryable, false);
});

test("a decision naming an unknown step fails the decision", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await run(h.client, "bad_decision");
  assert.equal(done.state, "error", JSON.stringify(done));
  const steps = stepsByName(done);
  assert.ok(steps.decide!.last_error.message.includes("no_such_step"), steps.decide!.last_error.message);
  assert.equal(steps.decide!.last_error.retryable, false);
  assert.ok(!("branch" in steps));
});

test("a callable nobody registered is a step error, and the worker goes on", async (t) => {
  const h = await setup(t);
  const worker = await h.startWorker({ namespaces: ["worker_unregistered", "linear_workflow"] });
  const done = await run(h.client, "unregistered", {}, "worker_unregistered");
  assert.equal(done.state, "error", JSON.stringify(done));
  const error = stepsByName(done).orphan!.last_error;
  assert.equal(error.error_type, "handler_not_found");
  assert.ok(error.message.includes("faults::nobody_registered"), error.message);
  // The worker is fine: it still runs work.
  const linear = await run(h.client, "mathematical_sequence", { value: 2 }, "linear_workflow");
  assert.equal(linear.state, "complete", JSON.stringify(linear));
  assert.equal(worker.status().state, "running");
});
