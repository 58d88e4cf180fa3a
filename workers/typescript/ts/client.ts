/**
 * A small client for Tasker's REST API: submit a task, read it, wait for it
 * — enough for a Node service to hand work to Tasker without another
 * library. Methods resolve the API's JSON (the task view of SPEC §8.1, with
 * its snake_case field names as the API defines them).
 */

import { addon } from "./native";

/** The server answered with an error. */
export class ApiError extends Error {
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The stable error code (`duplicate_task`, `schema_mismatch`, …). */
    readonly code: string,
    message: string,
    /** Structured details. */
    readonly details?: unknown,
  ) {
    super(`${message} (${status} ${code})`);
    this.name = "ApiError";
  }
}

/** The server could not be reached or did not answer in time. */
export class TransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransportError";
  }
}

/** A task as the API shows it (the fields the package relies on; the rest pass through). */
export interface TaskView {
  task_uuid: string;
  state: string;
  steps: StepView[];
  [field: string]: unknown;
}

/** A step as the API shows it. */
export interface StepView {
  workflow_step_uuid: string;
  name: string;
  state: string;
  attempts: number;
  results: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- users' JSON
  last_error: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  [field: string]: unknown;
}

/** Optional fields of a task request. */
export interface CreateTaskOptions {
  version?: string;
  initiator?: string;
  sourceSystem?: string;
  reason?: string;
  tags?: string[];
  priority?: number;
  correlationId?: string;
  idempotencyKey?: string;
}

/** The task states a task does not leave by itself (from the core, so never out of date). */
let terminal: Set<string> | undefined;
function isTerminal(state: string): boolean {
  terminal ??= new Set(addon().terminalTaskStates());
  return terminal.has(state);
}

/** `new TaskerClient("http://127.0.0.1:8080")`: calls a Tasker server's REST API. */
export class TaskerClient {
  private readonly base: string;

  /** @param timeoutMs how long to wait for each response */
  constructor(
    url: string,
    private readonly timeoutMs = 30_000,
  ) {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new TypeError(`\`${url}\` is not an http(s) URL`);
    this.base = url.replace(/\/+$/, "");
  }

  /**
   * Creates a task of template `namespace/name` (the newest version unless
   * `version`).
   * @throws ApiError `template_not_found`, `schema_mismatch`, `duplicate_task` (details carry the existing `task_uuid`), …
   */
  createTask(namespace: string, name: string, context: unknown = {}, options: CreateTaskOptions = {}): Promise<TaskView> {
    const body = {
      namespace,
      name,
      context,
      version: options.version,
      initiator: options.initiator,
      source_system: options.sourceSystem,
      reason: options.reason,
      tags: options.tags,
      priority: options.priority,
      correlation_id: options.correlationId,
      idempotency_key: options.idempotencyKey,
    };
    return this.call("POST", "/v1/tasks", JSON.stringify(body), "application/json");
  }

  /** The task view, with its steps. */
  getTask(taskUuid: string): Promise<TaskView> {
    return this.call("GET", `/v1/tasks/${encodeURIComponent(taskUuid)}`);
  }

  /** Cancels a task that has not finished. */
  cancelTask(taskUuid: string, reason?: string): Promise<TaskView> {
    const query = reason ? `?${new URLSearchParams({ reason })}` : "";
    return this.call("DELETE", `/v1/tasks/${encodeURIComponent(taskUuid)}${query}`);
  }

  /** A step's attempts and state transitions. */
  stepAudit(taskUuid: string, stepUuid: string): Promise<{ attempts: Array<Record<string, any>> }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return this.call("GET", `/v1/tasks/${encodeURIComponent(taskUuid)}/workflow_steps/${encodeURIComponent(stepUuid)}/audit`);
  }

  /** Registers a template given as YAML (idempotent for the same content). */
  registerTemplate(yaml: string): Promise<unknown> {
    return this.call("POST", "/v1/templates", yaml, "application/yaml");
  }

  /**
   * Waits for the task to finish (`complete`, `error`, `cancelled` or
   * `resolved_manually`) and resolves its view.
   */
  async wait(taskUuid: string, timeoutMs = 60_000, pollMs = 100): Promise<TaskView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const task = await this.getTask(taskUuid);
      if (isTerminal(task.state)) return task;
      if (Date.now() > deadline) throw new Error(`task ${taskUuid} is still ${task.state} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  private async call<T>(method: string, path: string, body?: string, contentType?: string): Promise<T> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        body,
        headers: { accept: "application/json", ...(contentType ? { "content-type": contentType } : {}) },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new TransportError(`cannot reach the Tasker server at ${this.base}: ${(err as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let error: { code?: string; message?: string; details?: unknown } = {};
      try {
        error = (JSON.parse(text) as { error: typeof error }).error ?? {};
      } catch {
        error = { code: "unexpected_response", message: text.slice(0, 200) };
      }
      throw new ApiError(response.status, error.code ?? "unknown", error.message ?? "", error.details);
    }
    return (text ? JSON.parse(text) : null) as T;
  }
}
