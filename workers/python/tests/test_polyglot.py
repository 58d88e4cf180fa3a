"""One task whose steps are served by Rust, Python, Ruby and TypeScript
workers (routing by step: ``workers/tests/templates/polyglot.yaml``), each
step reading its parent's result.

Marked ``polyglot`` and left out of the Python suite's default run: it needs
the Ruby extension and the TypeScript package built, so ``scripts/test``
runs it last (``scripts/test-polyglot``), after the Ruby and TypeScript
suites have built them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tasker

import examples.polyglot  # noqa: F401  (registers the Python step's handler)

from . import conftest
from .conftest import REPO, Server
from .support import steps_by_name

pytestmark = pytest.mark.polyglot

RUST_WORKER = REPO / "target" / "debug" / "rust-worker"
RUBY_WORKER = REPO / "workers" / "ruby"
TYPESCRIPT_WORKER = REPO / "workers" / "typescript"


class Process:
    """A worker process of another language, its output in a log file."""

    def __init__(self, server: Server, log: Path, command: list[str], cwd: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                env={**conftest.test_env(server.database_url), "RUST_LOG": "info"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _require(path: Path, how: str) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: {how}")


@pytest.fixture
def other_languages(server: Server, tmp_path: Path) -> Any:
    _require(RUST_WORKER, "build it with `cargo build -p tasker-rust-worker`")
    _require(
        RUBY_WORKER / "lib" / "tasker" / "tasker_native.so",
        "build the Ruby extension with scripts/test-ruby (or `rake compile` in workers/ruby)",
    )
    _require(
        TYPESCRIPT_WORKER / "dist" / "examples" / "polyglot.js",
        "build the TypeScript package with scripts/test-typescript "
        "(or `npm install` in workers/typescript)",
    )
    for tool in ("ruby", "node"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH")
    commands = {
        "rust": ([str(RUST_WORKER)], REPO),
        "ruby": (
            ["ruby", "exe/tasker-ruby-worker", "--require", "examples/polyglot.rb"],
            RUBY_WORKER,
        ),
        "typescript": (
            ["node", "bin/tasker-worker.js", "dist/examples/polyglot.js"],
            TYPESCRIPT_WORKER,
        ),
    }
    processes = {
        name: Process(server, tmp_path / f"{name}-worker.log", command, cwd)
        for name, (command, cwd) in commands.items()
    }
    yield processes
    for process in processes.values():
        process.stop()


def test_one_task_runs_in_rust_python_ruby_and_typescript(
    client: tasker.Client, start_worker: Any, other_languages: dict[str, Process]
) -> None:
    start_worker()  # the Python worker, in this process
    task = client.create_task("polyglot", "four_languages", {"value": 2})
    done = client.wait(task["task_uuid"], timeout=90)
    logs = "\n".join(f"--- {n}\n{p.output()[-3000:]}" for n, p in other_languages.items())
    assert done["state"] == "complete", f"{done}\n{logs}"
    steps = steps_by_name(done)
    assert steps["rust_seed"]["results"] == {"value": 3}
    python = steps["python_double"]["results"]
    assert python["value"] == 6 and python["trail"] == ["rust", "python"]
    assert "Python" in python["runtime"]
    ruby = steps["ruby_add_ten"]["results"]
    assert ruby["value"] == 16 and ruby["trail"] == ["rust", "python", "ruby"]
    assert ruby["runtime"].startswith("ruby ")
    typescript = steps["typescript_triple"]["results"]
    assert typescript["value"] == 48
    assert typescript["trail"] == ["rust", "python", "ruby", "typescript"]
    assert typescript["runtime"].startswith("Node.js v")
    # Every step ran once, in the worker of its pool.
    assert all(step["attempts"] == 1 for step in done["steps"]), done
