"""Handlers that misbehave on purpose, for the end-to-end tests of retries,
failures, timeouts, crashes, shutdown and bad input (templates in
``workers/tests/templates``). In-process tests read what they did from the
module-level records below."""

from __future__ import annotations

import asyncio
import datetime
import os
import threading
import time
from typing import Any

from tasker import Decision, PermanentError, RetryableError, StepContext, handler

#: Steps that ran a handler that must never run.
NEVER_RAN: list[str] = []
#: Set when `faults::overrun` saw its cancel flag.
SAW_CANCEL = threading.Event()


@handler("faults::noop")
def noop(ctx: StepContext) -> dict[str, Any]:
    return {}


@handler("faults::flaky_once")
def flaky_once(ctx: StepContext) -> dict[str, Any]:
    """Fails its first attempt, asking for a retry after 0.4 s."""
    if ctx.attempt == 1:
        raise RetryableError("upstream answered 503", retry_after=0.4, code="upstream_unavailable")
    return {"attempt": ctx.attempt}


@handler("faults::decline")
def decline(ctx: StepContext) -> None:
    raise PermanentError("card declined", code="card_declined", details={"last4": "4242"})


@handler("faults::never_runs")
def never_runs(ctx: StepContext) -> dict[str, Any]:
    NEVER_RAN.append(ctx.step_uuid)
    return {"ran": True}


def parse_row(row: int) -> int:
    raise ValueError(f"bad row {row}")


@handler("faults::boom")
def boom(ctx: StepContext) -> int:
    """Raises an exception that is not a Tasker error, from a helper."""
    return parse_row(int(ctx.context.get("row", 7)))


@handler("faults::overrun")
def overrun(ctx: StepContext) -> dict[str, str]:
    """Runs past its timeout until it is told to stop."""
    deadline = time.monotonic() + 15
    while not ctx.is_cancelled():
        if time.monotonic() > deadline:
            return {"told": "never"}
        time.sleep(0.01)
    SAW_CANCEL.set()
    return {"too": "late"}


@handler("faults::nap")
def nap(ctx: StepContext) -> dict[str, Any]:
    """Sleeps `context.seconds` (or `first_attempt_seconds` on attempt 1)."""
    seconds = float(ctx.context.get("seconds", 0))
    if ctx.attempt == 1 and "first_attempt_seconds" in ctx.context:
        seconds = float(ctx.context["first_attempt_seconds"])
    time.sleep(seconds)
    return {"napped": seconds, "attempt": ctx.attempt, "pid": os.getpid()}


@handler("faults::not_json")
def not_json(ctx: StepContext) -> dict[str, Any]:
    return {"when": datetime.datetime(2026, 12, 1, 12, 0)}


@handler("faults::bad_decision")
def bad_decision(ctx: StepContext) -> Any:
    return Decision.create_steps(["no_such_step"], result={"chose": "badly"})


@handler("faults::async_nap")
async def async_nap(ctx: StepContext) -> dict[str, float]:
    await asyncio.sleep(0.5)
    return {"slept": 0.5}


@handler("faults::sync_nap")
def sync_nap(ctx: StepContext) -> dict[str, float]:
    time.sleep(0.5)
    return {"slept": 0.5}


@handler("faults::async_overrun")
async def async_overrun(ctx: StepContext) -> dict[str, str]:
    """Awaits far past its timeout: the worker cancels its task."""
    await asyncio.sleep(60)
    return {"too": "late"}


@handler("faults::interrupt_once")
def interrupt_once(ctx: StepContext) -> dict[str, int]:
    """Raises KeyboardInterrupt on its first attempt (as Ctrl-C in a handler would)."""
    if ctx.attempt == 1:
        raise KeyboardInterrupt
    return {"attempt": ctx.attempt}
