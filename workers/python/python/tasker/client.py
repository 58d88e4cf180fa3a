"""A small client for Tasker's REST API: submit a task, read it, wait for
it — enough for a Python service to hand work to Tasker without another
library. (``tasker-ctl`` and the Rust ``tasker-client`` cover the rest of
the API.)"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any, cast

from ._native import terminal_task_states

__all__ = ["Client", "ApiError", "TransportError"]

Json = dict[str, Any]

_TERMINAL = frozenset(terminal_task_states())


class ApiError(Exception):
    """The server answered with an error: ``status`` (HTTP), ``code``
    (stable, e.g. ``duplicate_task``, ``schema_mismatch``), ``message``
    and ``details``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class TransportError(Exception):
    """The server could not be reached or did not answer in time."""


class Client:
    """``Client("http://127.0.0.1:8080")``: calls the REST API of a Tasker
    server. Methods return the API's JSON as dicts (the task view of
    SPEC §8.1: ``task_uuid``, ``state``, ``steps``, …).

    :param timeout: seconds to wait for each response.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"`{url}` is not an http(s) URL")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def create_task(
        self,
        namespace: str,
        name: str,
        context: Any = None,
        *,
        version: str | None = None,
        initiator: str | None = None,
        source_system: str | None = None,
        reason: str | None = None,
        tags: Iterable[str] | None = None,
        priority: int | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Json:
        """Creates a task of template ``namespace/name`` (the newest version
        unless ``version``) with ``context``.

        :raises ApiError: ``template_not_found``, ``schema_mismatch`` (the
            context fails the template's ``input_schema``), ``duplicate_task``
            (``details["task_uuid"]`` is the existing task), …
        """
        body: Json = {
            "namespace": namespace,
            "name": name,
            "context": {} if context is None else context,
        }
        optional = {
            "version": version,
            "initiator": initiator,
            "source_system": source_system,
            "reason": reason,
            "priority": priority,
            "correlation_id": correlation_id,
            "idempotency_key": idempotency_key,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if tags is not None:
            body["tags"] = list(tags)
        return cast(Json, self._call("POST", "/v1/tasks", body))

    def get_task(self, task_uuid: str) -> Json:
        """The task view, with its steps."""
        return cast(Json, self._call("GET", f"/v1/tasks/{_segment(task_uuid)}"))

    def list_tasks(self, **filters: Any) -> Json:
        """``GET /v1/tasks`` with filters (``namespace``, ``name``, ``state``,
        ``since``, ``limit``, ``offset``)."""
        query = urllib.parse.urlencode({k: v for k, v in filters.items() if v is not None})
        return cast(Json, self._call("GET", "/v1/tasks" + (f"?{query}" if query else "")))

    def cancel_task(self, task_uuid: str, reason: str | None = None) -> Json:
        """Cancels a task that has not finished."""
        query = f"?{urllib.parse.urlencode({'reason': reason})}" if reason else ""
        return cast(Json, self._call("DELETE", f"/v1/tasks/{_segment(task_uuid)}{query}"))

    def list_steps(self, task_uuid: str) -> list[Json]:
        """The task's steps."""
        return cast(
            list[Json], self._call("GET", f"/v1/tasks/{_segment(task_uuid)}/workflow_steps")
        )

    def step_audit(self, task_uuid: str, step_uuid: str) -> Json:
        """A step's attempts (outcome, result or error, worker, start and
        finish) and state transitions."""
        return cast(
            Json,
            self._call(
                "GET", f"/v1/tasks/{_segment(task_uuid)}/workflow_steps/{_segment(step_uuid)}/audit"
            ),
        )

    def register_template(self, yaml_text: str) -> Json:
        """Registers a template given as YAML (idempotent for the same content)."""
        return cast(
            Json, self._call("POST", "/v1/templates", yaml_text.encode(), "application/yaml")
        )

    def wait(self, task_uuid: str, timeout: float = 60.0, poll_interval: float = 0.1) -> Json:
        """Waits for the task to finish (``complete``, ``error``, ``cancelled``
        or ``resolved_manually``) and returns its view.

        :raises TimeoutError: it had not finished after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            task = self.get_task(task_uuid)
            if task["state"] in _TERMINAL:
                return task
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_uuid} is still {task['state']} after {timeout:g} s")
            time.sleep(poll_interval)

    def health(self) -> Json:
        """``GET /health/detailed`` (an unhealthy report is returned, not raised)."""
        return cast(Json, self._call("GET", "/health/detailed", accept_unavailable=True))

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        *,
        accept_unavailable: bool = False,
    ) -> Any:
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _decode(response.status, response.read())
        except urllib.error.HTTPError as err:
            payload = err.read()
            if accept_unavailable and err.code == 503:
                return _decode(err.code, payload)
            raise _api_error(err.code, payload) from None
        except (urllib.error.URLError, OSError) as err:
            raise TransportError(f"cannot reach the Tasker server at {self.url}: {err}") from None

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


def _segment(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _decode(status: int, payload: bytes) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        raise ApiError(
            status, "unexpected_response", payload[:200].decode(errors="replace")
        ) from None


def _api_error(status: int, payload: bytes) -> ApiError:
    try:
        error = json.loads(payload)["error"]
        return ApiError(
            status, error.get("code", "unknown"), error.get("message", ""), error.get("details")
        )
    except (ValueError, KeyError, TypeError):
        return ApiError(status, "unexpected_response", payload[:200].decode(errors="replace"))
