/**
 * The end-to-end harness (a port of the Python worker's `tests/conftest.py`
 * and `tests/support.py`): a fresh PostgreSQL database per test, a real
 * `tasker-server` process on it, and TypeScript workers (in this process,
 * or as `bin/tasker-worker.js` subprocesses) as the only workers.
 *
 * PostgreSQL: `TASKER_TEST_DATABASE_URL` or `DATABASE_URL` names a server
 * where the tests may create databases; without either, the private cluster
 * the Rust tests use (`tasker-ctl test-cluster` starts or finds it). `psql`
 * must be on `PATH`. The binaries: `TASKER_SERVER_BIN` / `TASKER_CTL_BIN` /
 * `TASKER_BENCH_BIN`, else `target/debug/` of this repository (build them
 * with cargo first; the tests do not).
 *
 * The tests run from the compiled `dist/` (`tsc -p .`), so this file is
 * `dist/test/support.js` at run time: every path is resolved from there.
 *
 * Importing this module has no side effect beyond registering the example
 * and fault handlers in the package's default registry and a root `after`
 * hook; nothing starts until a test calls {@link setup}.
 */

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, type TestContext } from "node:test";

import { TaskerClient, Worker, type Logger, type StepView, type TaskView, type WorkerOptions } from "../ts";

// The handlers every worker of the suite serves, in the default registry.
import "../examples/all";
import "./apps/faults";

/** `workers/typescript` (this file runs as `dist/test/support.js`). */
export const TS_WORKER = path.resolve(__dirname, "..", "..");
/** The compiled tree, `workers/typescript/dist`. */
export const DIST = path.join(TS_WORKER, "dist");
/** The repository's root. */
export const REPO = path.resolve(TS_WORKER, "..", "..");
/** Every template the workers and the server register. */
export const TEMPLATES = [path.join(REPO, "config", "tasks"), path.join(REPO, "workers", "tests", "templates")];
/** The CSV of the batch example. */
export const SAMPLE_CSV = path.join(REPO, "workers", "rust", "data", "products.csv");
/** The worker's command line. */
export const WORKER_BIN = path.join(TS_WORKER, "bin", "tasker-worker.js");
/** The modules a worker subprocess loads: every example handler and the fault handlers. */
export const WORKER_MODULES = [path.join(DIST, "examples", "all.js"), path.join(DIST, "test", "apps", "faults.js")];

// The core of in-process workers logs to stderr: quiet and plain unless asked otherwise.
process.env.RUST_LOG ??= "warn";
process.env.NO_COLOR ??= "1";

const VERBOSE = Boolean(process.env.TASKER_TEST_VERBOSE);

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** Resolves after `ms` milliseconds (the timer never keeps the process alive). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The task view's steps, by name. */
export function stepsByName(task: TaskView): Record<string, StepView> {
  return Object.fromEntries(task.steps.map((step) => [step.name, step]));
}

/** Polls `check` until it returns something truthy; that value. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 30_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits for step `name` of the task to be in `state`; its view. */
export function stepInState(
  client: TaskerClient,
  taskUuid: string,
  name: string,
  state: string,
  timeoutMs = 30_000,
): Promise<StepView> {
  return eventually(
    async () => {
      const step = stepsByName(await client.getTask(taskUuid))[name];
      return step !== undefined && step.state === state ? step : undefined;
    },
    `step ${name} to be ${state}`,
    timeoutMs,
  );
}

let uniqueCounter = 0;

/** A value no other test run uses (for contexts of `strict` templates). */
export function unique(): string {
  uniqueCounter += 1;
  return `${process.pid}-${Date.now()}-${uniqueCounter}`;
}

/** Creates a task and waits (at most 60 s) for it to finish. */
export async function runTask(client: TaskerClient, namespace: string, name: string, context: unknown = {}): Promise<TaskView> {
  const task = await client.createTask(namespace, name, context);
  return client.wait(task.task_uuid, 60_000);
}

/** Seconds between two ISO-8601 timestamps of the API. */
export function secondsBetween(from: string, to: string): number {
  return (Date.parse(to) - Date.parse(from)) / 1000;
}

/** Rejects with `message` (made when the time is up) unless `promise` settles within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, message: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === "string" ? message : message())), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------
// Binaries and PostgreSQL
// ---------------------------------------------------------------------------

/** A Rust binary: `$variable`, else `<repo>/target/debug/<name>`; never built here. */
export function binary(name: string, pkg: string, variable: string): string {
  const configured = process.env[variable];
  const found = configured ? path.resolve(configured) : path.join(REPO, "target", "debug", name);
  if (!fs.existsSync(found)) {
    throw new Error(
      `${found} does not exist: build it first (cargo build -p ${pkg} --bin ${name}) or set ${variable}; ` +
        "the TypeScript suite does not build Rust",
    );
  }
  return found;
}

export function serverBinary(): string {
  return binary("tasker-server", "tasker-orchestration", "TASKER_SERVER_BIN");
}

let cachedAdminUrl: string | undefined;

/** The URL of a PostgreSQL server where the tests may create databases. */
export function adminUrl(): string {
  if (cachedAdminUrl !== undefined) return cachedAdminUrl;
  const configured = process.env.TASKER_TEST_DATABASE_URL || process.env.DATABASE_URL;
  if (configured) {
    cachedAdminUrl = configured;
    return configured;
  }
  const ctl = binary("tasker-ctl", "tasker-ctl", "TASKER_CTL_BIN");
  const found = spawnSync(ctl, ["test-cluster"], { encoding: "utf8", timeout: 120_000 });
  if (found.error || found.status !== 0) {
    throw new Error(
      `no DATABASE_URL, and the private test cluster did not start:\n${found.error?.message ?? ""}${found.stderr ?? ""}`,
    );
  }
  cachedAdminUrl = found.stdout.trim();
  return cachedAdminUrl;
}

/** `url` with its database replaced by `database` (query parameters kept). */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Runs one SQL statement with psql on the admin URL. */
export function psql(sql: string): void {
  const result = spawnSync("psql", [adminUrl(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === "ENOENT";
    throw new Error(
      missing
        ? "psql is not on PATH: install PostgreSQL's client (apt-get install postgresql-client)"
        : `psql failed for \`${sql}\`: ${result.error.message}`,
    );
  }
  if (result.status !== 0) throw new Error(`psql failed for \`${sql}\`: ${result.stderr.trim()}`);
}

let templateName: string | undefined;

/** A migrated database the tests clone, made once per test process (dropped by a root `after` hook). */
export function templateDatabase(): string {
  if (templateName !== undefined) return templateName;
  const name = `tasker_nodetest_tpl_${process.pid}`;
  try {
    psql(`DROP DATABASE IF EXISTS ${name}`);
    psql(`CREATE DATABASE ${name}`);
  } catch (err) {
    throw new Error(
      `cannot create databases on ${adminUrl()}: ${(err as Error).message}\n` +
        "Set TASKER_TEST_DATABASE_URL (or DATABASE_URL) to a PostgreSQL server where the tests may create databases.",
    );
  }
  templateName = name;
  const migrate = spawnSync(serverBinary(), ["migrate"], {
    env: { ...process.env, DATABASE_URL: withDatabase(adminUrl(), name), TASKER_ENV: "test" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (migrate.error || migrate.status !== 0) {
    throw new Error(`tasker-server migrate failed:\n${migrate.error?.message ?? ""}${migrate.stderr ?? ""}`);
  }
  return name;
}

after(() => {
  if (templateName !== undefined) {
    try {
      psql(`DROP DATABASE IF EXISTS ${templateName} WITH (FORCE)`);
    } catch (err) {
      console.error(`dropping the template database failed: ${(err as Error).message}`);
    }
    templateName = undefined;
  }
  // A safety net: if something of a test (a handler's timer, a worker that
  // did not stop) still keeps this file's process alive, fail after a while
  // rather than hang the whole suite — a leak is a failure, never hidden.
  // Unref'd: a clean process exits at once without it.
  setTimeout(() => {
    console.error("the test process was still alive 15 s after its last test: something leaked");
    process.exit(1);
  }, 15_000).unref();
});

let databaseCounter = 0;

/** The environment of every process under test. */
export function testEnv(databaseUrl: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: databaseUrl,
    TASKER_ENV: "test",
    TASKER_TEMPLATE_PATH: TEMPLATES.join(":"),
    NO_COLOR: "1",
  };
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/** A child process whose output goes to a log file. */
export class LoggedProcess {
  readonly process: ChildProcess;
  private exit?: { code: number | null; signal: NodeJS.Signals | null };
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly log: string,
    command: string,
    args: string[],
    options: { env: NodeJS.ProcessEnv; cwd?: string },
  ) {
    const fd = fs.openSync(log, "w");
    try {
      this.process = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ["ignore", fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    this.exited = new Promise((resolve) => {
      this.process.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.process.once("error", (err) => {
        fs.appendFileSync(log, `\n[harness] cannot start ${command}: ${err.message}\n`);
        this.exit = { code: null, signal: null };
        resolve(this.exit);
      });
    });
  }

  /** Everything it printed so far. */
  output(): string {
    try {
      return fs.readFileSync(this.log, "utf8");
    } catch {
      return "";
    }
  }

  /** Waits until `needle` is in its output; fails if it exits first or after `timeoutMs`. */
  async waitFor(needle: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output().includes(needle)) {
      if (!this.alive || Date.now() > deadline) {
        throw new Error(`no \`${needle}\` in the output of ${path.basename(this.log)}:\n${this.output()}`);
      }
      await sleep(50);
    }
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.process.kill(signal);
  }

  /** Resolves its exit code (`null` if a signal ended it); rejects after `timeoutMs`. */
  async wait(timeoutMs = 30_000): Promise<number | null> {
    const exit = await within(
      this.exited,
      timeoutMs,
      () => `${path.basename(this.log)}: the process did not exit within ${timeoutMs / 1000} s:\n${this.output()}`,
    );
    return exit.code;
  }

  /** SIGKILL (if it still runs), and wait for it. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.process.kill("SIGKILL");
    await within(this.exited, 10_000, "the process survived SIGKILL for 10 s").catch(() => undefined);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async terminate(graceMs = 15_000): Promise<void> {
    if (!this.alive) return;
    this.process.kill("SIGTERM");
    try {
      await within(this.exited, graceMs, "no exit after SIGTERM");
    } catch {
      await this.kill();
    }
  }
}

/** A tasker-server on a fresh database. */
export interface Server {
  url: string;
  databaseUrl: string;
  log: string;
  process: LoggedProcess;
}

/** `bin/tasker-worker.js` in a subprocess (every example and fault handler), its output captured. */
export class WorkerProcess extends LoggedProcess {
  constructor(server: Server, log: string, args: string[]) {
    super(log, process.execPath, [WORKER_BIN, ...WORKER_MODULES, ...args], {
      env: { ...testEnv(server.databaseUrl), RUST_LOG: "info" },
      cwd: TS_WORKER,
    });
  }
}

/** Any node script of the suite (`dist/test/apps/*.js`) in a subprocess, its output captured. */
export class ScriptProcess extends LoggedProcess {
  constructor(server: Server, log: string, script: string, args: string[]) {
    super(log, process.execPath, [script, ...args], { env: testEnv(server.databaseUrl), cwd: TS_WORKER });
  }
}

// ---------------------------------------------------------------------------
// One test's system
// ---------------------------------------------------------------------------

/** What the in-process workers logged (printed too with TASKER_TEST_VERBOSE=1). */
export class CollectingLogger implements Logger {
  readonly lines: string[] = [];

  info(message: string): void {
    this.record("info", message);
  }

  warn(message: string): void {
    this.record("warn", message);
  }

  error(message: string): void {
    this.record("error", message);
  }

  private record(level: string, message: string): void {
    this.lines.push(`${level}: ${message}`);
    if (VERBOSE) console.error(`[worker ${level}] ${message}`);
  }
}

/** A test's fresh database, server, client and workers; all torn down after the test. */
export class Harness {
  readonly client: TaskerClient;
  readonly logger = new CollectingLogger();
  private readonly workers: Worker[] = [];
  private readonly processes: LoggedProcess[] = [];

  private constructor(
    readonly server: Server,
    readonly dir: string,
    private readonly database: string,
  ) {
    this.client = new TaskerClient(server.url);
  }

  /** The harness of test `t`: cleaned up by `t.after`. */
  static async start(t: TestContext): Promise<Harness> {
    const template = templateDatabase();
    databaseCounter += 1;
    const database = `tasker_nodetest_${process.pid}_${databaseCounter}`;
    psql(`CREATE DATABASE ${database} TEMPLATE ${template}`);
    const databaseUrl = withDatabase(adminUrl(), database);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-nodetest-"));
    let server: Server;
    try {
      server = await startServer(databaseUrl, dir);
    } catch (err) {
      dropDatabase(database);
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const harness = new Harness(server, dir, database);
    t.after(() => harness.close());
    return harness;
  }

  /**
   * A TypeScript worker in this process (the default registry: every
   * example and fault handler; every template of `config/tasks` and
   * `workers/tests/templates`), stopped after the test.
   */
  async startWorker(options: WorkerOptions = {}): Promise<Worker> {
    const worker = new Worker({
      databaseUrl: this.server.databaseUrl,
      environment: "test",
      templatePaths: TEMPLATES,
      logger: this.logger,
      ...options,
    });
    await worker.start();
    this.workers.push(worker);
    return worker;
  }

  /** `tasker-worker` in a subprocess with `args`, SIGKILLed after the test if still alive. */
  spawnWorker(...args: string[]): WorkerProcess {
    const process = new WorkerProcess(this.server, path.join(this.dir, `worker-${this.processes.length}.log`), args);
    this.processes.push(process);
    return process;
  }

  /** A node script in a subprocess, SIGKILLed after the test if still alive. */
  spawnScript(script: string, ...args: string[]): ScriptProcess {
    const process = new ScriptProcess(
      this.server,
      path.join(this.dir, `script-${this.processes.length}.log`),
      script,
      args,
    );
    this.processes.push(process);
    return process;
  }

  /** Workers, then subprocesses, then the server, then the database. */
  async close(): Promise<void> {
    for (const worker of this.workers.splice(0)) {
      await within(worker.stop(), 30_000, "a worker did not stop within 30 s").catch((err: Error) =>
        console.error(err.message),
      );
    }
    for (const process of this.processes.splice(0)) await process.kill();
    await this.server.process.terminate(15_000);
    dropDatabase(this.database);
    if (!VERBOSE) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The harness of test `t` (see {@link Harness}). */
export function setup(t: TestContext): Promise<Harness> {
  return Harness.start(t);
}

function dropDatabase(database: string): void {
  try {
    psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  } catch (err) {
    console.error(`dropping ${database} failed: ${(err as Error).message}`);
  }
}

async function startServer(databaseUrl: string, dir: string): Promise<Server> {
  const port = await freePort();
  const log = path.join(dir, "tasker-server.log");
  const process_ = new LoggedProcess(log, serverBinary(), [], {
    env: {
      ...testEnv(databaseUrl),
      TASKER_WEB_BIND_ADDRESS: `127.0.0.1:${port}`,
      RUST_LOG: process.env.RUST_LOG ?? "warn",
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (!process_.alive || Date.now() > deadline) {
      await process_.kill();
      throw new Error(`tasker-server did not become ready:\n${process_.output()}`);
    }
    await sleep(50);
  }
  return { url, databaseUrl, log, process: process_ };
}
