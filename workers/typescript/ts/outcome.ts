/**
 * Turning what a handler did into the outcome envelope the Rust core reads,
 * and handing it over. Thrown values that are not {@link StepError}s and
 * results that are not JSON go to the native side as facts; the rules that
 * turn them into failures live in Rust, once for every language.
 * @internal
 */

import { StepError, RetryableError } from "./errors";
import { checkJson, NotJson } from "./json";
import type { NativeWorker } from "./native";
import { Success } from "./results";
import type { WireFailure, WireOutcome } from "./wire";

/** The envelope of a handler's resolved value. */
export function successEnvelope(value: unknown): WireOutcome {
  if (value instanceof Success) {
    return value.control === undefined
      ? { status: "success", result: value.result }
      : { status: "success", result: value.result, control: value.control };
  }
  return { status: "success", result: value === undefined ? null : value };
}

/** The envelope of a {@link StepError} the handler threw. */
export function failureEnvelope(error: StepError): WireOutcome {
  const failure: WireFailure = { message: error.message, retryable: error.retryable };
  if (error.errorType !== undefined) failure.error_type = error.errorType;
  if (error.code !== undefined) failure.code = error.code;
  if (error.details !== undefined) failure.details = error.details;
  if (error instanceof RetryableError && error.retryAfterMs !== undefined) {
    failure.retry_after_ms = Math.round(error.retryAfterMs);
  }
  return { status: "failure", error: failure };
}

/**
 * Serialises `envelope` and completes `id` with it; a result that is not
 * JSON fails the step as `invalid_result`. Whether the core accepted it
 * (`false`: the attempt was over).
 */
export function deliver(native: NativeWorker, id: number, envelope: WireOutcome): boolean {
  let text: string;
  try {
    if (envelope.status === "success") checkJson(envelope.result);
    else if (envelope.error.details !== undefined) checkJson(envelope.error.details, "details");
    text = JSON.stringify(envelope);
  } catch (err) {
    const detail = err instanceof NotJson ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
    return native.rejectResult(id, detail);
  }
  return native.complete(id, text);
}

/** Fails `id` with a thrown value that is not a Tasker error, with its stack. */
export function deliverThrown(native: NativeWorker, id: number, thrown: unknown): boolean {
  if (thrown instanceof Error) {
    return native.failWithException(id, thrown.name || thrown.constructor.name, thrown.message, thrown.stack);
  }
  const kind = thrown === null ? "null" : typeof thrown === "object" ? (thrown.constructor?.name ?? "Object") : typeof thrown;
  return native.failWithException(id, kind, String(thrown));
}

/** Whether a thrown value is one of the errors that fail a step on purpose. */
export function isStepError(thrown: unknown): thrown is StepError {
  return thrown instanceof StepError;
}
