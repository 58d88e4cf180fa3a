"""Failures end to end: retries with the handler's delay, permanent
failures, unexpected exceptions, timeouts, and bad input — each a clear
step error, never a crashed worker."""

from __future__ import annotations

import datetime as dt
from typing import Any

import tasker

from .apps import faults
from .support import eventually, steps_by_name


def run(
    client: tasker.Client, name: str, context: Any = None, namespace: str = "worker_faults"
) -> dict[str, Any]:
    task = client.create_task(namespace, name, context or {})
    return client.wait(task["task_uuid"], timeout=60)


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_retryable_error_retries_after_the_delay_the_handler_asked_for(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    done = run(client, "retry_then_success")
    assert done["state"] == "complete"
    step = steps_by_name(done)["flaky"]
    assert step["attempts"] == 2
    assert step["results"] == {"attempt": 2}
    attempts = client.step_audit(done["task_uuid"], step["workflow_step_uuid"])["attempts"]
    first, second = sorted(attempts, key=lambda a: a["attempt"])
    assert first["outcome"] == "failure"
    assert first["error"]["code"] == "upstream_unavailable"
    assert first["error"]["retry_after_ms"] == 400
    gap = (parse_time(second["started_at"]) - parse_time(first["finished_at"])).total_seconds()
    # The handler's 0.4 s wins over the policy's 2 s exponential backoff.
    assert 0.4 <= gap < 1.9, gap


def test_a_permanent_error_fails_the_task_and_its_dependents_never_run(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    done = run(client, "permanent_failure")
    assert done["state"] == "error"
    steps = steps_by_name(done)
    charge = steps["charge"]
    assert charge["state"] == "error"
    assert charge["attempts"] == 1, "a permanent failure is not retried"
    assert charge["last_error"]["code"] == "card_declined"
    assert charge["last_error"]["message"] == "card declined"
    assert charge["last_error"]["details"] == {"last4": "4242"}
    assert steps["ship"]["state"] == "pending"
    assert steps["ship"]["attempts"] == 0
    assert faults.NEVER_RAN == []


def test_an_unexpected_exception_carries_its_type_and_traceback(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    done = run(client, "unexpected_exception", {"row": 7})
    assert done["state"] == "error"
    error = steps_by_name(done)["parse"]["last_error"]
    assert error["error_type"] == "exception"
    assert error["message"] == "ValueError: bad row 7"
    assert error["retryable"] is True
    assert error["details"]["exception_type"] == "ValueError"
    backtrace = error["details"]["backtrace"]
    assert "Traceback (most recent call last)" in backtrace
    assert "faults.py" in backtrace and "in parse_row" in backtrace and "in boom" in backtrace


def test_an_overrunning_handler_is_told_and_its_late_result_discarded(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    faults.SAW_CANCEL.clear()
    done = run(client, "overrun")
    assert done["state"] == "error"
    steps = steps_by_name(done)
    for name in ("overrun", "async_overrun"):
        assert steps[name]["last_error"]["error_type"] == "timeout", name
        assert steps[name]["results"] is None, name
    assert faults.SAW_CANCEL.wait(10), "the sync handler saw ctx.is_cancelled()"
    # Both late completions (the sync handler's result, the cancelled
    # asyncio task's) were refused; nothing is left running.
    status = eventually(
        lambda: (s := worker.status())["totals"]["refused"] == 2 and s,
        "both late completions",
        timeout=15,
    )
    assert status["slots"] == {"queued": 0, "running": 0, "ended": 0}
    assert status["handlers_running"] == 0


def test_a_result_that_is_not_json_is_an_invalid_result(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    done = run(client, "bad_result")
    error = steps_by_name(done)["not_json"]["last_error"]
    assert done["state"] == "error"
    assert error["error_type"] == "invalid_result"
    assert "not JSON" in error["message"] and "datetime" in error["message"]
    assert error["retryable"] is False


def test_a_decision_naming_an_unknown_step_fails_the_decision(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    done = run(client, "bad_decision")
    assert done["state"] == "error"
    steps = steps_by_name(done)
    assert "no_such_step" in steps["decide"]["last_error"]["message"]
    assert steps["decide"]["last_error"]["retryable"] is False
    assert "branch" not in steps


def test_a_callable_nobody_registered_is_a_step_error(
    client: tasker.Client, start_worker: Any
) -> None:
    worker = start_worker(namespaces=["worker_unregistered", "linear_workflow"])
    done = run(client, "unregistered", namespace="worker_unregistered")
    assert done["state"] == "error"
    error = steps_by_name(done)["orphan"]["last_error"]
    assert error["error_type"] == "handler_not_found"
    assert "faults::nobody_registered" in error["message"]
    # The worker is fine: it still runs work.
    linear = run(client, "mathematical_sequence", {"value": 2}, namespace="linear_workflow")
    assert linear["state"] == "complete"
    assert worker.status()["state"] == "running"
