/**
 * The example workflows end to end, with the TypeScript worker as the only
 * worker: a real tasker-server on a fresh database, the handlers of
 * `examples/` running on the Rust core through the dispatch surface.
 * (Port of the Python worker's `tests/test_workflows.py`.)
 */

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { test } from "node:test";

import { sampleOrder } from "./apps/orders";
import { SAMPLE_CSV, runTask, setup, stepsByName, unique } from "./support";

test("a linear workflow squares 6 four times", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await runTask(h.client, "linear_workflow", "mathematical_sequence", { value: 6 });
  assert.equal(done.state, "complete", JSON.stringify(done));
  const steps = stepsByName(done);
  assert.deepEqual(
    [1, 2, 3, 4].map((i) => steps[`linear_step_${i}`]!.results.value),
    [6 ** 2, 6 ** 4, 6 ** 8, 6 ** 16],
  );
  assert.ok(done.steps.every((step) => step.attempts === 1));
});

test("a diamond joins both branches", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await runTask(h.client, "diamond_workflow", "parallel_computation", { value: 6 });
  assert.equal(done.state, "complete", JSON.stringify(done));
  const steps = stepsByName(done);
  assert.deepEqual(steps.diamond_start!.results, { value: 36 });
  assert.deepEqual(steps.diamond_branch_b!.results, { value: 1296 });
  assert.deepEqual(steps.diamond_branch_c!.results, { value: 1296 });
  assert.deepEqual(steps.diamond_end!.results, { value: 1296 * 1296 });
});

/** The sample order under a reference no other run uses (the template is `strict`). */
function order(token: string): Record<string, unknown> {
  return sampleOrder(token, { order_ref: unique() });
}

test("order fulfillment retries a flaky gateway", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await runTask(h.client, "ecommerce", "order_fulfillment", order("tok_flaky"));
  assert.equal(done.state, "complete", JSON.stringify(done));
  const steps = stepsByName(done);
  assert.equal(steps.validate_order!.results.order_total_cents, 2 * 1999 + 1250);
  const payment = steps.process_payment!;
  assert.equal(payment.attempts, 2, "the gateway failed once");
  assert.equal(payment.results.amount_charged_cents, 2 * 1999 + 1250);
  assert.match(steps.ship_order!.results.tracking_number, /^TRK/);
  assert.equal(steps.ship_order!.results.estimated_days, 1);
});

test("order fulfillment stops at a declined card", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const done = await runTask(h.client, "ecommerce", "order_fulfillment", order("tok_decline"));
  assert.equal(done.state, "error", JSON.stringify(done));
  const steps = stepsByName(done);
  const payment = steps.process_payment!;
  assert.equal(payment.state, "error");
  assert.equal(payment.last_error.code, "card_declined");
  assert.equal(payment.last_error.retryable, false);
  assert.equal(steps.ship_order!.state, "pending", "dependents of a failure never run");
});

test("conditional approval creates exactly the branches it chose", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const expected: Array<[number, string[]]> = [
    [500, ["auto_approve"]],
    [3000, ["manager_approval"]],
    [10000, ["manager_approval", "finance_review"]],
  ];
  for (const [amount, branches] of expected) {
    const done = await runTask(h.client, "conditional_approval", "approval_routing", {
      amount,
      requester: "ada",
      purpose: `test ${unique()}`,
    });
    assert.equal(done.state, "complete", `${amount}: ${JSON.stringify(done)}`);
    const steps = stepsByName(done);
    assert.deepEqual(
      Object.keys(steps).sort(),
      ["validate_request", "routing_decision", "finalize_approval", ...branches].sort(),
      `${amount}`,
    );
    const final = steps.finalize_approval!.results;
    assert.equal(final.approved, true);
    assert.deepEqual([...(final.approvals as string[])].sort(), [...branches].sort());
    assert.equal(final.amount, amount);
  }
});

/** The sample CSV's totals, computed here. */
function csvTotals(): { rows: number; quantity: number; valueCents: number } {
  const [header, ...lines] = fs.readFileSync(SAMPLE_CSV, "utf8").split(/\r?\n/).filter((line) => line !== "");
  const columns = header!.split(",");
  const quantityAt = columns.indexOf("quantity");
  const priceAt = columns.indexOf("unit_price_cents");
  let quantity = 0;
  let valueCents = 0;
  for (const line of lines) {
    const cells = line.split(",");
    const q = Number.parseInt(cells[quantityAt]!, 10);
    quantity += q;
    valueCents += q * Number.parseInt(cells[priceAt]!, 10);
  }
  return { rows: lines.length, quantity, valueCents };
}

test("CSV batches resume from their checkpoint and count no row twice", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  // Row 275 lies in the second batch (rows 201–400); its first attempt
  // checkpoints at row 250, then fails at 275; the retry resumes at 251.
  const done = await runTask(h.client, "csv_processing", "csv_product_inventory", {
    csv_file_path: SAMPLE_CSV,
    fail_on_row: 275,
  });
  assert.equal(done.state, "complete", JSON.stringify(done));
  const steps = stepsByName(done);
  const batches = Object.fromEntries(Object.entries(steps).filter(([name]) => name.startsWith("process_csv_batch_")));
  assert.deepEqual(
    Object.keys(batches).sort(),
    [1, 2, 3, 4, 5].map((i) => `process_csv_batch_${String(i).padStart(3, "0")}`),
  );
  const second = batches.process_csv_batch_002!;
  assert.equal(second.attempts, 2);
  assert.equal(second.results.resumed_from_row, 251);
  assert.equal(second.results.rows_processed, 200);
  for (const [name, batch] of Object.entries(batches)) {
    if (name !== "process_csv_batch_002") assert.equal(batch.attempts, 1, name);
  }
  const expected = csvTotals();
  const total = steps.aggregate_results!.results;
  assert.equal(total.batches, 5);
  assert.equal(expected.rows, 1000);
  assert.equal(total.total_rows, expected.rows);
  assert.equal(total.total_quantity, expected.quantity);
  assert.equal(total.total_value_cents, expected.valueCents);
});

test("a diamond of a decision and batches squares the dominant parity", async (t) => {
  const h = await setup(t);
  await h.startWorker();
  const numbers = [2, 4, 6, 8, 10, 12, 14, 1, 3, 5];
  const done = await runTask(h.client, "diamond_decision_batch", "parity_analysis", { numbers });
  assert.equal(done.state, "complete", JSON.stringify(done));
  const steps = stepsByName(done);
  const evens = numbers.filter((n) => n % 2 === 0);
  const final = steps.final_convergence!.results;
  assert.equal(final.dominant, "even");
  assert.equal(final.sum_of_squares, evens.reduce((sum, n) => sum + n * n, 0));
  assert.equal(final.count, evens.length);
  assert.ok(!Object.keys(steps).some((name) => name.startsWith("odd_batch")), Object.keys(steps).join(", "));
});

test("Rust built-ins and TypeScript handlers share one worker", async (t) => {
  const h = await setup(t);
  await h.startWorker({ includeBuiltins: true });
  const done = await runTask(h.client, "worker_mixed", "rust_and_python", { value: 2 });
  assert.equal(done.state, "complete", JSON.stringify(done));
  const steps = stepsByName(done);
  assert.deepEqual(steps.seed!.results, { value: 7 }, "tasker::math ran in Rust");
  assert.deepEqual(steps.square!.results, { value: 49 }, "examples::square ran in TypeScript");
});
