"""Handlers of the diamond + decision + batch example
(``diamond_decision_batch.yaml``).

A diamond splits a list of numbers into evens and odds
(``load_numbers`` → ``select_evens`` / ``select_odds``); a decision
(``choose_dominant``) picks the parity with more numbers (evens on a tie)
and creates only that parity's batch analyzer; the analyzer
(``plan_batches``) splits its numbers into batches of
``batch_config.batch_size``; each batch worker (``process_batch``) sums its
numbers and their squares; and a deferred convergence step
(``combine_batches``) adds the batches up.

Written in function style: decisions and batch plans are returned as
:class:`tasker.Success` values built by ``Success.create_steps`` and
``Success.create_batches``.
"""

from __future__ import annotations

from typing import Any

from tasker import Batchable, PermanentError, StepContext, Success, handler

__all__ = [
    "load_numbers",
    "select_evens",
    "select_odds",
    "choose_dominant",
    "plan_batches",
    "process_batch",
    "combine_batches",
]

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


def _as_i64(value: Any) -> int | None:
    if type(value) is int and I64_MIN <= value <= I64_MAX:
        return value
    return None


def _as_u64_or_zero(value: Any) -> int:
    return value if type(value) is int and 0 <= value <= 2**64 - 1 else 0


def _numbers_of(result: Any, step: str) -> list[int]:
    """The ``numbers`` of a step's result (or of the task context)."""
    numbers = result.get("numbers") if isinstance(result, dict) else None
    if not isinstance(numbers, list):
        raise PermanentError(f"`{step}` gave no numbers")
    checked = [_as_i64(n) for n in numbers]
    if any(n is None for n in checked):
        raise PermanentError(f"`{step}` gave a non-integer")
    return numbers


def _select(ctx: StepContext, even: bool) -> dict[str, Any]:
    numbers = _numbers_of(ctx.dependency("diamond_start"), "diamond_start")
    chosen = [n for n in numbers if (n % 2 == 0) == even]
    return {"numbers": chosen, "count": len(chosen)}


def _analyzer(even: bool) -> str:
    """The batchable step of one parity."""
    return "even_batch_analyzer" if even else "odd_batch_analyzer"


@handler("parity::load_numbers")
def load_numbers(ctx: StepContext) -> dict[str, Any]:
    """``{"numbers": [...]}`` of the task context, checked to be integers."""
    return {"numbers": _numbers_of(ctx.context, "the task context")}


@handler("parity::select_evens")
def select_evens(ctx: StepContext) -> dict[str, Any]:
    """The even numbers of ``diamond_start``, and how many there are."""
    return _select(ctx, True)


@handler("parity::select_odds")
def select_odds(ctx: StepContext) -> dict[str, Any]:
    """The odd numbers of ``diamond_start``, and how many there are."""
    return _select(ctx, False)


@handler("parity::choose_dominant")
def choose_dominant(ctx: StepContext) -> Success:
    """The decision: creates the batch analyzer of the parity with more
    numbers (evens on a tie)."""
    evens = len(_numbers_of(ctx.dependency("branch_evens"), "branch_evens"))
    odds = len(_numbers_of(ctx.dependency("branch_odds"), "branch_odds"))
    even = evens >= odds
    return Success.create_steps(
        [_analyzer(even)],
        result={"dominant": "even" if even else "odd", "even_count": evens, "odd_count": odds},
    )


@handler("parity::plan_batches")
def plan_batches(ctx: StepContext) -> Success:
    """The batchable step: splits the numbers of the step named by
    ``initialization.source`` into batches of ``batch_config.batch_size``
    (5 without a batch config), with batch ids ``"0"``, ``"1"``, …; no
    batches for no numbers."""
    initialization = ctx.initialization if isinstance(ctx.initialization, dict) else {}
    source = initialization.get("source")
    if not isinstance(source, str):
        raise PermanentError("initialization needs `source`")
    numbers = _numbers_of(ctx.dependency(source), source)
    size = max(ctx.batch_config.batch_size if ctx.batch_config is not None else 5, 1)
    count = len(numbers)
    result = {"source": source, "numbers": numbers}
    if count == 0:
        return Success.no_batches(result=result)
    cursors = Batchable.cursors(count, size, first_id=0, id_width=0)
    return Success.create_batches(cursors, result=result)


@handler("parity::process_batch")
def process_batch(ctx: StepContext) -> dict[str, Any]:
    """A batch worker: the count, sum and sum of squares of the numbers
    ``[start_cursor, end_cursor)`` its analyzer planned.

    :raises PermanentError: no analyzer result, a cursor outside the
        numbers, or a sum of squares that overflows 64 bits.
    """
    cursor = ctx.batch_cursor()
    parents = ctx.parent_results()
    if not parents:
        raise PermanentError("a batch worker needs its analyzer")
    analyzer, planned = parents[0]
    numbers = _numbers_of(planned, analyzer)

    def index(value: Any) -> int:
        if type(value) is not int or value < 0:
            raise PermanentError("cursors must be indexes")
        return value

    start, end = index(cursor.start_cursor), index(cursor.end_cursor)
    if start > end or end > len(numbers):
        raise PermanentError("cursor outside the numbers")
    batch = numbers[start:end]
    squares = 0
    for n in batch:
        squares += n * n
        if squares > I64_MAX:
            raise PermanentError("sum of squares overflows")
    return {
        "batch_id": cursor.batch_id,
        "count": len(batch),
        "sum": sum(batch),
        "sum_of_squares": squares,
    }


@handler("parity::combine_batches")
def combine_batches(ctx: StepContext) -> dict[str, Any]:
    """The deferred convergence: the dominant parity and the totals of
    every batch worker that ran.

    :raises PermanentError: a total overflows a 64-bit integer.
    """
    decision = ctx.dependency("routing_decision")
    dominant = decision.get("dominant") if isinstance(decision, dict) else None
    batches = count = total = squares = 0
    for _, result in ctx.parent_results():
        if not isinstance(result, dict) or "batch_id" not in result:
            continue
        batches += 1
        count += _as_u64_or_zero(result.get("count"))
        total += _as_i64(result.get("sum")) or 0
        squares += _as_i64(result.get("sum_of_squares")) or 0
        if not (I64_MIN <= total <= I64_MAX and I64_MIN <= squares <= I64_MAX):
            raise PermanentError("batch totals overflow")
    return {
        "dominant": dominant,
        "batches": batches,
        "count": count,
        "sum": total,
        "sum_of_squares": squares,
    }
