/**
 * The worker's life: crashes, graceful shutdown on SIGTERM and Ctrl-C,
 * Ctrl-C twice during a handler, errors at start, and a process that
 * leaves by itself once its worker has stopped. (Port of the Python
 * worker's `tests/test_lifecycle.py`; its fork test has no Node
 * counterpart, as Node has no fork().)
 */

import * as assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";

import { ConfigError, Registry, Worker, WorkerError } from "../ts";
import { CollectingLogger, DIST, eventually, setup, stepInState, stepsByName } from "./support";

test("a killed worker's step is finished by another", async (t) => {
  const h = await setup(t);
  const doomed = h.spawnWorker("--concurrency", "2");
  await doomed.waitFor("typescript worker running");
  const task = await h.client.createTask("worker_faults", "nap", { first_attempt_seconds: 60, seconds: 0 });
  await stepInState(h.client, task.task_uuid, "nap", "in_progress");
  await doomed.kill(); // SIGKILL mid-handler: no chance to clean up

  await h.startWorker();
  const done = await h.client.wait(task.task_uuid, 60_000);
  assert.equal(done.state, "complete", JSON.stringify(done));
  const nap = stepsByName(done).nap!;
  assert.equal(nap.attempts, 2, "re-claimed after the dead worker's lease expired");
  assert.equal(nap.results.attempt, 2);
  assert.equal(nap.results.pid, process.pid, "finished by the second worker");
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`${signal} drains running handlers`, async (t) => {
    const h = await setup(t);
    const worker = h.spawnWorker("--concurrency", "2");
    await worker.waitFor("typescript worker running");
    const task = await h.client.createTask("worker_faults", "nap", { seconds: 1.5 });
    await stepInState(h.client, task.task_uuid, "nap", "in_progress");
    worker.signal(signal);
    assert.equal(await worker.wait(30_000), 0, worker.output());
    assert.ok(worker.output().includes("worker stopped"), worker.output());
    const nap = stepsByName(await h.client.getTask(task.task_uuid)).nap!;
    // The handler finished and its result was written before the process
    // left: nothing was abandoned.
    assert.ok(["enqueued_for_orchestration", "complete"].includes(nap.state), JSON.stringify(nap));
    assert.equal(nap.attempts, 1);
    assert.equal(nap.results.napped, 1.5);
    assert.equal((await h.client.wait(task.task_uuid, 30_000)).state, "complete");
  });
}

// Python's KeyboardInterrupt inside a handler: in Node, Ctrl-C is never an
// exception inside a handler, only a SIGINT event, so `faults::interrupt_once`
// sends its own process SIGINT twice on attempt 1 (Ctrl-C twice: the first
// drains, the second gives the running steps back at once).
test("Ctrl-C twice during a handler stops the worker and gives the step back", async (t) => {
  const h = await setup(t);
  const worker = h.spawnWorker();
  await worker.waitFor("typescript worker running");
  const task = await h.client.createTask("worker_faults", "interrupt", {});
  assert.equal(await worker.wait(30_000), 0, worker.output());
  assert.ok(worker.output().includes("second SIGINT"), worker.output());
  assert.ok(worker.output().includes("worker stopped"), worker.output());
  const step = stepsByName(await h.client.getTask(task.task_uuid)).interrupt!;
  assert.equal(step.last_error, null, "nothing was recorded for the interrupted attempt");

  await h.startWorker();
  const done = await h.client.wait(task.task_uuid, 60_000);
  assert.equal(done.state, "complete", JSON.stringify(done));
  assert.deepEqual(stepsByName(done).interrupt!.results, { attempt: 2 });
});

test("invalid options are refused before anything starts", async (t) => {
  const h = await setup(t);
  const databaseUrl = h.server.databaseUrl;
  const logger = new CollectingLogger();
  await assert.rejects(new Worker({ concurrency: 0, databaseUrl, environment: "test", logger }).start(), (err: Error) => {
    assert.ok(err instanceof ConfigError, `${err.name}: ${err.message}`);
    assert.match(err.message, /worker\.concurrency/);
    return true;
  });
  await assert.rejects(new Worker({ namespaces: ["Not A Namespace"], databaseUrl, logger }).start(), (err: Error) => {
    assert.ok(err instanceof ConfigError, `${err.name}: ${err.message}`);
    assert.match(err.message, /namespace/);
    return true;
  });
  await assert.rejects(new Worker({ registry: new Registry(), databaseUrl, logger }).start(), (err: Error) => {
    assert.ok(err instanceof WorkerError, `${err.name}: ${err.message}`);
    assert.ok(!(err instanceof ConfigError), `${err.name}: ${err.message}`);
    assert.match(err.message, /no handlers/);
    return true;
  });
});

test("an unreachable database is a clear error", async () => {
  const started = Date.now();
  await assert.rejects(
    new Worker({
      databaseUrl: "postgresql://nobody@127.0.0.1:1/nothing",
      environment: "test",
      config: { "database.acquire_timeout_ms": 1000 },
      logger: new CollectingLogger(),
    }).start(),
    (err: Error) => {
      assert.ok(err instanceof WorkerError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes("127.0.0.1:1") || err.message.toLowerCase().includes("connect"), err.message);
      return true;
    },
  );
  assert.ok(Date.now() - started < 20_000, `took ${(Date.now() - started) / 1000} s`);
});

test("status reports what went through", async (t) => {
  const h = await setup(t);
  const worker = await h.startWorker();
  const task = await h.client.createTask("linear_workflow", "mathematical_sequence", { value: 3 });
  assert.equal((await h.client.wait(task.task_uuid, 60_000)).state, "complete");
  const status = await eventually(() => {
    const s = worker.status();
    return s.totals.completed >= 4 ? s : undefined;
  }, "four completions");
  assert.equal(status.state, "running");
  assert.equal(status.workerId, worker.workerId);
  assert.ok(status.callables.includes("examples::square"), status.callables.join(", "));
  assert.equal(status.pid, process.pid);
});

// Node leaves once nothing keeps its event loop alive: a stopped worker
// must hold no handle (native thread-safe function, timer, socket), or
// every program that stops its worker hangs instead of exiting.
const STOP_EXITS = path.join(DIST, "test", "apps", "stop-exits.js");

for (const withTask of [false, true]) {
  const what = withTask ? "after running a task" : "when it ran nothing";
  test(`the process exits by itself after worker.stop(), ${what}`, async (t) => {
    const h = await setup(t);
    const args = ["--database-url", h.server.databaseUrl, "--server-url", h.server.url];
    if (withTask) args.push("--run-task");
    const child = h.spawnScript(STOP_EXITS, ...args);
    // The script prints this once `await worker.stop()` resolved.
    await child.waitFor("worker stopped", 60_000);
    let code: number | null;
    try {
      code = await child.wait(20_000);
    } catch {
      await child.kill();
      assert.fail(`the process was still alive 20 s after worker.stop() resolved (it was killed):\n${child.output()}`);
    }
    assert.equal(code, 0, child.output());
    if (withTask) assert.ok(child.output().includes("task complete"), child.output());
    assert.ok(child.output().includes("worker stopped"), child.output());
  });
}
