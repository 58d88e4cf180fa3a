/**
 * The addon (Rust, napi-rs) and its types. Users import the package's
 * index, not this.
 * @internal
 */

import * as path from "node:path";

/** A step for a JS handler to run. */
export interface NativeDispatch {
  id: number;
  callable: string;
  contextJson: string;
}

/** Why a checkpoint was not saved. */
export interface CheckpointRefusal {
  message: string;
  retryable: boolean;
  errorType: string;
}

/** How to start a worker. */
export interface StartOptions {
  callables: string[];
  environment?: string;
  configDir?: string;
  overridesJson: string;
  includeBuiltins: boolean;
}

/** A running worker core. */
export interface NativeWorker {
  readonly workerId: string;
  poll(max: number, waitMs: number): Promise<NativeDispatch[] | null>;
  complete(id: number, outcomeJson: string): boolean;
  failWithException(id: number, kind: string, message: string, stack?: string): boolean;
  rejectResult(id: number, detail: string): boolean;
  abandon(id: number): void;
  isCancelled(id: number): boolean;
  saveCheckpoint(id: number, checkpointJson: string): Promise<CheckpointRefusal | null>;
  stop(): void;
  stopped(): Promise<void>;
  isStopped(): boolean;
  statusJson(): string;
}

interface Addon {
  startWorker(options: StartOptions): Promise<NativeWorker>;
  terminalTaskStates(): string[];
}

let loaded: Addon | undefined;

/**
 * The addon, loaded on first use, so that importing the package (for
 * `StepContext.forTest` in unit tests, say) does not need it built.
 * `npm run build:native` puts it in native/, beside dist/.
 */
export function addon(): Addon {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require(path.join(__dirname, "..", "..", "native", "tasker.node")) as Addon;
  return loaded;
}
