"""``tasker-bench compare`` in smoke mode with the Python worker's no-op
handler: the harness that measures the Python worker against Rust runs
end to end and reports figures that make sense (no thresholds: this keeps
the harness from rotting, it does not judge the system)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import PYTHON_WORKER, Postgres, _binary, free_port


def test_the_comparison_harness_measures_both_workers(postgres: Postgres) -> None:
    bench = _binary("tasker-bench", "tasker-bench", "TASKER_BENCH_BIN")
    worker = (
        f"env PYTHONPATH={PYTHON_WORKER / 'bench'} {sys.executable} -m tasker worker --app noop"
    )
    env = {k: v for k, v in os.environ.items() if k != "TASKER_ENV"}
    env["DATABASE_URL"] = postgres.admin_url
    result = subprocess.run(
        [
            str(bench),
            "--smoke",
            "--json",
            "--port",
            str(free_port()),
            "compare",
            "--worker",
            worker,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["smoke"] is True
    assert len(figures["rounds"]) == 1
    for side in ("rust", "foreign"):
        assert figures["rounds"][0][side]["throughput_steps"] > 0, side
        assert figures["rounds"][0][side]["throughput_steps_per_s"] > 0, side
        assert figures["rounds"][0][side]["handler_call_ms_p50"] > 0, side
        assert figures["rounds"][0][side]["handoff_ms_p50"] > 0, side
    assert figures["rounds"][0]["foreign"]["worker"] == worker
    assert figures["throughput_ratio"] > 0
