/**
 * `tasker-bench compare` in smoke mode with the TypeScript worker's no-op
 * handler (`bench/noop.ts`): the harness that measures the TypeScript
 * worker against Rust runs end to end and reports figures that make sense
 * (no thresholds: this keeps the harness from rotting, it does not judge
 * the system). (Port of the Python worker's `tests/test_bench_smoke.py`.)
 */

import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";

import { DIST, WORKER_BIN, adminUrl, binary, freePort } from "./support";

/** `value` as one word of a `sh -c` command line. */
function shellWord(value: string): string {
  return /^[\w./:=@%+-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` to its end, killing it after `timeoutMs`. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      reject(new Error(`${path.basename(command)} did not finish within ${timeoutMs / 1000} s:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("the comparison harness measures both workers", async () => {
  const bench = binary("tasker-bench", "tasker-bench", "TASKER_BENCH_BIN");
  const worker = [process.execPath, WORKER_BIN, path.join(DIST, "bench", "noop.js")].map(shellWord).join(" ");
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: adminUrl() };
  delete env.TASKER_ENV;
  const result = await run(
    bench,
    ["--smoke", "--json", "--port", String(await freePort()), "compare", "--worker", worker],
    env,
    300_000,
  );
  assert.equal(result.code, 0, result.stderr);
  const figures = JSON.parse(result.stdout) as {
    smoke: boolean;
    rounds: Array<Record<"rust" | "foreign", Record<string, number | string>>>;
    throughput_ratio: number;
  };
  assert.equal(figures.smoke, true);
  assert.equal(figures.rounds.length, 1);
  const round = figures.rounds[0]!;
  for (const side of ["rust", "foreign"] as const) {
    for (const figure of ["throughput_steps", "throughput_steps_per_s", "handler_call_ms_p50", "handoff_ms_p50"]) {
      assert.ok((round[side][figure] as number) > 0, `${side} ${figure}: ${JSON.stringify(round[side])}`);
    }
  }
  assert.equal(round.foreign.worker, worker);
  assert.ok(figures.throughput_ratio > 0, JSON.stringify(figures));
});
