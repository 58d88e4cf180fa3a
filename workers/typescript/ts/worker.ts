/**
 * The TypeScript worker: Tasker's Rust worker core claims, leases, times
 * out and completes steps; this runs their handlers.
 *
 * One loop awaits up to as many steps as there are free handler slots (a
 * promise resolved from Rust: the event loop never blocks), starts their
 * handlers without awaiting them, and polls again as slots free up; each
 * handler hands back its outcome when it settles. Under load one poll
 * brings a batch, so the boundary is crossed once per batch rather than
 * once per step. The core never hands out more steps than
 * `worker.concurrency`, counting handlers that overran their timeout until
 * they settle.
 */

import { StepContext } from "./context";
import { fromNative, WorkerError } from "./errors";
import { Registry, registry as defaultRegistry, type HandlerFn } from "./handler";
import { addon, type NativeDispatch, type NativeWorker } from "./native";
import { deliver, deliverThrown, failureEnvelope, isStepError, successEnvelope } from "./outcome";
import { PermanentError } from "./errors";
import type { WireContext, WireOutcome } from "./wire";

/** How long one poll waits for work before it looks again. */
const POLL_WAIT_MS = 1000;
/** How often running handlers' cancel flags are read, for their AbortSignals. */
const CANCEL_CHECK_MS = 50;

/** Where the worker logs. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A worker's options; each wins over Tasker's TOML and environment. */
export interface WorkerOptions {
  /** The handlers to serve (default: the package's {@link defaultRegistry}). */
  registry?: Registry;
  /** Handlers running at once (`worker.concurrency`). */
  concurrency?: number;
  /** Namespaces to serve (`worker.namespaces`); by default every one it can serve. */
  namespaces?: string[];
  /** Template files or directories to register at start (`worker.template_paths`). */
  templatePaths?: string[];
  /** The PostgreSQL to use (`database.url`). */
  databaseUrl?: string;
  /** The configuration environment (`TASKER_ENV`). */
  environment?: string;
  /** A directory of TOML overrides (`TASKER_CONFIG_DIR`). */
  configDir?: string;
  /** Any other settings by dotted key: `{ "worker.lease_ms": 10000 }`. */
  config?: Record<string, unknown>;
  /** Also serve Rust's built-in `tasker::*` handlers. */
  includeBuiltins?: boolean;
  /** Where to log (default: `console`). */
  logger?: Logger;
}

/** A worker's state and counters. */
export interface WorkerStatus {
  state: "running" | "stopping" | "stopped";
  workerId: string;
  pid: number;
  callables: string[];
  concurrency: number;
  slots: { queued: number; running: number; ended: number };
  totals: { dispatched: number; completed: number; refused: number; abandoned: number };
  /** JS handlers that have not settled. */
  handlersRunning: number;
}

interface Running {
  ctx: StepContext;
  abort: AbortController;
}

/**
 * Runs the handlers of a {@link Registry} on Tasker's worker core.
 *
 * ```ts
 * const worker = new Worker({ concurrency: 8 });
 * worker.handle("ecommerce::process_payment", async (ctx) => ({ charged: true }));
 * await worker.run(); // until SIGTERM / SIGINT, which drain it first
 * ```
 */
export class Worker {
  readonly registry: Registry;
  private readonly overrides: Record<string, unknown>;
  private readonly logger: Logger;
  private native?: NativeWorker;
  private loop?: Promise<void>;
  /** Handlers started and not yet settled (and so slots taken). */
  private readonly inFlight = new Set<Promise<void>>();
  private concurrency = 1;
  /** Wakes the loop when a slot frees up. */
  private slotFreed?: () => void;
  private readonly running = new Map<number, Running>();
  /** Dispatches given back (abandoned) while their handlers still ran. */
  private readonly givenBack = new Set<number>();
  private cancelTimer?: NodeJS.Timeout;
  private stopRequested = false;

  constructor(private readonly options: WorkerOptions = {}) {
    this.registry = options.registry ?? defaultRegistry;
    this.logger = options.logger ?? console;
    const overrides: Record<string, unknown> = { ...(options.config ?? {}) };
    if (options.concurrency !== undefined) overrides["worker.concurrency"] = options.concurrency;
    if (options.namespaces !== undefined) overrides["worker.namespaces"] = options.namespaces;
    if (options.templatePaths !== undefined) overrides["worker.template_paths"] = options.templatePaths;
    if (options.databaseUrl !== undefined) overrides["database.url"] = options.databaseUrl;
    this.overrides = overrides;
  }

  /** Registers a function handler in this worker's registry. */
  handle(callable: string, fn: HandlerFn): this {
    this.registry.handle(callable, fn);
    return this;
  }

  /**
   * Connects, registers the configured templates and starts serving in
   * the background.
   * @throws ConfigError the configuration is invalid
   * @throws WorkerError PostgreSQL is unreachable, a template is invalid, or nothing is registered
   */
  async start(): Promise<this> {
    if (this.native) throw new WorkerError("this worker was started already; make a new Worker to run again");
    const callables = this.registry.callables();
    if (callables.length === 0 && !this.options.includeBuiltins) {
      throw new WorkerError(
        "no handlers are registered: import the module that defines them (npx tasker-worker ./dist/handlers.js) or pass a Registry",
      );
    }
    let native: NativeWorker;
    try {
      native = await addon().startWorker({
        callables,
        environment: this.options.environment,
        configDir: this.options.configDir,
        overridesJson: JSON.stringify(this.overrides),
        includeBuiltins: this.options.includeBuiltins ?? false,
      });
    } catch (err) {
      throw fromNative(err);
    }
    this.native = native;
    const status = JSON.parse(native.statusJson()) as { concurrency: number };
    this.concurrency = Math.max(1, status.concurrency);
    this.loop = this.pollLoop(native);
    this.logger.info(
      `typescript worker running (worker_id=${native.workerId}, concurrency=${status.concurrency}, ${callables.length} callables)`,
    );
    return this;
  }

  /**
   * Runs the worker until it is stopped: by SIGTERM or SIGINT (running
   * handlers finish, for up to `worker.shutdown_timeout_ms`; a second
   * signal gives them up at once) or by {@link stop}.
   */
  async run(): Promise<void> {
    await this.start();
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.stopRequested) {
        this.logger.warn(`second ${signal}: giving running steps back`);
        for (const id of this.running.keys()) this.tryAbandon(id);
      } else {
        this.logger.info(`${signal}: stopping after running handlers finish (again to stop at once)`);
      }
      this.requestStop();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    try {
      await this.stopped();
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  }

  /** Asks the worker to stop; returns at once. */
  requestStop(): void {
    this.stopRequested = true;
    this.native?.stop();
  }

  /** Stops the worker: no new claims, running handlers finish; resolves when it has (at once if it never started). */
  async stop(): Promise<void> {
    if (!this.native) return;
    this.requestStop();
    await this.stopped();
  }

  /** Resolves once the worker has stopped and its loops have seen it. */
  async stopped(): Promise<void> {
    const native = this.nativeWorker();
    await native.stopped();
    // The loop ends at its next poll, then waits for the handlers it
    // started; one stuck in a handler that ignored its cancel flag is left
    // behind (it holds no timer of ours).
    await Promise.race([this.loop, delay(2000)]);
    this.stopCancelTimer();
  }

  /** This worker's id, as recorded in claims and transitions. */
  get workerId(): string {
    return this.nativeWorker().workerId;
  }

  /** State, id, concurrency, dispatches by state and totals. */
  status(): WorkerStatus {
    // The core's status, with its one snake_case field renamed.
    const { worker_id: workerId, ...rest } = JSON.parse(this.nativeWorker().statusJson()) as Omit<
      WorkerStatus,
      "workerId" | "handlersRunning"
    > & { worker_id: string };
    return { ...rest, workerId, handlersRunning: this.running.size };
  }

  private nativeWorker(): NativeWorker {
    if (!this.native) throw new WorkerError("the worker is not started: call start() or run() first");
    return this.native;
  }

  private async pollLoop(native: NativeWorker): Promise<void> {
    for (;;) {
      const free = this.concurrency - this.inFlight.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        continue;
      }
      let batch: NativeDispatch[] | null;
      try {
        batch = await native.poll(free, POLL_WAIT_MS);
      } catch (err) {
        if (native.isStopped()) break;
        this.logger.error(`polling failed: ${(fromNative(err) as Error).message}`);
        await delay(POLL_WAIT_MS);
        continue;
      }
      if (batch === null) break;
      for (const dispatch of batch) {
        const running: Promise<void> = this.runDispatch(native, dispatch)
          .catch((err: unknown) => this.logger.error(`running step ${dispatch.id} failed: ${String(err)}`))
          .finally(() => {
          this.inFlight.delete(running);
          const wake = this.slotFreed;
          this.slotFreed = undefined;
          wake?.();
        });
        this.inFlight.add(running);
      }
    }
    await Promise.all(this.inFlight);
  }

  private async runDispatch(native: NativeWorker, dispatch: NativeDispatch): Promise<void> {
    const abort = new AbortController();
    let ctx: StepContext;
    try {
      ctx = new StepContext(JSON.parse(dispatch.contextJson) as Partial<WireContext>, native, dispatch.id, abort.signal);
    } catch (err) {
      this.settle(() => deliverThrown(native, dispatch.id, err), undefined);
      return;
    }
    const handler = this.registry.get(dispatch.callable);
    if (handler === undefined) {
      const missing = new PermanentError(`no TypeScript handler is registered for \`${dispatch.callable}\``, {
        errorType: "handler_not_found",
      });
      this.settle(() => deliver(native, dispatch.id, failureEnvelope(missing)), ctx);
      return;
    }
    this.running.set(dispatch.id, { ctx, abort });
    this.startCancelTimer(native);
    let envelope: WireOutcome | undefined;
    let thrown: unknown;
    try {
      envelope = successEnvelope(await handler(ctx));
    } catch (err) {
      if (isStepError(err)) envelope = failureEnvelope(err);
      else thrown = err;
    } finally {
      this.running.delete(dispatch.id);
      if (this.running.size === 0) this.stopCancelTimer();
    }
    if (this.givenBack.delete(dispatch.id)) {
      // Given back by a second stop signal: another worker runs the step.
      this.logger.info(`step ${ctx.stepName} (${ctx.stepUuid}) was given back; its handler's result is discarded`);
      return;
    }
    if (envelope !== undefined) {
      const outcome = envelope;
      this.settle(() => deliver(native, dispatch.id, outcome), ctx);
    } else {
      this.settle(() => deliverThrown(native, dispatch.id, thrown), ctx);
    }
  }

  private settle(send: () => boolean, ctx: StepContext | undefined): void {
    try {
      if (!send() && ctx) {
        this.logger.warn(
          `result of step ${ctx.stepName} (${ctx.stepUuid}, attempt ${ctx.attempt}) discarded: the attempt was over ` +
            "(it timed out, its task was cancelled or it lost its lease)",
        );
      }
    } catch (err) {
      this.logger.error(`completing step ${ctx?.stepUuid ?? "?"} failed: ${(fromNative(err) as Error).message}`);
    }
  }

  private tryAbandon(id: number): void {
    try {
      this.native?.abandon(id);
      this.givenBack.add(id);
    } catch {
      // Already settled: nothing to give back.
    }
  }

  /** Aborts the AbortSignal of handlers whose attempt the core says is over. */
  private startCancelTimer(native: NativeWorker): void {
    if (this.cancelTimer) return;
    this.cancelTimer = setInterval(() => {
      for (const [id, { abort }] of this.running) {
        if (!abort.signal.aborted && native.isCancelled(id)) abort.abort(new Error("the attempt is over"));
      }
    }, CANCEL_CHECK_MS);
    // Never what keeps the process alive.
    this.cancelTimer.unref();
  }

  private stopCancelTimer(): void {
    if (this.cancelTimer) clearInterval(this.cancelTimer);
    this.cancelTimer = undefined;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
