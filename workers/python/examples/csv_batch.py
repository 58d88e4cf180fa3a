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

__all__ = [
    "SAMPLE_CSV",
    "CsvInput",
    "Totals",
    "read_rows",
    "row_totals",
    "plan",
    "AnalyzeCsv",
    "ProcessCsvBatch",
    "AggregateResults",
]

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
U64_MAX = 2**64 - 1

SAMPLE_CSV = Path(__file__).resolve().parents[2] / "rust" / "data" / "products.csv"
"""The 1,000-row sample file shipped with the Rust examples."""

_INTEGER = re.compile(r"[+-]?[0-9]+\Z")


def _as_u64(value: Any) -> int | None:
    if type(value) is int and 0 <= value <= U64_MAX:
        return value
    return None


def _as_i64(value: Any) -> int | None:
    if type(value) is int and I64_MIN <= value <= I64_MAX:
        return value
    return None


@dataclass(frozen=True)
class CsvInput:
    """The task context."""

    csv_file_path: str
    fail_on_row: int | None = None
    fail_batch: str | None = None

    @classmethod
    def of(cls, ctx: StepContext) -> "CsvInput":
        """The task context of ``ctx``.

        :raises PermanentError: ``invalid task context: …``.
        """
        context = ctx.context
        if not isinstance(context, dict):
            raise PermanentError("invalid task context: expected an object")
        path = context.get("csv_file_path")
        if "csv_file_path" not in context:
            raise PermanentError("invalid task context: missing field `csv_file_path`")
        if not isinstance(path, str):
            raise PermanentError("invalid task context: `csv_file_path` must be a string")
        fail_on_row = context.get("fail_on_row")
        if fail_on_row is not None and _as_u64(fail_on_row) is None:
            raise PermanentError("invalid task context: `fail_on_row` must be a row number")
        fail_batch = context.get("fail_batch")
        if fail_batch is not None and not isinstance(fail_batch, str):
            raise PermanentError("invalid task context: `fail_batch` must be a string")
        return cls(path, fail_on_row, fail_batch)


@dataclass
class Totals:
    """What a range of rows adds up to (also a checkpoint's
    ``partial_results``)."""

    rows: int = 0
    quantity: int = 0
    value_cents: int = 0

    def add(self, other: "Totals") -> None:
        """Adds ``other`` in place.

        :raises PermanentError: a total overflows a 64-bit integer.
        """
        quantity = self.quantity + other.quantity
        value_cents = self.value_cents + other.value_cents
        if not (I64_MIN <= quantity <= I64_MAX and I64_MIN <= value_cents <= I64_MAX):
            raise PermanentError("totals overflow")
        self.rows += other.rows
        self.quantity = quantity
        self.value_cents = value_cents

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> "Totals":
        """Totals saved in a checkpoint.

        :raises PermanentError: they do not parse.
        """
        if not isinstance(value, dict):
            raise PermanentError("checkpoint does not parse: partial_results must be an object")
        fields = {}
        for key, read in (("rows", _as_u64), ("quantity", _as_i64), ("value_cents", _as_i64)):
            if key not in value:
                raise PermanentError(f"checkpoint does not parse: missing field `{key}`")
            number = read(value[key])
            if number is None:
                raise PermanentError(f"checkpoint does not parse: `{key}` must be an integer")
            fields[key] = number
        return cls(**fields)


def read_rows(path: str) -> list[str]:
    """The file's data rows: every non-blank line after the header.

    :raises PermanentError: the file cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PermanentError(f"cannot read {path}: {err}") from None
    # Rust's `str::lines`: split at "\n", dropping a "\r" before it.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return [line for line in lines[1:] if line.strip()]


def row_totals(line: str, number: int) -> Totals:
    """``quantity`` and ``quantity × unit_price_cents`` of one
    ``sku,name,category,quantity,unit_price_cents`` row, numbered ``number``.

    :raises PermanentError: a field is not a 64-bit integer, or the value
        overflows.
    """
    fields = line.split(",")

    def field(i: int, name: str) -> int:
        text = fields[i].strip() if i < len(fields) else ""
        value = int(text) if _INTEGER.match(text) else None
        if value is None or not I64_MIN <= value <= I64_MAX:
            raise PermanentError(f"row {number}: `{name}` is not an integer")
        return value

    quantity = field(3, "quantity")
    price = field(4, "unit_price_cents")
    value_cents = quantity * price
    if not I64_MIN <= value_cents <= I64_MAX:
        raise PermanentError(f"row {number}: value overflows")
    return Totals(rows=1, quantity=quantity, value_cents=value_cents)


def plan(rows: int, batch_size: int) -> list[CursorConfig]:
    """Cursors covering ``rows`` rows once, ``batch_size`` at a time, with
    batch ids ``"001"``, ``"002"``, …"""
    return Batchable.cursors(rows, max(batch_size, 1))


class AnalyzeCsv(StepHandler, Batchable):
    """The batchable step: counts the data rows and plans one batch per
    ``batch_config.batch_size`` rows (100 without a batch config); no
    batches for a file without data rows. Its result is
    ``{"csv_file_path", "total_rows"}``."""

    callable = "csv::analyze_csv"

    def call(self, ctx: StepContext) -> Success:
        csv_input = CsvInput.of(ctx)
        rows = len(read_rows(csv_input.csv_file_path))
        batch_size = ctx.batch_config.batch_size if ctx.batch_config is not None else 100
        result = {"csv_file_path": csv_input.csv_file_path, "total_rows": rows}
        if rows == 0:
            return self.no_batches(result=result)
        return self.create_batches(plan(rows, batch_size), result=result)


class ProcessCsvBatch(StepHandler):
    """A batch worker: totals of the rows ``[start_cursor, end_cursor)`` of
    its cursor, resuming from the checkpoint of an earlier attempt and
    saving one every ``checkpoint_every`` rows.

    :raises PermanentError: the batch is ``fail_batch``, a cursor or row is
        invalid, or the checkpoint does not parse.
    :raises RetryableError: the first attempt reached row ``fail_on_row``.
    """

    callable = "csv::process_csv_batch"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        csv_input = CsvInput.of(ctx)
        cursor = ctx.batch_cursor()
        if csv_input.fail_batch == cursor.batch_id:
            raise PermanentError(f"batch {cursor.batch_id} is marked to fail")
        initialization = ctx.initialization if isinstance(ctx.initialization, dict) else {}
        every = _as_u64(initialization.get("checkpoint_every"))
        every = max(100 if every is None else every, 1)
        start, end = self._bound(cursor.start_cursor), self._bound(cursor.end_cursor)
        # Resume where an earlier attempt left off, with what it had counted.
        if ctx.checkpoint is not None:
            next_row = self._bound(ctx.checkpoint.cursor)
            totals = Totals.from_json(ctx.checkpoint.partial_results)
        else:
            next_row, totals = start, Totals()
        resumed_from = next_row
        rows = read_rows(csv_input.csv_file_path)
        while next_row < end:
            # Data rows are numbered from 1, as a spreadsheet shows them.
            number = next_row + 1
            if csv_input.fail_on_row == number and ctx.attempt == 1:
                raise RetryableError(f"simulated crash at row {number}")
            if next_row >= len(rows):
                raise PermanentError(f"row {number} is past the end")
            totals.add(row_totals(rows[next_row], number))
            next_row += 1
            if (next_row - start) % every == 0 and next_row < end:
                ctx.save_checkpoint(next_row, totals.rows, totals.to_json())
        return {
            "batch_id": cursor.batch_id,
            "first_row": start + 1,
            "last_row": end,
            "resumed_from_row": resumed_from + 1,
            "rows_processed": totals.rows,
            "total_quantity": totals.quantity,
            "total_value_cents": totals.value_cents,
        }

    @staticmethod
    def _bound(value: Any) -> int:
        index = _as_u64(value)
        if index is None:
            raise PermanentError("batch cursors must be row indexes")
        return index


class AggregateResults(StepHandler):
    """The deferred convergence: the totals of every batch that completed,
    and the names of those that failed (under ``continue_on_failure``).

    :raises PermanentError: a total overflows a 64-bit integer.
    """

    callable = "csv::aggregate_results"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        totals = Totals()
        batches = []
        for name, result in ctx.parent_results():
            if not isinstance(result, dict) or "batch_id" not in result:
                continue
            totals.add(
                Totals(
                    rows=_as_u64(result.get("rows_processed")) or 0,
                    quantity=_as_i64(result.get("total_quantity")) or 0,
                    value_cents=_as_i64(result.get("total_value_cents")) or 0,
                )
            )
            batches.append(name)
        return {
            "batches": len(batches),
            "failed_batches": sorted(ctx.failed_parents),
            "total_rows": totals.rows,
            "total_quantity": totals.quantity,
            "total_value_cents": totals.value_cents,
        }
