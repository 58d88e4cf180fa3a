/**
 * A program that starts a worker, optionally runs one task through it,
 * awaits `worker.stop()` and then simply returns: it never calls
 * `process.exit`. `lifecycle.test.ts` asserts that the process then leaves
 * by itself (exit code 0): a stopped worker must hold nothing that keeps
 * Node's event loop alive.
 *
 * ```
 * node dist/test/apps/stop-exits.js --database-url URL [--server-url URL --run-task]
 * ```
 *
 * Its own registry (`examples::square` only, so it serves just the linear
 * workflow), so it depends on nothing but the package. Without arguments
 * (as when `node --test dist/test/` picks every file of `test/` up) it does
 * nothing.
 */

import * as path from "node:path";
import { parseArgs } from "node:util";

import { Registry, TaskerClient, Worker } from "../../ts";

// This runs as dist/test/apps/stop-exits.js in workers/typescript.
const REPO = path.resolve(__dirname, "..", "..", "..", "..", "..");
const TEMPLATES = [path.join(REPO, "config", "tasks"), path.join(REPO, "workers", "tests", "templates")];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "database-url": { type: "string" },
      "server-url": { type: "string" },
      "run-task": { type: "boolean" },
    },
  });
  const databaseUrl = values["database-url"];
  if (databaseUrl === undefined) {
    console.log("stop-exits: no --database-url, nothing to do (run by lifecycle.test.js)");
    return;
  }
  const registry = new Registry().handle("examples::square", (ctx) => {
    const parent = ctx.directParents[0];
    const value = (parent === undefined ? ctx.context.value : ctx.dependency(parent).value) as number;
    return { value: value * value };
  });
  const worker = new Worker({ registry, databaseUrl, environment: "test", templatePaths: TEMPLATES, concurrency: 2 });
  await worker.start();
  console.log(`worker started (${worker.workerId})`);
  try {
    if (values["run-task"]) await runTask(values["server-url"]);
  } finally {
    // Stopped even when the task failed: a started worker keeps the process alive.
    await worker.stop();
    console.log("worker stopped; returning without process.exit");
  }
}

async function runTask(serverUrl: string | undefined): Promise<void> {
  if (serverUrl === undefined) throw new Error("--run-task needs --server-url");
  const client = new TaskerClient(serverUrl);
  const task = await client.createTask("linear_workflow", "mathematical_sequence", { value: 2 });
  const done = await client.wait(task.task_uuid, 30_000);
  if (done.state !== "complete") throw new Error(`the task ended ${done.state}: ${JSON.stringify(done)}`);
  console.log("task complete");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
