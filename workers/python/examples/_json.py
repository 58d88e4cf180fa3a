"""JSON values read as the Rust examples read them with serde_json, so the
Python ports accept and reject the same inputs.

``i64``, ``u64``, ``text`` and ``array`` read a field in a ``from_dict``
parser passed to :meth:`tasker.StepContext.context_as`: a missing key
raises ``KeyError`` and a mistyped value ``TypeError``, which fail the step
permanently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
Reader = Callable[[Mapping[str, Any], str], T]

I64 = range(-(2**63), 2**63)
"""The values of a signed 64-bit integer: ``n in I64``."""


def as_i64(value: Any) -> int | None:
    """``value`` if it is an integer that fits 64 bits (not a float, not a
    boolean), as ``Value::as_i64``."""
    return value if type(value) is int and value in I64 else None


def as_u64(value: Any) -> int | None:
    """``value`` if it is a non-negative 64-bit integer, as ``Value::as_u64``."""
    return value if type(value) is int and 0 <= value < 2**64 else None


def at(value: Any, key: str) -> Any:
    """``value[key]`` as serde_json indexes: ``None`` when ``value`` is not
    an object or has no ``key``."""
    return value.get(key) if isinstance(value, dict) else None


def i64(data: Mapping[str, Any], key: str) -> int:
    if (value := as_i64(data[key])) is None:
        raise TypeError(f"`{key}` must be a 64-bit integer")
    return value


def u64(data: Mapping[str, Any], key: str) -> int:
    if (value := as_u64(data[key])) is None:
        raise TypeError(f"`{key}` must be a non-negative 64-bit integer")
    return value


def text(data: Mapping[str, Any], key: str) -> str:
    if not isinstance(value := data[key], str):
        raise TypeError(f"`{key}` must be a string")
    return value


def array(data: Mapping[str, Any], key: str) -> list[Any]:
    if not isinstance(value := data[key], list):
        raise TypeError(f"`{key}` must be an array")
    return value


def optional(read: Reader[T], data: Mapping[str, Any], key: str) -> T | None:
    """``read(data, key)``, or ``None`` for a missing or null ``key``."""
    return None if data.get(key) is None else read(data, key)
