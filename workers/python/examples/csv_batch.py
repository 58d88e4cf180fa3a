"""Handlers of the CSV batch example (``csv_batch_processing.yaml``, SPEC
§4.7).

``analyze_csv`` (a batchable step) counts the data rows of a
``sku,name,category,quantity,unit_price_cents`` file and plans one batch
worker per range of ``batch_config.batch_size`` rows; each
``process_csv_batch`` clone sums ``quantity`` and ``quantity ×
unit_price_cents`` over its range, saving a checkpoint every
``checkpoint_every`` rows (from its initialization, default 100), so a
retried attempt resumes from its checkpoint and no row is counted twice;
``aggregate_results`` (deferred convergence) adds the batches up.

Failures for demonstrations and tests come from the task context:

* ``fail_on_row: n`` makes the first attempt fail (retryably) when it
  reaches data row ``n`` (numbered from 1), after the checkpoints before it
  were saved;
* ``fail_batch: "<batch_id>"`` fails that batch permanently.

Written in class style: the planner composes :class:`tasker.Batchable`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasker import (
    Batchable,
    CursorConfig,
    PermanentError,
    RetryableError,
    StepContext,
    StepHandler,
    Success,
)

from ._json import I64, as_i64, as_u64, at, i64, optional, text, u64

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "rust" / "data" / "products.csv"
"""The 1,000-row sample file shipped with the Rust examples."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
"""What Rust's ``str::parse::<i64>`` accepts (``int()`` also takes ``1_000``)."""


@dataclass(frozen=True)
class CsvInput:
    """The task context."""

    csv_file_path: str
    fail_on_row: int | None = None
    fail_batch: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CsvInput:
        return cls(
            csv_file_path=text(data, "csv_file_path"),
            fail_on_row=optional(u64, data, "fail_on_row"),
            fail_batch=optional(text, data, "fail_batch"),
        )


@dataclass(frozen=True)
class Totals:
    """What a range of rows adds up to (also a checkpoint's ``partial_results``)."""

    rows: int = 0
    quantity: int = 0
    value_cents: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Totals:
        return cls(u64(data, "rows"), i64(data, "quantity"), i64(data, "value_cents"))

    def __add__(self, other: Totals) -> Totals:
        """The sum of both; a total outside 64 bits fails the step permanently."""
        total = Totals(
            self.rows + other.rows,
            self.quantity + other.quantity,
            self.value_cents + other.value_cents,
        )
        if total.quantity not in I64 or total.value_cents not in I64:
            raise PermanentError("totals overflow")
        return total


def read_rows(path: str) -> list[str]:
    """The file's data rows: every non-blank line after the header (as Rust's
    ``str::lines``: split at ``\\n``, dropping a ``\\r`` before it)."""
    try:
        content = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PermanentError(f"cannot read {path}: {err}") from None
    return [line.removesuffix("\r") for line in content.split("\n")[1:] if line.strip()]


def row_totals(line: str, number: int) -> Totals:
    """``quantity`` and ``quantity × unit_price_cents`` of one
    ``sku,name,category,quantity,unit_price_cents`` row, numbered ``number``."""
    fields = line.split(",")

    def field(i: int, name: str) -> int:
        cell = fields[i].strip() if i < len(fields) else ""
        if not _INTEGER.fullmatch(cell) or int(cell) not in I64:
            raise PermanentError(f"row {number}: `{name}` is not an integer")
        return int(cell)

    quantity = field(3, "quantity")
    if (value_cents := quantity * field(4, "unit_price_cents")) not in I64:
        raise PermanentError(f"row {number}: value overflows")
    return Totals(rows=1, quantity=quantity, value_cents=value_cents)


def plan(rows: int, batch_size: int) -> list[CursorConfig]:
    """Cursors covering ``rows`` rows once, ``batch_size`` (at least 1) at a
    time, with batch ids ``"001"``, ``"002"``, …"""
    return Batchable.cursors(rows, batch_size)


def _row_index(value: Any) -> int:
    if (index := as_u64(value)) is None:
        raise PermanentError("batch cursors must be row indexes")
    return index


class AnalyzeCsv(StepHandler, Batchable):
    """The batchable step: one batch per ``batch_config.batch_size`` rows (default 100)."""

    callable = "csv::analyze_csv"

    def call(self, ctx: StepContext) -> Success:
        path = ctx.context_as(CsvInput.from_dict).csv_file_path
        rows = len(read_rows(path))
        result = {"csv_file_path": path, "total_rows": rows}
        if rows == 0:
            return self.no_batches(result=result)
        batch_size = ctx.batch_config.batch_size if ctx.batch_config else 100
        return self.create_batches(plan(rows, batch_size), result=result)


class ProcessCsvBatch(StepHandler):
    """A batch worker: totals of its rows, resuming from and saving checkpoints."""

    callable = "csv::process_csv_batch"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        task = ctx.context_as(CsvInput.from_dict)
        cursor = ctx.batch_cursor()
        if task.fail_batch == cursor.batch_id:
            raise PermanentError(f"batch {cursor.batch_id} is marked to fail")
        every = as_u64(at(ctx.initialization, "checkpoint_every"))
        every = max(100 if every is None else every, 1)
        start, end = _row_index(cursor.start_cursor), _row_index(cursor.end_cursor)
        # Resume where an earlier attempt left off, with what it had counted.
        resumed_from, totals = start, Totals()
        if ctx.checkpoint is not None:
            resumed_from = _row_index(ctx.checkpoint.cursor)
            try:
                totals = Totals.from_dict(ctx.checkpoint.partial_results)
            except (KeyError, TypeError) as err:
                raise PermanentError(f"checkpoint does not parse: {err}") from None
        rows = read_rows(task.csv_file_path)
        for index in range(resumed_from, end):
            number = index + 1  # data rows are numbered from 1, as a spreadsheet shows them
            if task.fail_on_row == number and ctx.attempt == 1:
                raise RetryableError(f"simulated crash at row {number}")
            if index >= len(rows):
                raise PermanentError(f"row {number} is past the end")
            totals += row_totals(rows[index], number)
            # The next row to process is `number`: checkpoint there every `every` rows.
            if (number - start) % every == 0 and number < end:
                ctx.save_checkpoint(number, totals.rows, asdict(totals))
        return {
            "batch_id": cursor.batch_id,
            "first_row": start + 1,
            "last_row": end,
            "resumed_from_row": resumed_from + 1,
            "rows_processed": totals.rows,
            "total_quantity": totals.quantity,
            "total_value_cents": totals.value_cents,
        }


class AggregateResults(StepHandler):
    """The deferred convergence: totals of the completed batches, names of the failed ones."""

    callable = "csv::aggregate_results"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        totals, batches = Totals(), 0
        for _, result in ctx.parent_results():
            if isinstance(result, dict) and "batch_id" in result:
                batches += 1
                totals += Totals(
                    as_u64(result.get("rows_processed")) or 0,
                    as_i64(result.get("total_quantity")) or 0,
                    as_i64(result.get("total_value_cents")) or 0,
                )
        return {
            "batches": batches,
            "failed_batches": sorted(ctx.failed_parents),
            "total_rows": totals.rows,
            "total_quantity": totals.quantity,
            "total_value_cents": totals.value_cents,
        }
