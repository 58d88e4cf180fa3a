/**
 * Tasker's TypeScript worker: write step handlers in TypeScript and run
 * them on Tasker's Rust worker core, which claims steps, keeps their
 * leases, enforces timeouts and writes results; your handlers only compute.
 *
 * ```ts
 * import { Worker, RetryableError } from "@tasker/worker";
 *
 * const worker = new Worker({ concurrency: 8 });
 * worker.handle("ecommerce::process_payment", async (ctx) => {
 *   const total = ctx.dependency("validate_order").order_total_cents;
 *   if (await gatewayBusy()) throw new RetryableError("gateway unavailable", { retryAfterMs: 500 });
 *   return { charged_cents: total };
 * });
 * await worker.run();
 * ```
 *
 * @packageDocumentation
 */

export { ApiError, TaskerClient, TransportError, type CreateTaskOptions, type StepView, type TaskView } from "./client";
export { StepContext } from "./context";
export {
  ConfigError,
  ForkError,
  PermanentError,
  RetryableError,
  StepError,
  WorkerError,
  type RetryableErrorOptions,
  type StepErrorOptions,
} from "./errors";
export { Batchable, Decision, Registry, StepHandler, handle, registry, type HandlerFn, type HandlerResult } from "./handler";
export { NotJson } from "./json";
export { Success, createBatches, createSteps, cursors, noBatches, noBranches, type ResultOption } from "./results";
export type { BatchConfig, Checkpoint, CursorConfig } from "./wire";
export { Worker, type Logger, type WorkerOptions, type WorkerStatus } from "./worker";
