"""The no-op handler ``tasker-bench compare`` runs in the Python worker:
the same work as Rust's ``bench::noop`` (nothing), so the difference
between the two runs is what the Python worker costs per step.

    cargo run --release -p tasker-bench -- compare \\
        --worker "env PYTHONPATH=workers/python/bench python3 -m tasker worker --app noop"
"""

from tasker import StepContext, handler


@handler("bench::noop")
def noop(ctx: StepContext) -> dict:
    """Does nothing, like Rust's ``tasker::noop``."""
    return {}
