/**
 * Handlers of the linear, diamond, tree and mixed-DAG examples
 * (`linear_workflow.yaml`, `diamond_workflow.yaml`, `tree_workflow.yaml`,
 * `mixed_dag_workflow.yaml`).
 *
 * Each step reads the `value` of its direct parents (or the task context's
 * `value`, at the root) and returns `{ value: n }`: `examples::square`
 * squares its single input, `examples::sum` adds its inputs and
 * `examples::product` multiplies them.
 *
 * Arithmetic is checked as in the Rust handlers, at every partial sum or
 * product (Rust's `try_fold` with `checked_add`): a value JavaScript cannot
 * represent exactly (beyond ±(2^53 − 1), see `_json.ts`) fails the step
 * permanently instead of producing a rounded number.
 *
 * Written in function style: each handler is a named async function
 * registered with {@link handle}.
 * @module
 */

import { PermanentError, handle, type StepContext } from "../ts";

import { asInt, at, isInt } from "./_json";

/** A `{ value }` result. */
export interface Value {
  value: number;
}

/** The parents' values, or the context's `value` for a root step. */
function inputs(ctx: StepContext): number[] {
  if (ctx.directParents.length === 0) {
    const value = asInt(at(ctx.context, "value"));
    if (value === undefined) throw new PermanentError("context.value must be an integer");
    return [value];
  }
  return ctx.parentResults().map(([parent, result]) => {
    const value = asInt(at(result, "value"));
    if (value === undefined) throw new PermanentError(`parent \`${parent}\` did not return an integer value`);
    return value;
  });
}

/** `value`, or a permanent failure if JavaScript cannot hold it exactly. */
function checked(ctx: StepContext, value: number): number {
  // A double only leaves the safe range when the exact result did, so this catches every overflow.
  if (!isInt(value)) {
    throw new PermanentError(`step \`${ctx.stepName}\` overflowed a safe integer (beyond ±(2^53 - 1))`);
  }
  return value;
}

/** `{ value: x * x }` of the single input `x`. */
export async function square(ctx: StepContext): Promise<Value> {
  const values = inputs(ctx);
  if (values.length !== 1) throw new PermanentError("examples::square takes exactly one parent");
  const [x] = values as [number];
  return { value: checked(ctx, x * x) };
}

/** `{ value: a + b + … }` of the inputs (0 for none). */
export async function sumValues(ctx: StepContext): Promise<Value> {
  return { value: inputs(ctx).reduce((total, n) => checked(ctx, total + n), 0) };
}

/** `{ value: a * b * … }` of the inputs (1 for none). */
export async function product(ctx: StepContext): Promise<Value> {
  return { value: inputs(ctx).reduce((total, n) => checked(ctx, total * n), 1) };
}

handle("examples::square", square);
handle("examples::sum", sumValues);
handle("examples::product", product);
