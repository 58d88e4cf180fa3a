/**
 * Handlers run concurrently up to the worker's concurrency: `concurrency`
 * loops each await a step, so handlers that await (a timer here, I/O in
 * real life) overlap on the one event loop. (Port of the Python worker's
 * `tests/test_concurrency.py`: `async_naps` runs an `async` handler that
 * awaits a 0.5 s timer, `sync_naps` a plain function that returns the
 * timer's promise; a Node handler that really blocked would block the event
 * loop and every other handler, so there is no blocking case.)
 */

import * as assert from "node:assert/strict";
import { test } from "node:test";

import { runTask, secondsBetween, setup } from "./support";

for (const kind of ["sync", "async"] as const) {
  test(`eight half-second handlers with concurrency 8 finish together (${kind})`, async (t) => {
    const h = await setup(t);
    await h.startWorker({ concurrency: 8 });
    const done = await runTask(h.client, "worker_faults", `${kind}_naps`, {});
    assert.equal(done.state, "complete", JSON.stringify(done));
    assert.equal(done.steps.length, 8);
    for (const step of done.steps) assert.deepEqual(step.results, { slept: 0.5 }, step.name);

    // The handlers' wall time, from the attempts the core recorded: each
    // handler awaited its 0.5 s, and all eight overlapped. One after the other
    // they would take 4 s.
    const attempts = await Promise.all(
      done.steps.map(async (step) => {
        const audit = await h.client.stepAudit(done.task_uuid, step.workflow_step_uuid);
        assert.equal(audit.attempts.length, 1, `${step.name}: ${JSON.stringify(audit)}`);
        return audit.attempts[0]!;
      }),
    );
    for (const attempt of attempts) {
      const took = secondsBetween(attempt.started_at, attempt.finished_at);
      assert.ok(took >= 0.45, `a handler took ${took} s, less than its 0.5 s timer`);
    }
    const firstStart = Math.min(...attempts.map((a) => Date.parse(a.started_at)));
    const lastFinish = Math.max(...attempts.map((a) => Date.parse(a.finished_at)));
    const span = (lastFinish - firstStart) / 1000;
    assert.ok(span < 1.5, `the eight handlers spanned ${span} s`);

    // And the task as a whole, as the Python test asserts it.
    const elapsed = secondsBetween(done.created_at as string, done.completed_at as string);
    t.diagnostic(`${kind}: the handlers spanned ${span} s, the task took ${elapsed} s`);
    assert.ok(elapsed < 2.0, `the task took ${elapsed} s`);
  });
}
