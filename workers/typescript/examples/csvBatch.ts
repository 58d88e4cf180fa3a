/**
 * Handlers of the CSV batch example (`csv_batch_processing.yaml`, SPEC
 * §4.7).
 *
 * `analyze_csv` (a batchable step) counts the data rows of a
 * `sku,name,category,quantity,unit_price_cents` file and plans one batch
 * worker per range of `batch_config.batch_size` rows; each
 * `process_csv_batch` clone sums `quantity` and `quantity ×
 * unit_price_cents` over its range, saving a checkpoint every
 * `checkpoint_every` rows (from its initialization, default 100), so a
 * retried attempt resumes from its checkpoint and no row is counted twice;
 * `aggregate_results` (deferred convergence) adds the batches up.
 *
 * Failures for demonstrations and tests come from the task context:
 *
 * - `fail_on_row: n` makes the first attempt fail (retryably) when it
 *   reaches data row `n` (numbered from 1), after the checkpoints before it
 *   were saved;
 * - `fail_batch: "<batch_id>"` fails that batch permanently.
 *
 * Written in class style: the planner mixes in {@link Batchable}. The file
 * is read with `node:fs` and split by hand (the format has no quoting).
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";

import {
  Batchable,
  PermanentError,
  RetryableError,
  StepHandler,
  registry,
  type CursorConfig,
  type StepContext,
  type Success,
} from "../ts";

import { asInt, asUint, at, int, isInt, isObject, optional, text, uint } from "./_json";

/** This package's directory, from the sources (`examples/`) or the build (`dist/examples/`). */
const PACKAGE_DIR =
  path.basename(path.dirname(__dirname)) === "dist" ? path.resolve(__dirname, "..", "..") : path.resolve(__dirname, "..");

/** The 1,000-row sample file shipped with the Rust examples. */
export const SAMPLE_CSV = path.resolve(PACKAGE_DIR, "..", "rust", "data", "products.csv");

/** What Rust's `str::parse::<i64>` accepts (`Number()` also takes `1e3`, `0x10` and `" 7 "`). */
const INTEGER = /^[+-]?[0-9]+$/;

/** The task context. */
export interface CsvInput {
  csvFilePath: string;
  failOnRow: number | null;
  failBatch: string | null;
}

/** The task context as a {@link CsvInput} (for `ctx.contextAs`). */
export function parseCsvInput(data: unknown): CsvInput {
  return {
    csvFilePath: text(data, "csv_file_path"),
    failOnRow: optional(uint, data, "fail_on_row"),
    failBatch: optional(text, data, "fail_batch"),
  };
}

/** What a range of rows adds up to; also a checkpoint's `partialResults`, so its keys are the JSON's. */
export interface Totals {
  rows: number;
  quantity: number;
  value_cents: number;
}

/** No rows yet. */
const ZERO: Totals = Object.freeze({ rows: 0, quantity: 0, value_cents: 0 });

/** A checkpoint's `partialResults` as {@link Totals}; throws a `TypeError` if it is not one. */
export function parseTotals(data: unknown): Totals {
  return { rows: uint(data, "rows"), quantity: int(data, "quantity"), value_cents: int(data, "value_cents") };
}

/** The sum of both; a total JavaScript cannot hold exactly fails the step permanently. */
export function addTotals(a: Totals, b: Totals): Totals {
  const total = { rows: a.rows + b.rows, quantity: a.quantity + b.quantity, value_cents: a.value_cents + b.value_cents };
  if (!isInt(total.quantity) || !isInt(total.value_cents)) throw new PermanentError("totals overflow");
  return total;
}

/**
 * The file's data rows: every non-blank line after the header (as Rust's
 * `str::lines`: split at `\n`, dropping a `\r` before it).
 */
export function readRows(file: string): string[] {
  let content: string;
  try {
    // Fatal decoding, as Rust's `read_to_string`: invalid UTF-8 is an error, not U+FFFD.
    content = new TextDecoder("utf-8", { fatal: true }).decode(fs.readFileSync(file));
  } catch (err) {
    throw new PermanentError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return content
    .split("\n")
    .slice(1)
    .filter((line) => line.trim() !== "")
    .map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
}

/**
 * `quantity` and `quantity × unit_price_cents` of one
 * `sku,name,category,quantity,unit_price_cents` row, numbered `number`.
 */
export function rowTotals(line: string, number: number): Totals {
  const fields = line.split(",");
  const field = (i: number, name: string): number => {
    const cell = (fields[i] ?? "").trim();
    const value = Number(cell);
    if (!INTEGER.test(cell) || !isInt(value)) throw new PermanentError(`row ${number}: \`${name}\` is not an integer`);
    return value;
  };
  const quantity = field(3, "quantity");
  const valueCents = quantity * field(4, "unit_price_cents");
  if (!isInt(valueCents)) throw new PermanentError(`row ${number}: value overflows`);
  return { rows: 1, quantity, value_cents: valueCents };
}

/**
 * Cursors covering `rows` rows once, `batchSize` (at least 1) at a time,
 * with batch ids `"001"`, `"002"`, …
 */
export function plan(rows: number, batchSize: number): CursorConfig[] {
  return Batchable.cursors(rows, batchSize);
}

function rowIndex(value: unknown): number {
  const index = asUint(value);
  if (index === undefined) throw new PermanentError("batch cursors must be row indexes");
  return index;
}

/** The batchable step: one batch per `batch_config.batch_size` rows (default 100). */
export class AnalyzeCsv extends Batchable(StepHandler) {
  static override readonly callable = "csv::analyze_csv";

  async call(ctx: StepContext): Promise<Success> {
    const file = ctx.contextAs(parseCsvInput).csvFilePath;
    const rows = readRows(file).length;
    const result = { csv_file_path: file, total_rows: rows };
    if (rows === 0) return this.noBatches({ result });
    const batchSize = ctx.batchConfig ? ctx.batchConfig.batchSize : 100;
    return this.createBatches(plan(rows, batchSize), { result });
  }
}

/** A batch worker: totals of its rows, resuming from and saving checkpoints. */
export class ProcessCsvBatch extends StepHandler {
  static override readonly callable = "csv::process_csv_batch";

  async call(ctx: StepContext) {
    const task = ctx.contextAs(parseCsvInput);
    const cursor = ctx.batchCursor();
    if (task.failBatch === cursor.batchId) throw new PermanentError(`batch ${cursor.batchId} is marked to fail`);
    const every = Math.max(asUint(at(ctx.initialization, "checkpoint_every")) ?? 100, 1);
    const start = rowIndex(cursor.startCursor);
    const end = rowIndex(cursor.endCursor);
    // Resume where an earlier attempt left off, with what it had counted.
    let resumedFrom = start;
    let totals = ZERO;
    if (ctx.checkpoint !== null) {
      resumedFrom = rowIndex(ctx.checkpoint.cursor);
      try {
        totals = parseTotals(ctx.checkpoint.partialResults);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
        throw new PermanentError(`checkpoint does not parse: ${err.message}`);
      }
    }
    const rows = readRows(task.csvFilePath);
    for (let index = resumedFrom; index < end; index += 1) {
      const number = index + 1; // data rows are numbered from 1, as a spreadsheet shows them
      if (task.failOnRow === number && ctx.attempt === 1) throw new RetryableError(`simulated crash at row ${number}`);
      const row = rows[index];
      if (row === undefined) throw new PermanentError(`row ${number} is past the end`);
      totals = addTotals(totals, rowTotals(row, number));
      // The next row to process is `number`: checkpoint there every `every` rows.
      if ((number - start) % every === 0 && number < end) {
        await ctx.saveCheckpoint({ cursor: number, itemsProcessed: totals.rows, partialResults: { ...totals } });
      }
    }
    return {
      batch_id: cursor.batchId,
      first_row: start + 1,
      last_row: end,
      resumed_from_row: resumedFrom + 1,
      rows_processed: totals.rows,
      total_quantity: totals.quantity,
      total_value_cents: totals.value_cents,
    };
  }
}

/** The deferred convergence: totals of the completed batches, names of the failed ones. */
export class AggregateResults extends StepHandler {
  static override readonly callable = "csv::aggregate_results";

  async call(ctx: StepContext) {
    let totals = ZERO;
    let batches = 0;
    for (const [, result] of ctx.parentResults()) {
      if (!isObject(result) || !Object.hasOwn(result, "batch_id")) continue;
      batches += 1;
      totals = addTotals(totals, {
        rows: asUint(result.rows_processed) ?? 0,
        quantity: asInt(result.total_quantity) ?? 0,
        value_cents: asInt(result.total_value_cents) ?? 0,
      });
    }
    return {
      batches,
      failed_batches: Object.keys(ctx.failedParents).sort(),
      total_rows: totals.rows,
      total_quantity: totals.quantity,
      total_value_cents: totals.value_cents,
    };
  }
}

for (const Handler of [AnalyzeCsv, ProcessCsvBatch, AggregateResults]) registry.register(Handler);
