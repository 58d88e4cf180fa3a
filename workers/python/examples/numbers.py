"""Handlers of the linear, diamond, tree and mixed-DAG examples
(``linear_workflow.yaml``, ``diamond_workflow.yaml``, ``tree_workflow.yaml``,
``mixed_dag_workflow.yaml``).

Each step reads the ``value`` of its direct parents (or the task context's
``value``, at the root) and returns ``{"value": n}``: ``examples::square``
squares its single input, ``examples::sum`` adds its inputs and
``examples::product`` multiplies them.

Arithmetic is checked as in the Rust handlers: Python integers never
overflow, but a result outside a signed 64-bit integer (or a partial sum or
product outside it, as Rust's ``try_fold`` with ``checked_add``) fails the
step permanently instead of producing a number other workers could not read.

Written in function style: each handler is a plain function registered with
:func:`tasker.handler`.
"""

from __future__ import annotations

from functools import reduce

from tasker import PermanentError, StepContext, handler

from ._json import I64, as_i64, at


def _inputs(ctx: StepContext) -> list[int]:
    """The parents' values, or the context's ``value`` for a root step."""
    if not ctx.direct_parents:
        if (value := as_i64(at(ctx.context, "value"))) is None:
            raise PermanentError("context.value must be an integer")
        return [value]
    values = []
    for parent, result in ctx.parent_results():
        if (value := as_i64(at(result, "value"))) is None:
            raise PermanentError(f"parent `{parent}` did not return an integer value")
        values.append(value)
    return values


def _checked(ctx: StepContext, value: int) -> int:
    """``value``, or a permanent failure if it does not fit 64 bits."""
    if value not in I64:
        raise PermanentError(f"step `{ctx.step_name}` overflowed a 64-bit integer")
    return value


@handler("examples::square")
def square(ctx: StepContext) -> dict[str, int]:
    """``{"value": x * x}`` of the single input ``x``."""
    match _inputs(ctx):
        case [x]:
            return {"value": _checked(ctx, x * x)}
        case _:
            raise PermanentError("examples::square takes exactly one parent")


@handler("examples::sum")
def sum_values(ctx: StepContext) -> dict[str, int]:
    """``{"value": a + b + …}`` of the inputs (0 for none)."""
    return {"value": reduce(lambda total, n: _checked(ctx, total + n), _inputs(ctx), 0)}


@handler("examples::product")
def product(ctx: StepContext) -> dict[str, int]:
    """``{"value": a * b * …}`` of the inputs (1 for none)."""
    return {"value": reduce(lambda total, n: _checked(ctx, total * n), _inputs(ctx), 1)}
