"""``python -m tasker`` / ``tasker-python``: run a Python worker.

    python -m tasker worker --app myapp.handlers [--app more.handlers]
                            [--concurrency 8] [--namespace payments]
                            [--template-path config/tasks] [--include-builtins]

Importing the ``--app`` modules registers their handlers (``@handler`` and
``StepHandler`` subclasses). Configuration comes from Tasker's TOML and
environment like every Tasker process (``TASKER_ENV``, ``DATABASE_URL``,
``TASKER_TEMPLATE_PATH``, …); flags win over it. SIGTERM or Ctrl-C stops the
worker after running handlers finish; a second one stops it at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import WorkerError
from .handlers import default_registry
from .worker import Worker


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="python -m tasker", description="Tasker's Python worker.")
    top.add_argument("--version", action="version", version=f"tasker {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker",
        help="run the handlers of one or more modules",
        description="Run a worker serving the handlers the --app modules register.",
    )
    worker.add_argument(
        "--app",
        action="append",
        required=True,
        metavar="MODULE",
        help="module to import for its handlers (repeatable), e.g. myapp.handlers",
    )
    worker.add_argument("--concurrency", type=int, help="handlers running at once")
    worker.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="serve only these namespaces (repeatable); default: every one it can serve",
    )
    worker.add_argument(
        "--template-path",
        action="append",
        dest="template_paths",
        metavar="PATH",
        help="template file or directory to register at start (repeatable)",
    )
    worker.add_argument("--environment", help="configuration environment (TASKER_ENV)")
    worker.add_argument("--config-dir", help="directory of TOML overrides (TASKER_CONFIG_DIR)")
    worker.add_argument(
        "--include-builtins",
        action="store_true",
        help="also serve the built-in tasker::* handlers",
    )
    worker.add_argument(
        "--log-level",
        default=os.environ.get("TASKER_PYTHON_LOG_LEVEL", "INFO"),
        help="Python log level (default INFO); the Rust side follows RUST_LOG",
    )
    return top


def import_apps(modules: Sequence[str]) -> None:
    """Imports each module, from the current directory first (as other
    worker commands do)."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; the process exit code."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import_apps(args.app)
    except ImportError as err:
        print(f"tasker: cannot import {err.name or err}: {err}", file=sys.stderr)
        return 2
    worker = Worker(
        default_registry,
        concurrency=args.concurrency,
        namespaces=args.namespaces,
        template_paths=args.template_paths,
        environment=args.environment,
        config_dir=args.config_dir,
        include_builtins=args.include_builtins,
    )
    try:
        worker.run()
    except WorkerError as err:
        print(f"tasker: {err}", file=sys.stderr)
        return 1
    logging.getLogger("tasker.worker").info("worker stopped")
    return 0
