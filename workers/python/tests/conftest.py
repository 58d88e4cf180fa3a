"""End-to-end fixtures: a fresh PostgreSQL database per test, a real
``tasker-server`` process on it, and Python workers (in this process, or as
``python -m tasker worker`` subprocesses) as the only workers.

PostgreSQL: ``TASKER_TEST_DATABASE_URL`` or ``DATABASE_URL`` names a server
where the tests may create databases; without either, the private cluster
the Rust tests use (``tasker-ctl test-cluster`` starts or finds it, from the
system's PostgreSQL binaries). ``psql`` must be on ``PATH``. The binaries:
``TASKER_SERVER_BIN`` / ``TASKER_CTL_BIN``, else ``target/debug/`` of this
repository (built with cargo when missing).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PYTHON_WORKER = Path(__file__).resolve().parents[1]
REPO = PYTHON_WORKER.parents[1]
sys.path.insert(0, str(PYTHON_WORKER))  # `examples` and `tests.apps` import from here

import tasker  # noqa: E402

import examples.all  # noqa: E402,F401  (registers every example handler)
import tests.apps.faults  # noqa: E402,F401  (registers the test handlers)

TEMPLATES = [REPO / "config" / "tasks", REPO / "workers" / "tests" / "templates"]
SAMPLE_CSV = REPO / "workers" / "rust" / "data" / "products.csv"
_COUNTER = itertools.count()


def _binary(name: str, package: str, variable: str) -> Path:
    configured = os.environ.get(variable)
    if configured:
        return Path(configured)
    binary = REPO / "target" / "debug" / name
    if not binary.exists():
        subprocess.run(["cargo", "build", "-p", package, "--bin", name], cwd=REPO, check=True)
    return binary


def _admin_url() -> str:
    configured = os.environ.get("TASKER_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        return configured
    ctl = _binary("tasker-ctl", "tasker-ctl", "TASKER_CTL_BIN")
    found = subprocess.run([str(ctl), "test-cluster"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail(f"no DATABASE_URL, and the private test cluster did not start:\n{found.stderr}")
    return found.stdout.strip()


def _with_database(url: str, database: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


def _psql(admin_url: str, sql: str) -> None:
    result = subprocess.run(
        ["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed for `{sql}`: {result.stderr.strip()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def server_binary() -> Path:
    return _binary("tasker-server", "tasker-orchestration", "TASKER_SERVER_BIN")


@dataclass
class Postgres:
    admin_url: str
    template: str


@pytest.fixture(scope="session")
def postgres(server_binary: Path) -> Iterator[Postgres]:
    if shutil.which("psql") is None:
        pytest.fail(
            "psql is not on PATH: install PostgreSQL's client (apt-get install postgresql-client)"
        )
    admin = _admin_url()
    template = f"tasker_pytest_tpl_{os.getpid()}"
    try:
        _psql(admin, f"DROP DATABASE IF EXISTS {template}")
        _psql(admin, f"CREATE DATABASE {template}")
    except RuntimeError as err:
        pytest.fail(
            f"cannot create databases on {admin}: {err}\n"
            "Set TASKER_TEST_DATABASE_URL (or DATABASE_URL) to a PostgreSQL server "
            "where the tests may create databases."
        )
    migrate = subprocess.run(
        [str(server_binary), "migrate"],
        env={**os.environ, "DATABASE_URL": _with_database(admin, template), "TASKER_ENV": "test"},
        capture_output=True,
        text=True,
    )
    if migrate.returncode != 0:
        pytest.fail(f"tasker-server migrate failed:\n{migrate.stderr}")
    yield Postgres(admin, template)
    _psql(admin, f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")


@pytest.fixture
def database(postgres: Postgres) -> Iterator[str]:
    name = f"tasker_pytest_{os.getpid()}_{next(_COUNTER)}"
    _psql(postgres.admin_url, f"CREATE DATABASE {name} TEMPLATE {postgres.template}")
    yield _with_database(postgres.admin_url, name)
    _psql(postgres.admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class Server:
    url: str
    database_url: str
    process: subprocess.Popen  # type: ignore[type-arg]
    log: Path


def test_env(database_url: str) -> dict[str, str]:
    """The environment of every process under test."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "TASKER_ENV": "test",
        "TASKER_TEMPLATE_PATH": ":".join(str(p) for p in TEMPLATES),
        "NO_COLOR": "1",
    }


@pytest.fixture
def server(server_binary: Path, database: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / "tasker-server.log"
    env = {
        **test_env(database),
        "TASKER_WEB_BIND_ADDRESS": f"127.0.0.1:{port}",
        "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(server_binary)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"tasker-server did not become ready:\n{log.read_text()}")
        time.sleep(0.05)
    yield Server(url, database, process, log)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def client(server: Server) -> tasker.Client:
    return tasker.Client(server.url)


@pytest.fixture
def start_worker(server: Server) -> Iterator[Any]:
    """``start_worker(**options)``: a Python worker in this process (all
    registered handlers, every template of ``config/tasks`` and
    ``workers/tests/templates``), stopped at the end of the test."""
    workers: list[tasker.Worker] = []

    def start(**options: Any) -> tasker.Worker:
        options.setdefault("database_url", server.database_url)
        options.setdefault("environment", "test")
        options.setdefault("template_paths", TEMPLATES)
        worker = tasker.Worker(**options).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout=30)


@pytest.fixture
def worker(start_worker: Any) -> tasker.Worker:
    """One Python worker with the default options."""
    return start_worker()


class WorkerProcess:
    """``python -m tasker worker`` in a subprocess, its output captured."""

    def __init__(self, server: Server, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tasker",
                    "worker",
                    "--app",
                    "examples.all",
                    "--app",
                    "tests.apps.faults",
                    *args,
                ],
                cwd=PYTHON_WORKER,
                env={**test_env(server.database_url), "RUST_LOG": "info"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no `{needle}` in the worker's output:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def spawn_worker(server: Server, tmp_path: Path) -> Iterator[Any]:
    processes: list[WorkerProcess] = []

    def spawn(*args: str) -> WorkerProcess:
        process = WorkerProcess(server, tmp_path / f"worker-{len(processes)}.log", *args)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        process.kill()
