"""The Python step of ``workers/tests/templates/polyglot.yaml`` (one task
whose steps run in Rust, Python, Ruby and TypeScript): doubles its parent's ``value`` and
adds ``"python"`` to the trail of languages the task went through.

The step names ``pool: python``, so only a worker with this handler takes
it; the other steps go to the Rust, Ruby and TypeScript workers' pools.
"""

from __future__ import annotations

import platform
from typing import Any

from tasker import PermanentError, StepContext, handler


@handler("polyglot::python_double")
def python_double(ctx: StepContext) -> dict[str, Any]:
    [(parent, result)] = ctx.parent_results()
    value = result.get("value") if isinstance(result, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise PermanentError(f"parent `{parent}` did not return an integer value")
    return {
        "value": value * 2,
        "trail": [*result.get("trail", ["rust"]), "python"],
        "runtime": f"{platform.python_implementation()} {platform.python_version()}",
    }
