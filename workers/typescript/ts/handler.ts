/**
 * How handlers are written and found: a {@link Registry} keyed by
 * `callable`, filled with functions (`registry.handle("ns::name", async
 * (ctx) => …)`) or {@link StepHandler} classes, with the {@link Decision}
 * and {@link Batchable} capabilities mixed in where a step needs them:
 *
 * ```ts
 * class RoutingDecision extends Decision(StepHandler) {
 *   static override readonly callable = "approvals::routing_decision";
 *   async call(ctx: StepContext) {
 *     const amount = ctx.dependency("validate_request").amount;
 *     return this.createSteps(amount < 1000 ? ["auto_approve"] : ["manager_approval"], { result: { amount } });
 *   }
 * }
 * registry.register(RoutingDecision);
 * ```
 */

import type { StepContext } from "./context";
import * as results from "./results";
import type { Success } from "./results";
import type { CursorConfig } from "./wire";

/** What a handler resolves to: any JSON value, or a {@link Success}. */
export type HandlerResult = unknown;

/** A function-style handler. */
export type HandlerFn = (ctx: StepContext) => HandlerResult | Promise<HandlerResult>;

/**
 * Base class of class-style handlers: set `static override readonly
 * callable` (`override` because the base declares it) and
 * implement `call`. One instance serves every step: keep per-step state in
 * locals.
 */
export abstract class StepHandler {
  /** The callable this class handles. */
  static readonly callable?: string;

  /** Runs the step. Resolve its result; throw RetryableError / PermanentError to fail it. */
  abstract call(ctx: StepContext): HandlerResult | Promise<HandlerResult>;
}

/** A class constructor (for mixins). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Constructor<T = object> = abstract new (...args: any[]) => T;

/** Capability of a decision step's handler: choose the downstream steps to create (SPEC §4.6). */
export function Decision<B extends Constructor<StepHandler>>(Base: B) {
  abstract class WithDecision extends Base {
    /** Create these downstream steps. */
    createSteps(steps: readonly string[], options?: results.ResultOption): Success {
      return results.createSteps(steps, options);
    }

    /** Create nothing; convergence still runs. */
    noBranches(options?: results.ResultOption): Success {
      return results.noBranches(options);
    }
  }
  return WithDecision;
}
// The helpers without a class: Decision.createSteps([...]).
Decision.createSteps = results.createSteps;
Decision.noBranches = results.noBranches;

/** Capability of a batchable step's handler: split a dataset into batch workers (SPEC §4.7). */
export function Batchable<B extends Constructor<StepHandler>>(Base: B) {
  abstract class WithBatches extends Base {
    /** One batch worker per cursor. */
    createBatches(cursors: readonly CursorConfig[], options?: results.ResultOption): Success {
      return results.createBatches(cursors, options);
    }

    /** Nothing to process; convergence still runs. */
    noBatches(options?: results.ResultOption): Success {
      return results.noBatches(options);
    }

    /** Cursors covering `[0, totalItems)`, `batchSize` at a time. */
    cursors(totalItems: number, batchSize: number, options?: results.CursorOptions): CursorConfig[] {
      return results.cursors(totalItems, batchSize, options);
    }
  }
  return WithBatches;
}
Batchable.createBatches = results.createBatches;
Batchable.noBatches = results.noBatches;
Batchable.cursors = results.cursors;

type HandlerClass = (new () => StepHandler) & { readonly callable?: string };

/** Handlers by callable. The worker serves the namespaces whose templates only name callables it has. */
export class Registry {
  private readonly handlers = new Map<string, HandlerFn>();

  /** Registers a function under `callable` (replacing any earlier one). */
  handle(callable: string, fn: HandlerFn): this {
    if (typeof callable !== "string" || callable.trim() === "") {
      throw new TypeError("a callable is a non-empty string such as 'ecommerce::process_payment'");
    }
    if (typeof fn !== "function") throw new TypeError(`the handler of ${callable} is not a function`);
    this.handlers.set(callable, fn);
    return this;
  }

  /** Registers a StepHandler class under its `static callable` (one instance, made now). */
  register(Class: HandlerClass): this {
    const callable = Class.callable;
    if (!callable) throw new TypeError(`${Class.name} has no static callable`);
    const instance = new Class();
    return this.handle(callable, (ctx) => instance.call(ctx));
  }

  /** Adds every handler of `other` (its entries win). */
  merge(other: Registry): this {
    for (const [callable, fn] of other.handlers) this.handlers.set(callable, fn);
    return this;
  }

  /** The handler of `callable`. */
  get(callable: string): HandlerFn | undefined {
    return this.handlers.get(callable);
  }

  /** Every registered callable, sorted. */
  callables(): string[] {
    return [...this.handlers.keys()].sort();
  }

  /** How many handlers are registered. */
  get size(): number {
    return this.handlers.size;
  }
}

/** Where {@link handle} registers by default. */
export const registry = new Registry();

/** Registers a function handler in the default {@link registry}. */
export function handle(callable: string, fn: HandlerFn): void {
  registry.handle(callable, fn);
}
