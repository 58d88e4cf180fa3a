"""The worker's life: crashes, graceful shutdown on SIGTERM and Ctrl-C,
Ctrl-C inside a handler, fork(), and errors at start."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import tasker

from .support import eventually, step_in_state, steps_by_name


def test_a_killed_workers_step_is_finished_by_another(
    client: tasker.Client, spawn_worker: Any, start_worker: Any
) -> None:
    doomed = spawn_worker("--concurrency", "2")
    doomed.wait_for("python worker running")
    task = client.create_task("worker_faults", "nap", {"first_attempt_seconds": 60, "seconds": 0})
    step_in_state(client, task["task_uuid"], "nap", "in_progress")
    doomed.kill()  # SIGKILL mid-handler: no chance to clean up

    start_worker()
    done = client.wait(task["task_uuid"], timeout=60)
    assert done["state"] == "complete"
    nap = steps_by_name(done)["nap"]
    assert nap["attempts"] == 2, "re-claimed after the dead worker's lease expired"
    assert nap["results"]["attempt"] == 2
    assert nap["results"]["pid"] == os.getpid(), "finished by the second worker"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stop_signal_drains_running_handlers(
    client: tasker.Client, spawn_worker: Any, sig: int
) -> None:
    process = spawn_worker("--concurrency", "2")
    process.wait_for("python worker running")
    task = client.create_task("worker_faults", "nap", {"seconds": 1.5})
    step_in_state(client, task["task_uuid"], "nap", "in_progress")
    process.signal(sig)
    assert process.wait(30) == 0, process.output()
    assert "worker stopped" in process.output()
    nap = steps_by_name(client.get_task(task["task_uuid"]))["nap"]
    # The handler finished and its result was written before the process
    # left: nothing was abandoned.
    assert nap["state"] in ("enqueued_for_orchestration", "complete"), nap
    assert nap["attempts"] == 1
    assert nap["results"]["napped"] == 1.5
    assert client.wait(task["task_uuid"], timeout=30)["state"] == "complete"


def test_ctrl_c_inside_a_handler_stops_the_worker_and_gives_the_step_back(
    client: tasker.Client, spawn_worker: Any, start_worker: Any
) -> None:
    process = spawn_worker()
    process.wait_for("python worker running")
    task = client.create_task("worker_faults", "interrupt", {})
    assert process.wait(30) == 0, process.output()
    assert "KeyboardInterrupt in the handler" in process.output()
    step = steps_by_name(client.get_task(task["task_uuid"]))["interrupt"]
    assert step["last_error"] is None, "nothing was recorded for the interrupted attempt"

    start_worker()
    done = client.wait(task["task_uuid"], timeout=60)
    assert done["state"] == "complete"
    assert steps_by_name(done)["interrupt"]["results"] == {"attempt": 2}


def test_a_forked_child_gets_a_clear_error_instead_of_a_hang(worker: tasker.Worker) -> None:
    pid = os.fork()
    if pid == 0:  # the child: every call on the parent's worker must refuse
        code = 1
        try:
            worker._native_worker().poll(1, 10)
        except tasker.ForkError as err:
            code = 0 if "fork" in str(err) else 2
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert worker.status()["state"] == "running", "the parent's worker is unaffected"


def test_invalid_options_are_refused_before_anything_starts(server: Any) -> None:
    with pytest.raises(tasker.ConfigError, match="worker.concurrency"):
        tasker.Worker(concurrency=0, database_url=server.database_url, environment="test").start()
    with pytest.raises(tasker.ConfigError, match="namespace"):
        tasker.Worker(namespaces=["Not A Namespace"], database_url=server.database_url).start()
    with pytest.raises(tasker.WorkerError, match="no handlers"):
        tasker.Worker(tasker.Registry(), database_url=server.database_url).start()


def test_an_unreachable_database_is_a_clear_error(server: Any) -> None:
    started = time.monotonic()
    with pytest.raises(tasker.WorkerError) as raised:
        tasker.Worker(
            database_url="postgresql://nobody@127.0.0.1:1/nothing",
            environment="test",
            config={"database.acquire_timeout_ms": 1000},
        ).start()
    assert "127.0.0.1:1" in str(raised.value) or "connect" in str(raised.value).lower(), (
        raised.value
    )
    assert time.monotonic() - started < 20


def test_status_reports_what_went_through(client: tasker.Client, worker: tasker.Worker) -> None:
    task = client.create_task("linear_workflow", "mathematical_sequence", {"value": 3})
    assert client.wait(task["task_uuid"], timeout=60)["state"] == "complete"
    status = eventually(
        lambda: (s := worker.status())["totals"]["completed"] >= 4 and s, "four completions"
    )
    assert status["state"] == "running"
    assert status["worker_id"] == worker.worker_id
    assert "examples::square" in status["callables"]
    assert status["pid"] == os.getpid()
