/**
 * Unit tests of the example handlers in `examples/`: each handler is
 * called directly with a {@link StepContext.forTest} context, so no
 * database, server or worker is needed. Results are compared with the
 * field names and values of the Rust examples (`workers/rust/src/`) and
 * the Python ports' unit tests (`workers/python/tests/test_examples_unit.py`).
 */

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

import { PermanentError, RetryableError, StepContext, Success, registry, type Checkpoint } from "../ts";
import { failureEnvelope } from "../ts/outcome";
import type { ContextFields, CursorConfig } from "../ts/wire";
import { approvals, csvBatch, ecommerce, numbers, parity } from "../examples/all";
import { sampleOrder } from "./apps/orders";

/** The repository root, from `dist/test/` (where `npm test` runs this) or `test/`. */
const REPO = path.resolve(__dirname, path.basename(path.dirname(__dirname)) === "dist" ? "../../../.." : "../../..");
const SAMPLE_CSV = path.join(REPO, "workers", "rust", "data", "products.csv");
const TASK_UUID = "0190f0e4-8a1b-7c3d-9e2f-a1b2c3d4e5f6";

function ctx(fields: Partial<ContextFields> = {}): StepContext {
  return StepContext.forTest({ taskUuid: TASK_UUID, ...fields });
}

/** Runs the registered handler of `callable`. */
async function call(callable: string, context: StepContext): Promise<any> {
  const handler = registry.get(callable);
  assert.ok(handler, `${callable} is not registered`);
  return handler(context);
}

/** Fields of a context whose direct parents returned `{ value: v }`. */
function parents(values: Record<string, number>): Partial<ContextFields> {
  return {
    directParents: Object.keys(values),
    dependencyResults: Object.fromEntries(Object.entries(values).map(([name, value]) => [name, { value }])),
  };
}

/** The steps a decision created. */
function stepsOf(decision: Success): string[] {
  const control = decision.control;
  assert.ok(control?.type === "decision" && control.outcome === "create_steps", JSON.stringify(control));
  return control.steps;
}

/** The cursors (wire form) a batch plan created. */
function cursorsOf(plan: Success) {
  const control = plan.control;
  assert.ok(control?.type === "batches" && control.outcome === "create_batches", JSON.stringify(control));
  return control.cursor_configs;
}

/** Asserts `promise` rejects with an error of `Class` whose message matches `message`; that error. */
async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  Class: abstract new (...args: any[]) => E,
  message: RegExp,
): Promise<E> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof Class, `${String(caught)} is not a ${Class.name}`);
  assert.match(caught.message, message);
  return caught;
}

// -- registration ---------------------------------------------------------------

test("every callable of the example templates is registered", () => {
  const dir = path.join(REPO, "config", "tasks");
  const named = new Set<string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    for (const match of fs.readFileSync(path.join(dir, file), "utf8").matchAll(/callable:\s*"([^"]+)"/g)) {
      named.add(match[1]!);
    }
  }
  assert.equal(named.size, 23);
  assert.deepEqual([...named].filter((c) => registry.get(c) === undefined), []);
  assert.equal(csvBatch.SAMPLE_CSV, SAMPLE_CSV);
});

// -- numbers --------------------------------------------------------------------

test("linear, diamond and mixed DAG compute what their templates say", async () => {
  // linear_workflow.yaml: {"value": 6} squared four times is 6^16.
  let value = (await numbers.square(ctx({ context: { value: 6 } }))).value;
  for (const step of ["linear_step_2", "linear_step_3", "linear_step_4"]) {
    value = (await call("examples::square", ctx({ stepName: step, ...parents({ prev: value }) }))).value;
  }
  assert.equal(value, 6 ** 16);
  assert.equal(value, 2821109907456);
  // diamond_workflow.yaml: 6 → 36 → 1296 on both branches → their product.
  const start = (await numbers.square(ctx({ context: { value: 6 } }))).value;
  const b = (await numbers.square(ctx(parents({ diamond_start: start })))).value;
  const c = (await numbers.square(ctx(parents({ diamond_start: start })))).value;
  assert.deepEqual([start, b, c], [36, 1296, 1296]);
  assert.deepEqual(await call("examples::product", ctx(parents({ diamond_branch_b: b, diamond_branch_c: c }))), {
    value: 1296 * 1296,
  });
  // mixed_dag_workflow.yaml: {"value": 3} ends with 13284.
  const init = (await numbers.square(ctx({ context: { value: 3 } }))).value;
  const left = (await numbers.square(ctx(parents({ dag_init: init })))).value;
  const right = (await numbers.square(ctx(parents({ dag_init: init })))).value;
  const validate = (await numbers.square(ctx(parents({ dag_process_left: left })))).value;
  const transform = (await numbers.sumValues(ctx(parents({ dag_process_left: left, dag_process_right: right })))).value;
  const analyze = (await numbers.square(ctx(parents({ dag_process_right: right })))).value;
  assert.deepEqual(
    await call("examples::sum", ctx(parents({ dag_validate: validate, dag_transform: transform, dag_analyze: analyze }))),
    { value: 13284 },
  );
});

test("numbers reject bad inputs and results JavaScript cannot hold exactly", async () => {
  await rejectsWith(numbers.square(ctx(parents({ a: 1, b: 2 }))), PermanentError, /examples::square takes exactly one parent/);
  for (const bad of [2.5, true, "6", null, 2 ** 63]) {
    await rejectsWith(numbers.square(ctx({ context: { value: bad } })), PermanentError, /context\.value must be an integer/);
  }
  await rejectsWith(
    numbers.sumValues(ctx({ directParents: ["a"], dependencyResults: { a: { value: 1.5 } } })),
    PermanentError,
    /parent `a` did not return an integer value/,
  );
  const overflow = await rejectsWith(
    numbers.square(ctx({ stepName: "linear_step_4", context: { value: 94906266 } })),
    PermanentError,
    /step `linear_step_4` overflowed/,
  );
  assert.equal(overflow.retryable, false);
  assert.deepEqual(await numbers.square(ctx({ context: { value: 94906265 } })), { value: 94906265 ** 2 });
  // Checked at every partial sum, as Rust's `try_fold(checked_add)`.
  const max = Number.MAX_SAFE_INTEGER;
  await rejectsWith(numbers.sumValues(ctx(parents({ a: max, b: 1, c: -1 }))), PermanentError, /overflowed/);
  assert.deepEqual(await numbers.sumValues(ctx(parents({ a: max, b: -1, c: 1 }))), { value: max });
});

// -- ecommerce ------------------------------------------------------------------

const order = sampleOrder;

function paymentCtx(token: string, attempt = 1): StepContext {
  return ctx({
    context: order(token),
    attempt,
    initialization: { gateway: "sandbox" },
    directParents: ["reserve_inventory"],
    dependencyResults: { validate_order: { order_total_cents: 5248 }, reserve_inventory: { reservation_id: "res_x" } },
  });
}

test("validate_order computes the totals and rejects bad orders permanently", async () => {
  assert.deepEqual(await call("ecommerce::validate_order", ctx({ context: order() })), {
    customer_id: 7,
    customer_email: "ada@example.com",
    item_count: 3,
    order_total_cents: 2 * 1999 + 1250,
  });
  const zero = order("tok_ok", { items: [{ sku: "A", quantity: 0, unit_price_cents: 5 }] });
  await rejectsWith(ecommerce.validateOrder(ctx({ context: zero })), PermanentError, /item A has quantity 0/);
  const huge = order("tok_ok", { items: [{ sku: "A", quantity: 2 ** 30, unit_price_cents: 2 ** 30 }] });
  await rejectsWith(ecommerce.validateOrder(ctx({ context: huge })), PermanentError, /order total overflows/);
  const { payment: _dropped, ...noPayment } = order();
  await rejectsWith(ecommerce.validateOrder(ctx({ context: noPayment })), PermanentError, /invalid task context: missing 'payment'/);
  const mistyped = order("tok_ok", { items: [{ sku: "A", quantity: "2", unit_price_cents: 1 }] });
  await rejectsWith(ecommerce.reserveInventory(ctx({ context: mistyped })), PermanentError, /invalid task context: `quantity`/);
});

test("reserve_inventory derives a stable reservation and refuses out-of-stock SKUs", async () => {
  assert.deepEqual(await ecommerce.reserveInventory(ctx({ context: order(), initialization: { warehouse: "east" } })), {
    reservation_id: "res_a1b2c3d4e5f6",
    warehouse: "east",
    skus: ["BOOK-42", "MUG-7"],
  });
  assert.equal((await ecommerce.reserveInventory(ctx({ context: order() }))).warehouse, "main");
  const items = [
    { sku: "OK-1", quantity: 1, unit_price_cents: 1 },
    { sku: "OOS-9", quantity: 1, unit_price_cents: 1 },
  ];
  const err = await rejectsWith(ecommerce.reserveInventory(ctx({ context: order("tok_ok", { items }) })), PermanentError, /OOS-9 is out of stock/);
  assert.equal(err.code, "out_of_stock");
});

test("a declined card fails permanently on every attempt", async () => {
  for (const attempt of [1, 2]) {
    const err = await rejectsWith(ecommerce.processPayment(paymentCtx("tok_decline", attempt)), PermanentError, /card declined/);
    assert.equal(err.code, "card_declined");
    assert.equal(err.retryable, false);
  }
});

test("a flaky gateway fails the first attempt with a retry hint, then charges", async () => {
  const err = await rejectsWith(
    ecommerce.processPayment(paymentCtx("tok_flaky", 1)),
    RetryableError,
    /payment gateway unavailable \(503\)/,
  );
  assert.equal(err.retryable, true);
  assert.equal(err.retryAfterMs, 50);
  assert.equal(err.code, "gateway_unavailable");
  // What the core receives.
  assert.deepEqual(failureEnvelope(err), {
    status: "failure",
    error: { message: "payment gateway unavailable (503)", retryable: true, code: "gateway_unavailable", retry_after_ms: 50 },
  });
  assert.deepEqual(await call("ecommerce::process_payment", paymentCtx("tok_flaky", 2)), {
    payment_id: "pay_a1b2c3d4e5f6",
    method: "card",
    amount_charged_cents: 5248,
    gateway: "sandbox",
  });
  await rejectsWith(
    ecommerce.processPayment(ctx({ context: order(), dependencyResults: { validate_order: { order_total_cents: 1 } } })),
    PermanentError,
    /`reserve_inventory` result has no `reservation_id`/,
  );
});

test("ship_order books by shipping method", async () => {
  const paid = { process_payment: { payment_id: "pay_x" } };
  assert.deepEqual(await ecommerce.shipOrder(ctx({ context: order(), dependencyResults: paid })), {
    tracking_number: "TRKA1B2C3D4E5F6",
    address: "1 Infinite Loop",
    shipping_method: "express",
    estimated_days: 1,
  });
  const standard = order("tok_ok", { shipping: { address: "2 Main St", method: "standard" } });
  assert.equal((await ecommerce.shipOrder(ctx({ context: standard, dependencyResults: paid }))).estimated_days, 5);
  await rejectsWith(ecommerce.shipOrder(ctx({ context: order() })), PermanentError, /`process_payment` result has no `payment_id`/);
});

// -- approvals ------------------------------------------------------------------

const ROUTING_INIT = { auto_approve_below: 1000, finance_review_from: 5000 };

function request(amount: number, requester = "ada") {
  return { amount, requester, purpose: "travel" };
}

async function routing(amount: number, initialization: unknown = ROUTING_INIT): Promise<Success> {
  return new approvals.RoutingDecision().call(
    ctx({ initialization, directParents: ["validate_request"], dependencyResults: { validate_request: request(amount) } }),
  );
}

test("routing creates exactly the approvals the amount needs", async () => {
  const cases: Array<[number, string[]]> = [
    [500, ["auto_approve"]],
    [3000, ["manager_approval"]],
    [10000, ["manager_approval", "finance_review"]],
    [999, ["auto_approve"]],
    [1000, ["manager_approval"]],
    [4999, ["manager_approval"]],
    [5000, ["manager_approval", "finance_review"]],
  ];
  for (const [amount, steps] of cases) {
    const decision = await routing(amount);
    assert.ok(decision instanceof Success);
    assert.deepEqual(decision.control, { type: "decision", outcome: "create_steps", steps }, String(amount));
    assert.deepEqual(decision.result, { amount, route: steps });
  }
  assert.deepEqual(stepsOf(await routing(3000, { auto_approve_below: 5000 })), ["auto_approve"]);
  assert.deepEqual(stepsOf(await routing(3000, { finance_review_from: 2000 })), ["manager_approval", "finance_review"]);
  await rejectsWith(routing(3000, { auto_approve_below: "lots" }), PermanentError, /invalid handler initialization/);
});

test("the approval workflow runs end to end in memory for 500, 3000 and 10000", async () => {
  const expected: Array<[number, string[]]> = [
    [500, ["auto_approve"]],
    [3000, ["manager_approval"]],
    [10000, ["manager_approval", "finance_review"]],
  ];
  const approvedBy: Record<string, string> = { auto_approve: "policy", manager_approval: "manager", finance_review: "finance" };
  for (const [amount, branches] of expected) {
    const results: Record<string, unknown> = {};
    results.validate_request = await call("approvals::validate_request", ctx({ context: request(amount) }));
    assert.deepEqual(results.validate_request, request(amount));
    const decision: Success = await call(
      "approvals::routing_decision",
      ctx({ initialization: ROUTING_INIT, directParents: ["validate_request"], dependencyResults: { ...results } }),
    );
    results.routing_decision = decision.result;
    for (const step of stepsOf(decision)) {
      results[step] = await call(`approvals::${step}`, ctx({ directParents: ["routing_decision"], dependencyResults: { ...results } }));
      assert.deepEqual(results[step], { approved: true, approved_by: approvedBy[step], amount });
    }
    const final = await call("approvals::finalize_approval", ctx({ directParents: stepsOf(decision), dependencyResults: results }));
    assert.deepEqual(final, { approved: true, approvals: branches, amount });
  }
  await rejectsWith(new approvals.ValidateRequest().call(ctx({ context: request(-1) })), PermanentError, /amount must not be negative/);
  await rejectsWith(new approvals.ValidateRequest().call(ctx({ context: request(5, "  ") })), PermanentError, /requester is required/);
  await rejectsWith(
    new approvals.FinalizeApproval().call(ctx({ dependencyResults: { validate_request: request(5) } })),
    PermanentError,
    /no approval step ran/,
  );
});

// -- csv ------------------------------------------------------------------------

const CSV_BATCH_CONFIG = { workerTemplate: "process_csv_batch", parallelism: 4, batchSize: 200, failureStrategy: "fail_fast" };

/** Totals of data rows `first..=last`, computed independently of the handlers. */
function fileTotals(first = 1, last = 1000) {
  const rows = fs
    .readFileSync(SAMPLE_CSV, "utf8")
    .split(/\r?\n/)
    .slice(1)
    .filter((line) => line.trim() !== "")
    .slice(first - 1, last)
    .map((line) => line.split(","));
  return {
    rows_processed: rows.length,
    total_quantity: rows.reduce((sum, r) => sum + Number(r[3]), 0),
    total_value_cents: rows.reduce((sum, r) => sum + Number(r[3]) * Number(r[4]), 0),
  };
}

function batchCtx(
  start: number,
  end: number,
  options: { batchId?: string; attempt?: number; checkpoint?: Checkpoint; every?: number | null; context?: Record<string, unknown> } = {},
): StepContext {
  const batchId = options.batchId ?? "001";
  const every = options.every === undefined ? 50 : options.every;
  const batchCursor: CursorConfig = { batchId, startCursor: start, endCursor: end, batchSize: end - start };
  return ctx({
    stepName: `process_csv_batch_${batchId}`,
    context: { csv_file_path: SAMPLE_CSV, ...options.context },
    initialization: every === null ? {} : { checkpoint_every: every },
    attempt: options.attempt ?? 1,
    batchCursor,
    checkpoint: options.checkpoint ?? null,
    directParents: ["analyze_csv"],
    dependencyResults: { analyze_csv: { csv_file_path: SAMPLE_CSV, total_rows: 1000 } },
  });
}

test("analyze_csv plans cursors over the file, and nothing for an empty one", async () => {
  const plan = await new csvBatch.AnalyzeCsv().call(ctx({ context: { csv_file_path: SAMPLE_CSV }, batchConfig: CSV_BATCH_CONFIG }));
  assert.deepEqual(plan.result, { csv_file_path: SAMPLE_CSV, total_rows: 1000 });
  assert.deepEqual(plan.control, {
    type: "batches",
    outcome: "create_batches",
    worker_count: 5,
    cursor_configs: [0, 1, 2, 3, 4].map((i) => ({
      batch_id: String(i + 1).padStart(3, "0"),
      start_cursor: i * 200,
      end_cursor: (i + 1) * 200,
      batch_size: 200,
    })),
  });
  // Without a batch config, 100 rows a batch.
  assert.equal(cursorsOf(await call("csv::analyze_csv", ctx({ context: { csv_file_path: SAMPLE_CSV } }))).length, 10);
  assert.deepEqual(
    csvBatch.plan(1000, 300).map((c) => [c.startCursor, c.endCursor]),
    [[0, 300], [300, 600], [600, 900], [900, 1000]],
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tasker-csv-"));
  try {
    const empty = path.join(dir, "empty.csv");
    fs.writeFileSync(empty, "sku,name,category,quantity,unit_price_cents\n\n");
    const none = await new csvBatch.AnalyzeCsv().call(ctx({ context: { csv_file_path: empty }, batchConfig: CSV_BATCH_CONFIG }));
    assert.deepEqual(none.control, { type: "batches", outcome: "no_batches" });
    assert.deepEqual(none.result, { csv_file_path: empty, total_rows: 0 });
    const bad = path.join(dir, "bad.csv");
    fs.writeFileSync(bad, "sku,name,category,quantity,unit_price_cents\nA,a,c,1,2\nB,b,c,1_000,2\n");
    const context = ctx({ context: { csv_file_path: bad }, batchCursor: { batchId: "001", startCursor: 0, endCursor: 2, batchSize: 2 } });
    await rejectsWith(new csvBatch.ProcessCsvBatch().call(context), PermanentError, /row 2: `quantity` is not an integer/);
    await rejectsWith(
      new csvBatch.AnalyzeCsv().call(ctx({ context: { csv_file_path: path.join(dir, "nope.csv") } })),
      PermanentError,
      /cannot read/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a batch worker totals its range and checkpoints every n rows", async () => {
  const context = batchCtx(200, 400, { batchId: "002" });
  assert.deepEqual(await new csvBatch.ProcessCsvBatch().call(context), {
    batch_id: "002",
    first_row: 201,
    last_row: 400,
    resumed_from_row: 201,
    ...fileTotals(201, 400),
  });
  // Every 50 rows, but not at the end of the range.
  const saved = context.savedCheckpoints;
  assert.deepEqual(saved.map((c) => c.cursor), [250, 300, 350]);
  assert.deepEqual(saved.map((c) => c.itemsProcessed), [50, 100, 150]);
  const first50 = fileTotals(201, 250);
  assert.deepEqual(saved[0]!.partialResults, { rows: 50, quantity: first50.total_quantity, value_cents: first50.total_value_cents });
  // checkpoint_every defaults to 100.
  const defaults = batchCtx(0, 250, { every: null });
  await new csvBatch.ProcessCsvBatch().call(defaults);
  assert.deepEqual(defaults.savedCheckpoints.map((c) => c.cursor), [100, 200]);
});

test("a batch resumed from its checkpoint counts no row twice", async () => {
  const uninterrupted = await new csvBatch.ProcessCsvBatch().call(batchCtx(0, 200));
  // Batch 001 checkpoints at rows 50 and 100 then crashes at row 130 on attempt 1.
  const first = batchCtx(0, 200, { context: { fail_on_row: 130 } });
  const crash = await rejectsWith(new csvBatch.ProcessCsvBatch().call(first), RetryableError, /simulated crash at row 130/);
  assert.equal(crash.retryable, true);
  assert.deepEqual(first.savedCheckpoints.map((c) => c.cursor), [50, 100]);
  const retry = batchCtx(0, 200, { attempt: 2, context: { fail_on_row: 130 }, checkpoint: first.savedCheckpoints.at(-1)! });
  const resumed = await new csvBatch.ProcessCsvBatch().call(retry);
  assert.deepEqual(resumed, { batch_id: "001", first_row: 1, last_row: 200, resumed_from_row: 101, ...fileTotals(1, 200) });
  assert.deepEqual(retry.savedCheckpoints.map((c) => c.cursor), [150]);
  // Resuming from any checkpoint of a full run ends with the same totals.
  const full = batchCtx(0, 200);
  await new csvBatch.ProcessCsvBatch().call(full);
  for (const checkpoint of full.savedCheckpoints) {
    const again = await new csvBatch.ProcessCsvBatch().call(batchCtx(0, 200, { attempt: 2, checkpoint }));
    assert.equal(again.resumed_from_row, (checkpoint.cursor as number) + 1);
    assert.deepEqual(
      [again.rows_processed, again.total_quantity, again.total_value_cents],
      [uninterrupted.rows_processed, uninterrupted.total_quantity, uninterrupted.total_value_cents],
    );
  }
  await rejectsWith(
    new csvBatch.ProcessCsvBatch().call(batchCtx(0, 200, { attempt: 2, checkpoint: { cursor: 50, itemsProcessed: 50, partialResults: { rows: 50 } } })),
    PermanentError,
    /checkpoint does not parse/,
  );
  await rejectsWith(new csvBatch.ProcessCsvBatch().call(batchCtx(-1, 200)), PermanentError, /batch cursors must be row indexes/);
  await rejectsWith(new csvBatch.ProcessCsvBatch().call(batchCtx(900, 1100)), PermanentError, /row 1001 is past the end/);
});

test("the batches add up to the file, and a failed batch is reported by convergence", async () => {
  const plan = await new csvBatch.AnalyzeCsv().call(ctx({ context: { csv_file_path: SAMPLE_CSV }, batchConfig: CSV_BATCH_CONFIG }));
  const results: Record<string, unknown> = { analyze_csv: plan.result };
  for (const cursor of cursorsOf(plan)) {
    results[`process_csv_batch_${cursor.batch_id}`] = await call(
      "csv::process_csv_batch",
      batchCtx(cursor.start_cursor as number, cursor.end_cursor as number, { batchId: cursor.batch_id }),
    );
  }
  const names = Object.keys(results).filter((n) => n.startsWith("process_csv_batch_")).sort();
  const expected = fileTotals();
  assert.deepEqual(await call("csv::aggregate_results", ctx({ directParents: names, dependencyResults: results })), {
    batches: 5,
    failed_batches: [],
    total_rows: 1000,
    total_quantity: expected.total_quantity,
    total_value_cents: expected.total_value_cents,
  });
  await rejectsWith(
    new csvBatch.ProcessCsvBatch().call(batchCtx(200, 400, { batchId: "002", attempt: 3, context: { fail_batch: "002" } })),
    PermanentError,
    /batch 002 is marked to fail/,
  );
  const ok = await new csvBatch.ProcessCsvBatch().call(batchCtx(0, 200, { context: { fail_batch: "002" } }));
  const total = await new csvBatch.AggregateResults().call(
    ctx({
      directParents: ["process_csv_batch_001"],
      dependencyResults: { process_csv_batch_001: ok, analyze_csv: { total_rows: 1000 } },
      failedParents: { process_csv_batch_002: { message: "batch 002 is marked to fail" } },
    }),
  );
  assert.equal(total.batches, 1);
  assert.deepEqual(total.failed_batches, ["process_csv_batch_002"]);
  assert.equal(total.total_rows, 200);
  assert.equal(total.total_value_cents, fileTotals(1, 200).total_value_cents);
});

// -- parity ---------------------------------------------------------------------

function parityBatchConfig(worker: string) {
  return { workerTemplate: worker, parallelism: 3, batchSize: 5, failureStrategy: "fail_fast" };
}

/** Runs the diamond_decision_batch workflow in memory; every result. */
async function runParity(values: number[]): Promise<Record<string, any>> {
  const results: Record<string, any> = {};
  results.diamond_start = await call("parity::load_numbers", ctx({ context: { numbers: values } }));
  results.branch_evens = await call("parity::select_evens", ctx({ directParents: ["diamond_start"], dependencyResults: { ...results } }));
  results.branch_odds = await call("parity::select_odds", ctx({ directParents: ["diamond_start"], dependencyResults: { ...results } }));
  const decision: Success = await call(
    "parity::choose_dominant",
    ctx({ directParents: ["branch_evens", "branch_odds"], dependencyResults: { ...results } }),
  );
  results.routing_decision = decision.result;
  const [analyzer] = stepsOf(decision);
  const [source, worker] = analyzer === "even_batch_analyzer" ? ["branch_evens", "even_batch_worker"] : ["branch_odds", "odd_batch_worker"];
  const plan: Success = await call(
    "parity::plan_batches",
    ctx({
      initialization: { source },
      batchConfig: parityBatchConfig(worker),
      directParents: ["routing_decision"],
      dependencyResults: { ...results },
    }),
  );
  results[analyzer!] = plan.result;
  const workers: string[] = [];
  for (const cursor of cursorsOf(plan)) {
    const name = `${worker}_${cursor.batch_id}`;
    const batchCursor = { batchId: cursor.batch_id, startCursor: cursor.start_cursor, endCursor: cursor.end_cursor, batchSize: cursor.batch_size };
    results[name] = await call("parity::process_batch", ctx({ batchCursor, directParents: [analyzer!], dependencyResults: { ...results } }));
    workers.push(name);
  }
  results.final_convergence = await call("parity::combine_batches", ctx({ directParents: workers, dependencyResults: { ...results } }));
  return results;
}

test("the parity decision picks the dominant parity, evens on a tie", async () => {
  const decide = (evens: number, odds: number) =>
    parity.chooseDominant(
      ctx({
        dependencyResults: {
          branch_evens: { numbers: Array(evens).fill(2), count: evens },
          branch_odds: { numbers: Array(odds).fill(1), count: odds },
        },
      }),
    );
  assert.deepEqual(stepsOf(await decide(3, 2)), ["even_batch_analyzer"]);
  assert.deepEqual(stepsOf(await decide(2, 2)), ["even_batch_analyzer"]);
  const odd = await decide(1, 7);
  assert.deepEqual(odd.control, { type: "decision", outcome: "create_steps", steps: ["odd_batch_analyzer"] });
  assert.deepEqual(odd.result, { dominant: "odd", even_count: 1, odd_count: 7 });
  await rejectsWith(parity.loadNumbers(ctx({ context: { numbers: [1, 2.5] } })), PermanentError, /`the task context` gave a non-integer/);
});

test("parity batches are numbered from 0 and the workflow follows the dominant parity", async () => {
  const evens12 = Array.from({ length: 12 }, (_, i) => 2 * (i + 1));
  const plan = await parity.planBatches(
    ctx({
      initialization: { source: "branch_evens" },
      batchConfig: parityBatchConfig("even_batch_worker"),
      dependencyResults: { branch_evens: { numbers: evens12, count: 12 } },
    }),
  );
  assert.deepEqual(cursorsOf(plan), [
    { batch_id: "0", start_cursor: 0, end_cursor: 5, batch_size: 5 },
    { batch_id: "1", start_cursor: 5, end_cursor: 10, batch_size: 5 },
    { batch_id: "2", start_cursor: 10, end_cursor: 12, batch_size: 5 },
  ]);
  await rejectsWith(parity.planBatches(ctx({ initialization: {} })), PermanentError, /invalid handler initialization: missing 'source'/);

  const values = [2, 4, 6, 8, 10, 12, 14, 1, 3, 5];
  const evens = values.filter((n) => n % 2 === 0);
  const results = await runParity(values);
  assert.ok("even_batch_worker_0" in results && "even_batch_worker_1" in results);
  assert.deepEqual(results.final_convergence, {
    dominant: "even",
    batches: 2,
    count: evens.length,
    sum: evens.reduce((a, n) => a + n, 0),
    sum_of_squares: evens.reduce((a, n) => a + n * n, 0),
  });
  const odds = [1, 3, 5, 7, 9, 11, 13, 2, 4];
  const final = (await runParity(odds)).final_convergence;
  assert.equal(final.dominant, "odd");
  assert.equal(final.count, 7);
  assert.equal(final.sum_of_squares, odds.filter((n) => n % 2 !== 0).reduce((a, n) => a + n * n, 0));
});
