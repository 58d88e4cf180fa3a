"""Turning what a handler did into the outcome envelope the Rust core
reads (``{"status": "success", ...}`` / ``{"status": "failure", ...}``),
and handing it over. Exceptions that are not :class:`StepError` and
results that are not JSON are handed to the native side as facts; the
rules that turn them into failures live in Rust, once for every language."""

from __future__ import annotations

import json
import logging
import traceback
from typing import TYPE_CHECKING, Any

from .errors import StepError
from .results import Success

if TYPE_CHECKING:  # pragma: no cover
    from ._native import NativeWorker

log = logging.getLogger("tasker.worker")

#: One encoder for every outcome: ``json.dumps`` with options builds a new
#: encoder per call. NaN and infinities are not JSON: refused.
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def success_envelope(value: Any) -> dict[str, Any]:
    """The envelope of a handler's return value."""
    if isinstance(value, Success):
        envelope: dict[str, Any] = {"status": "success", "result": value.result}
        if value.control is not None:
            envelope["control"] = value.control
        return envelope
    return {"status": "success", "result": value}


def failure_envelope(error: StepError) -> dict[str, Any]:
    """The envelope of a :class:`StepError` the handler raised."""
    failure: dict[str, Any] = {"message": error.message, "retryable": error.retryable}
    if error.error_type:
        failure["error_type"] = error.error_type
    if error.code is not None:
        failure["code"] = error.code
    if error.details is not None:
        failure["details"] = error.details
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        failure["retry_after_ms"] = int(round(retry_after * 1000))
    return {"status": "failure", "error": failure}


def exception_name(exc: BaseException) -> str:
    """``ValueError``, or ``module.Class`` for exceptions outside builtins."""
    kind = type(exc)
    if kind.__module__ in ("builtins", "__main__"):
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def deliver(native: NativeWorker, dispatch_id: int, envelope: dict[str, Any]) -> bool:
    """Serialises ``envelope`` and completes ``dispatch_id`` with it; a
    result that is not JSON fails the step as ``invalid_result``. Whether
    the runtime accepted it (``False``: the attempt was over)."""
    try:
        text = _ENCODER.encode(envelope)
    except (TypeError, ValueError, RecursionError) as err:
        return native.reject_result(dispatch_id, f"{type(err).__name__}: {err}")
    return native.complete(dispatch_id, text)


def deliver_exception(native: NativeWorker, dispatch_id: int, exc: BaseException) -> bool:
    """Fails ``dispatch_id`` with an unexpected exception and its traceback."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return native.fail_with_exception(dispatch_id, exception_name(exc), str(exc), text)
