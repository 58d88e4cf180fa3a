/**
 * Errors a handler throws to fail its step on purpose, and errors the
 * worker itself throws.
 *
 * Throw {@link RetryableError} for a failure another attempt may fix (a
 * gateway timeout, a 503) and {@link PermanentError} for one no retry will
 * fix (a declined card, invalid input). Any other thrown value fails the
 * step as a *retryable* `exception` failure carrying its name, message and
 * stack, so the step's retry policy decides how often it is tried again.
 */

/** Options every {@link StepError} takes. */
export interface StepErrorOptions {
  /** An application error code (`"card_declined"`). */
  code?: string;
  /** Extra JSON-serialisable context. */
  details?: unknown;
  /** The failure's category; `handler_error` when unset. */
  errorType?: string;
}

/** Base class of the errors that fail a step on purpose. */
export abstract class StepError extends Error {
  /** Whether another attempt may help. */
  abstract readonly retryable: boolean;
  readonly code?: string;
  readonly details?: unknown;
  readonly errorType?: string;

  constructor(message: string, options: StepErrorOptions = {}) {
    super(message);
    this.name = new.target.name;
    this.code = options.code;
    this.details = options.details;
    this.errorType = options.errorType;
  }
}

/** Options of a {@link RetryableError}. */
export interface RetryableErrorOptions extends StepErrorOptions {
  /**
   * Wait at least this many milliseconds before the next attempt; wins over
   * the step's backoff policy, still capped by its `max_backoff_ms` (an HTTP
   * `Retry-After` you received is a good value).
   */
  retryAfterMs?: number;
}

/** A failure another attempt may fix. */
export class RetryableError extends StepError {
  readonly retryable = true;
  readonly retryAfterMs?: number;

  constructor(message: string, options: RetryableErrorOptions = {}) {
    super(message, options);
    if (options.retryAfterMs !== undefined && !(options.retryAfterMs >= 0)) {
      throw new RangeError("retryAfterMs must be a non-negative number");
    }
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A failure no retry will fix: the step fails at once and its dependents never run. */
export class PermanentError extends StepError {
  readonly retryable = false;
}

/** The worker could not start, or a call on it failed. */
export class WorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The configuration (TOML, environment or options) is invalid. */
export class ConfigError extends WorkerError {}

/** The worker was started in a parent process: a worker does not survive a fork. */
export class ForkError extends WorkerError {}

const CODES: ReadonlyArray<[string, new (message: string) => WorkerError]> = [
  ["TASKER_CONFIG_ERROR: ", ConfigError],
  ["TASKER_FORK_ERROR: ", ForkError],
  ["TASKER_WORKER_ERROR: ", WorkerError],
];

/** The addon's error as the class that says what it is. */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  for (const [prefix, Class] of CODES) {
    if (err.message.startsWith(prefix)) return new Class(err.message.slice(prefix.length));
  }
  return err;
}
