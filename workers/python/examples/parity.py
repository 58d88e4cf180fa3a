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

from ._json import I64, as_i64, as_u64, at, text


def _numbers_of(result: Any, step: str) -> list[int]:
    """The ``numbers`` of a step's result (or of the task context)."""
    if not isinstance(numbers := at(result, "numbers"), list):
        raise PermanentError(f"`{step}` gave no numbers")
    if any(as_i64(n) is None for n in numbers):
        raise PermanentError(f"`{step}` gave a non-integer")
    return numbers


def _select(ctx: StepContext, even: bool) -> dict[str, Any]:
    numbers = _numbers_of(ctx.dependency("diamond_start"), "diamond_start")
    chosen = [n for n in numbers if (n % 2 == 0) == even]
    return {"numbers": chosen, "count": len(chosen)}


def _index(value: Any) -> int:
    if (index := as_u64(value)) is None:
        raise PermanentError("cursors must be indexes")
    return index


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
    """The decision: creates the batch analyzer of the parity with more numbers (evens on a tie)."""
    evens = len(_numbers_of(ctx.dependency("branch_evens"), "branch_evens"))
    odds = len(_numbers_of(ctx.dependency("branch_odds"), "branch_odds"))
    even = evens >= odds
    return Success.create_steps(
        ["even_batch_analyzer" if even else "odd_batch_analyzer"],
        result={"dominant": "even" if even else "odd", "even_count": evens, "odd_count": odds},
    )


@handler("parity::plan_batches")
def plan_batches(ctx: StepContext) -> Success:
    """The batchable step: batches of the numbers of step ``initialization.source``."""
    source = ctx.initialization_as(lambda init: text(init, "source"))
    numbers = _numbers_of(ctx.dependency(source), source)
    result = {"source": source, "numbers": numbers}
    if not numbers:
        return Success.no_batches(result=result)
    size = ctx.batch_config.batch_size if ctx.batch_config else 5
    return Success.create_batches(
        Batchable.cursors(len(numbers), size, first_id=0, id_width=0), result=result
    )


@handler("parity::process_batch")
def process_batch(ctx: StepContext) -> dict[str, Any]:
    """A batch worker: count, sum and sum of squares of its slice of the analyzer's numbers."""
    cursor = ctx.batch_cursor()
    parents = ctx.parent_results()
    if not parents:
        raise PermanentError("a batch worker needs its analyzer")
    analyzer, planned = parents[0]
    numbers = _numbers_of(planned, analyzer)
    start, end = _index(cursor.start_cursor), _index(cursor.end_cursor)
    if not start <= end <= len(numbers):
        raise PermanentError("cursor outside the numbers")
    batch = numbers[start:end]
    # Squares are never negative: if the total fits 64 bits, every partial sum did.
    if (squares := sum(n * n for n in batch)) not in I64:
        raise PermanentError("sum of squares overflows")
    return {
        "batch_id": cursor.batch_id,
        "count": len(batch),
        "sum": sum(batch),
        "sum_of_squares": squares,
    }


@handler("parity::combine_batches")
def combine_batches(ctx: StepContext) -> dict[str, Any]:
    """The deferred convergence: the dominant parity and the totals of every batch that ran."""
    batches = count = total = squares = 0
    for _, result in ctx.parent_results():
        if not isinstance(result, dict) or "batch_id" not in result:
            continue
        batches += 1
        count += as_u64(result.get("count")) or 0
        total += as_i64(result.get("sum")) or 0
        squares += as_i64(result.get("sum_of_squares")) or 0
        if total not in I64 or squares not in I64:
            raise PermanentError("batch totals overflow")
    return {
        "dominant": at(ctx.dependency("routing_decision"), "dominant"),
        "batches": batches,
        "count": count,
        "sum": total,
        "sum_of_squares": squares,
    }
