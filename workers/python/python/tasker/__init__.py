"""Tasker's Python worker.

Write step handlers in Python and run them on Tasker's Rust worker core,
which claims steps, keeps their leases, enforces timeouts and writes
results; your handlers only compute::

    from tasker import handler, RetryableError

    @handler("ecommerce::process_payment")
    def process_payment(ctx):
        total = ctx.dependency("validate_order")["order_total_cents"]
        if ctx.context["payment"]["token"] == "tok_flaky" and ctx.attempt == 1:
            raise RetryableError("gateway unavailable", retry_after=0.5, code="gateway_503")
        return {"charged_cents": total}

Run them with ``python -m tasker worker --app myapp.handlers``, or from
code with :class:`Worker`. Submit work with :class:`Client`.
"""

from ._native import __version__
from .client import ApiError, Client, TransportError
from .context import BatchConfig, Checkpoint, CursorConfig, StepContext
from .errors import (
    ConfigError,
    ForkError,
    PermanentError,
    RetryableError,
    StepError,
    WorkerError,
)
from .handlers import Batchable, Decision, Registry, StepHandler, default_registry, handler
from .results import Success
from .worker import Worker

__all__ = [
    "__version__",
    "ApiError",
    "Batchable",
    "BatchConfig",
    "Checkpoint",
    "Client",
    "ConfigError",
    "CursorConfig",
    "Decision",
    "ForkError",
    "PermanentError",
    "Registry",
    "RetryableError",
    "StepContext",
    "StepError",
    "StepHandler",
    "Success",
    "TransportError",
    "Worker",
    "WorkerError",
    "default_registry",
    "handler",
]
