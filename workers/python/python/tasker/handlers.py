"""How handlers are written and found: a :class:`Registry` keyed by
``callable``, filled by the :func:`handler` decorator (functions) or by
:class:`StepHandler` subclasses (classes), with the :class:`Decision` and
:class:`Batchable` capabilities mixed in where a step needs them.

Function style::

    from tasker import handler

    @handler("ecommerce::validate_order")
    def validate_order(ctx):
        return {"order_total_cents": sum(i["quantity"] * i["unit_price_cents"]
                                         for i in ctx.context["items"])}

Class style, with composition::

    from tasker import StepHandler, Decision

    class RouteApproval(StepHandler, Decision):
        callable = "approvals::routing_decision"

        def call(self, ctx):
            amount = ctx.dependency("validate_request")["amount"]
            return self.create_steps(["auto_approve"] if amount < 1000
                                     else ["manager_approval"], result={"amount": amount})

Handlers may be ``async def``. One instance of each class serves every step:
keep per-step state in locals, not on ``self``.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .context import CursorConfig, StepContext
from .results import Success

__all__ = [
    "StepHandler",
    "Decision",
    "Batchable",
    "Registry",
    "default_registry",
    "handler",
]

HandlerFn = Callable[[StepContext], Any]
T = TypeVar("T")


class StepHandler:
    """Base class of class-style handlers. Set ``callable`` and implement
    :meth:`call` (plain or ``async``); defining the class registers it in
    :data:`default_registry` (use :meth:`Registry.register` for another)."""

    callable: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("callable")
        if name is not None:
            default_registry.register(name, cls)

    def call(self, ctx: StepContext) -> Any:
        """Runs the step. Return its result (any JSON value, or a
        :class:`Success`); raise :class:`RetryableError` or
        :class:`PermanentError` to fail it."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(ctx)")


class Decision:
    """Capability of a decision step's handler: choose which downstream
    steps to create (SPEC §4.6)."""

    create_steps = staticmethod(Success.create_steps)
    no_branches = staticmethod(Success.no_branches)


class Batchable:
    """Capability of a batchable step's handler: split a dataset into batch
    workers (SPEC §4.7)."""

    create_batches = staticmethod(Success.create_batches)
    no_batches = staticmethod(Success.no_batches)

    @staticmethod
    def cursors(
        total_items: int, batch_size: int, *, first_id: int = 1, id_width: int = 3
    ) -> list[CursorConfig]:
        """Cursors that cover ``range(total_items)`` once, ``batch_size``
        (at least 1) at a time, with batch ids counted from ``first_id`` and
        zero-padded to ``id_width``: ``"001"``, ``"002"``, …"""
        batch_size = max(int(batch_size), 1)
        return [
            CursorConfig(
                batch_id=str(first_id + i).zfill(id_width),
                start_cursor=start,
                end_cursor=min(start + batch_size, total_items),
                batch_size=batch_size,
            )
            for i, start in enumerate(range(0, max(total_items, 0), batch_size))
        ]


@dataclass(frozen=True)
class RegisteredHandler:
    """A callable's handler, ready to call."""

    callable: str
    run: HandlerFn
    is_async: bool
    source: Any


Registrable = HandlerFn | StepHandler | type


class Registry:
    """Handlers by ``callable``. The worker serves the namespaces whose
    templates only name callables it has."""

    def __init__(self) -> None:
        self._handlers: dict[str, RegisteredHandler] = {}

    def register(self, callable: str, handler: Registrable) -> None:
        """Registers ``handler`` (a function, an ``async`` function, a
        :class:`StepHandler` subclass or instance) under ``callable``,
        replacing any earlier one."""
        if not isinstance(callable, str) or not callable.strip():
            raise ValueError(
                "a callable is a non-empty string such as 'ecommerce::process_payment'"
            )
        if isinstance(handler, type):
            if not issubclass(handler, StepHandler):
                raise TypeError(f"{handler.__name__} is not a StepHandler subclass")
            handler = handler()
        if isinstance(handler, StepHandler):
            run: HandlerFn = handler.call
        elif builtins.callable(handler):
            run = handler
        else:
            raise TypeError(f"cannot register {handler!r}: not a function or StepHandler")
        self._handlers[callable] = RegisteredHandler(
            callable=callable,
            run=run,
            is_async=inspect.iscoroutinefunction(run),
            source=handler,
        )

    def handler(self, callable: str) -> Callable[[T], T]:
        """Decorator: registers the function or class under ``callable``."""

        def decorate(target: T) -> T:
            self.register(callable, target)  # type: ignore[arg-type]
            return target

        return decorate

    def update(self, other: Registry) -> None:
        """Adds every handler of ``other`` (its entries win)."""
        self._handlers.update(other._handlers)

    def get(self, callable: str) -> RegisteredHandler | None:
        """The handler of ``callable``, if registered."""
        return self._handlers.get(callable)

    def callables(self) -> list[str]:
        """Every registered callable, sorted."""
        return sorted(self._handlers)

    def has_async(self) -> bool:
        """Whether any handler is ``async``."""
        return any(h.is_async for h in self._handlers.values())

    def __contains__(self, callable: object) -> bool:
        return callable in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)

    def __iter__(self) -> Iterator[str]:
        return iter(self.callables())

    def __repr__(self) -> str:
        return f"Registry({self.callables()!r})"


default_registry = Registry()
"""Where :func:`handler` and :class:`StepHandler` subclasses register by default."""


def handler(callable: str, *, registry: Registry | None = None) -> Callable[[T], T]:
    """Decorator registering a function (plain or ``async``) or a
    :class:`StepHandler` subclass under ``callable``, in ``registry`` or
    :data:`default_registry`::

        @handler("ecommerce::process_payment")
        async def process_payment(ctx): ...
    """
    return (registry or default_registry).handler(callable)
