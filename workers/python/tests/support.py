"""Helpers for the end-to-end tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import tasker


def steps_by_name(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The task view's steps, by name."""
    return {step["name"]: step for step in task["steps"]}


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Polls ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def step_in_state(
    client: tasker.Client, task_uuid: str, name: str, state: str, timeout: float = 30
) -> dict[str, Any]:
    """Waits for step ``name`` of the task to be in ``state``; its view."""

    def check() -> Any:
        step = steps_by_name(client.get_task(task_uuid)).get(name)
        return step if step is not None and step["state"] == state else None

    return eventually(check, f"step {name} to be {state}", timeout)


def unique() -> str:
    """A value no other test run uses (for contexts of `strict` templates)."""
    return f"{os.getpid()}-{time.time_ns()}"
