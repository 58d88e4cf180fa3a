"""Handlers of the linear, diamond, tree and mixed-DAG examples
(``linear_workflow.yaml``, ``diamond_workflow.yaml``, ``tree_workflow.yaml``,
``mixed_dag_workflow.yaml``).

Each step reads the ``value`` of its direct parents (or the task context's
``value``, at the root) and returns ``{"value": n}``: ``examples::square``
squares its single input, ``examples::sum`` adds its inputs and
``examples::product`` multiplies them.

Arithmetic is checked as in the Rust handlers: Python integers never
overflow, but a result outside a signed 64-bit integer fails the step
permanently instead of producing a number the other workers could not read.

Written in function style: each handler is a plain function registered with
:func:`tasker.handler`.
"""

from __future__ import annotations

from typing import Any

from tasker import PermanentError, StepContext, handler

__all__ = ["square", "sum_values", "product"]

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


def _as_i64(value: Any) -> int | None:
    """``value`` if it is a JSON integer that fits 64 bits (as Rust's
    ``Value::as_i64``: not a float, not a boolean)."""
    if type(value) is int and I64_MIN <= value <= I64_MAX:
        return value
    return None


def _overflow(ctx: StepContext) -> PermanentError:
    return PermanentError(f"step `{ctx.step_name}` overflowed a 64-bit integer")


def _checked(ctx: StepContext, value: int) -> int:
    if not I64_MIN <= value <= I64_MAX:
        raise _overflow(ctx)
    return value


def _inputs(ctx: StepContext) -> list[int]:
    """The parents' values, or the context's ``value`` for a root step."""
    if not ctx.direct_parents:
        context = ctx.context if isinstance(ctx.context, dict) else {}
        value = _as_i64(context.get("value"))
        if value is None:
            raise PermanentError("context.value must be an integer")
        return [value]
    values = []
    for parent, result in ctx.parent_results():
        value = _as_i64(result.get("value") if isinstance(result, dict) else None)
        if value is None:
            raise PermanentError(f"parent `{parent}` did not return an integer value")
        values.append(value)
    return values


@handler("examples::square")
def square(ctx: StepContext) -> dict[str, int]:
    """``{"value": x * x}`` of the single input ``x``; fails permanently
    without exactly one input, or when the square overflows 64 bits."""
    inputs = _inputs(ctx)
    if len(inputs) != 1:
        raise PermanentError("examples::square takes exactly one parent")
    (x,) = inputs
    return {"value": _checked(ctx, x * x)}


@handler("examples::sum")
def sum_values(ctx: StepContext) -> dict[str, int]:
    """``{"value": a + b + …}`` of the inputs (0 for none); fails
    permanently when a partial sum overflows 64 bits."""
    total = 0
    for value in _inputs(ctx):
        total = _checked(ctx, total + value)
    return {"value": total}


@handler("examples::product")
def product(ctx: StepContext) -> dict[str, int]:
    """``{"value": a * b * …}`` of the inputs (1 for none); fails
    permanently when a partial product overflows 64 bits."""
    total = 1
    for value in _inputs(ctx):
        total = _checked(ctx, total * value)
    return {"value": total}
