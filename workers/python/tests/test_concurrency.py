"""Handlers run concurrently up to the worker's concurrency: threads for
plain handlers, one asyncio loop for ``async def`` ones, and the GIL is not
held while Rust waits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import tasker


def elapsed(task: Any) -> float:
    def at(value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

    return (at(task["completed_at"]) - at(task["created_at"])).total_seconds()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_eight_half_second_handlers_finish_together(
    client: tasker.Client, start_worker: Any, kind: str
) -> None:
    start_worker(concurrency=8)
    task = client.create_task("worker_faults", f"{kind}_naps", {})
    done = client.wait(task["task_uuid"], timeout=30)
    assert done["state"] == "complete"
    assert all(step["results"] == {"slept": 0.5} for step in done["steps"])
    # Run one after the other they would take 4 s.
    assert elapsed(done) < 2.0, elapsed(done)
