/**
 * Handlers of the diamond + decision + batch example
 * (`diamond_decision_batch.yaml`).
 *
 * A diamond splits a list of numbers into evens and odds (`load_numbers` →
 * `select_evens` / `select_odds`); a decision (`choose_dominant`) picks the
 * parity with more numbers (evens on a tie) and creates only that parity's
 * batch analyzer; the analyzer (`plan_batches`) splits its numbers into
 * batches of `batch_config.batch_size`; each batch worker (`process_batch`)
 * sums its numbers and their squares; and a deferred convergence step
 * (`combine_batches`) adds the batches up.
 *
 * Written in function style: decisions and batch plans are returned as
 * {@link Success} values built by {@link createSteps}, {@link createBatches}
 * and {@link noBatches}, without a handler class, and registered with
 * `registry.handle`.
 * @module
 */

import {
  Batchable,
  PermanentError,
  createBatches,
  createSteps,
  noBatches,
  registry,
  type StepContext,
  type Success,
} from "../ts";

import { asInt, asUint, at, isInt, isObject, text } from "./_json";

/** The `numbers` of a step's result (or of the task context). */
function numbersOf(result: unknown, step: string): number[] {
  const numbers = at(result, "numbers");
  if (!Array.isArray(numbers)) throw new PermanentError(`\`${step}\` gave no numbers`);
  if (numbers.some((n) => asInt(n) === undefined)) throw new PermanentError(`\`${step}\` gave a non-integer`);
  return numbers as number[];
}

function select(ctx: StepContext, even: boolean) {
  const chosen = numbersOf(ctx.dependency("diamond_start"), "diamond_start").filter((n) => (n % 2 === 0) === even);
  return { numbers: chosen, count: chosen.length };
}

function index(value: unknown): number {
  const i = asUint(value);
  if (i === undefined) throw new PermanentError("cursors must be indexes");
  return i;
}

/** `{ numbers: [...] }` of the task context, checked to be integers. */
export async function loadNumbers(ctx: StepContext) {
  return { numbers: numbersOf(ctx.context, "the task context") };
}

/** The even numbers of `diamond_start`, and how many there are. */
export async function selectEvens(ctx: StepContext) {
  return select(ctx, true);
}

/** The odd numbers of `diamond_start`, and how many there are. */
export async function selectOdds(ctx: StepContext) {
  return select(ctx, false);
}

/** The decision: creates the batch analyzer of the parity with more numbers (evens on a tie). */
export async function chooseDominant(ctx: StepContext): Promise<Success> {
  const evens = numbersOf(ctx.dependency("branch_evens"), "branch_evens").length;
  const odds = numbersOf(ctx.dependency("branch_odds"), "branch_odds").length;
  const even = evens >= odds;
  return createSteps([even ? "even_batch_analyzer" : "odd_batch_analyzer"], {
    result: { dominant: even ? "even" : "odd", even_count: evens, odd_count: odds },
  });
}

/** The batchable step: batches of the numbers of step `initialization.source`. */
export async function planBatches(ctx: StepContext): Promise<Success> {
  const source = ctx.initializationAs((init) => text(init, "source"));
  const numbers = numbersOf(ctx.dependency(source), source);
  const result = { source, numbers };
  if (numbers.length === 0) return noBatches({ result });
  const size = ctx.batchConfig ? ctx.batchConfig.batchSize : 5;
  // Batch ids "0", "1", … as the Rust example numbers them.
  return createBatches(Batchable.cursors(numbers.length, size, { firstId: 0, idWidth: 0 }), { result });
}

/** A batch worker: count, sum and sum of squares of its slice of the analyzer's numbers. */
export async function processBatch(ctx: StepContext) {
  const cursor = ctx.batchCursor();
  const parents = ctx.parentResults();
  const first = parents[0];
  if (first === undefined) throw new PermanentError("a batch worker needs its analyzer");
  const [analyzer, planned] = first;
  const numbers = numbersOf(planned, analyzer);
  const start = index(cursor.startCursor);
  const end = index(cursor.endCursor);
  if (!(start <= end && end <= numbers.length)) throw new PermanentError("cursor outside the numbers");
  const batch = numbers.slice(start, end);
  // Squares are never negative: if the total is a safe integer, every partial sum was.
  const squares = batch.reduce((total, n) => total + n * n, 0);
  if (!isInt(squares)) throw new PermanentError("sum of squares overflows");
  return {
    batch_id: cursor.batchId,
    count: batch.length,
    sum: batch.reduce((total, n) => total + n, 0),
    sum_of_squares: squares,
  };
}

/** The deferred convergence: the dominant parity and the totals of every batch that ran. */
export async function combineBatches(ctx: StepContext) {
  let batches = 0;
  let count = 0;
  let total = 0;
  let squares = 0;
  for (const [, result] of ctx.parentResults()) {
    if (!isObject(result) || !Object.hasOwn(result, "batch_id")) continue;
    batches += 1;
    count += asUint(result.count) ?? 0;
    total += asInt(result.sum) ?? 0;
    squares += asInt(result.sum_of_squares) ?? 0;
    if (!isInt(total) || !isInt(squares)) throw new PermanentError("batch totals overflow");
  }
  return {
    dominant: at(ctx.dependency("routing_decision"), "dominant"),
    batches,
    count,
    sum: total,
    sum_of_squares: squares,
  };
}

// `registry.handle` chains, for a module that registers several at once.
registry
  .handle("parity::load_numbers", loadNumbers)
  .handle("parity::select_evens", selectEvens)
  .handle("parity::select_odds", selectOdds)
  .handle("parity::choose_dominant", chooseDominant)
  .handle("parity::plan_batches", planBatches)
  .handle("parity::process_batch", processBatch)
  .handle("parity::combine_batches", combineBatches);
