"""Handlers of the conditional-approval example
(``conditional_approval.yaml``, SPEC §4.6).

``validate_request`` checks an expense request; the decision step
``routing_decision`` routes it by amount (thresholds from its
initialization)::

    amount < auto_approve_below (1000)           -> auto_approve
    auto_approve_below <= amount < finance_review_from (5000)
                                                 -> manager_approval
    amount >= finance_review_from                -> manager_approval + finance_review

only the approvals it chose are created and run, and the deferred
convergence step ``finalize_approval`` records the outcome of whichever ran.

Written in class style: each handler is a :class:`tasker.StepHandler`
subclass (defining it registers it), the decision composes the
:class:`tasker.Decision` capability, and the three approvals share a base
class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from tasker import Decision, PermanentError, StepContext, StepHandler, Success

from ._json import as_i64, at, i64, text

APPROVALS = ("auto_approve", "manager_approval", "finance_review")
"""The approvals a request may need, in the order they are reported."""


@dataclass(frozen=True)
class Request:
    """The task context: an expense request."""

    amount: int
    requester: str
    purpose: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Request:
        return cls(i64(data, "amount"), text(data, "requester"), text(data, "purpose"))


@dataclass(frozen=True)
class Routing:
    """The decision step's thresholds (its ``handler.initialization``)."""

    auto_approve_below: int = 1000
    finance_review_from: int = 5000

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Routing:
        """Absent keys keep their defaults."""
        if not isinstance(data, Mapping):
            raise TypeError("expected an object")
        return cls(**{f.name: i64(data, f.name) for f in fields(cls) if f.name in data})


def route(amount: int, routing: Routing) -> list[str]:
    """The approval steps a request of ``amount`` needs."""
    if amount < routing.auto_approve_below:
        return ["auto_approve"]
    if amount < routing.finance_review_from:
        return ["manager_approval"]
    return ["manager_approval", "finance_review"]


def _amount(ctx: StepContext) -> int:
    """The amount ``validate_request`` accepted."""
    if (amount := as_i64(at(ctx.dependency("validate_request"), "amount"))) is None:
        raise PermanentError("validate_request gave no amount")
    return amount


class ValidateRequest(StepHandler):
    """Accepts an expense request ``{"amount", "requester", "purpose"}``."""

    callable = "approvals::validate_request"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        request = ctx.context_as(Request.from_dict)
        if request.amount < 0:
            raise PermanentError("amount must not be negative")
        if not request.requester.strip():
            raise PermanentError("requester is required")
        return asdict(request)


class RoutingDecision(StepHandler, Decision):
    """The decision: creates exactly the approval steps the amount needs."""

    callable = "approvals::routing_decision"

    def call(self, ctx: StepContext) -> Success:
        routing = ctx.initialization_as(Routing.from_dict)
        amount = _amount(ctx)
        steps = route(amount, routing)
        return self.create_steps(steps, result={"amount": amount, "route": steps})


class Approval(StepHandler):
    """An approval that always approves, recording who approved it.
    Subclasses set ``callable`` and ``approved_by``."""

    approved_by: ClassVar[str]

    def call(self, ctx: StepContext) -> dict[str, Any]:
        return {"approved": True, "approved_by": self.approved_by, "amount": _amount(ctx)}


class AutoApprove(Approval):
    """Approval by policy, for small amounts."""

    callable = "approvals::auto_approve"
    approved_by = "policy"


class ManagerApproval(Approval):
    """Approval by the requester's manager."""

    callable = "approvals::manager_approval"
    approved_by = "manager"


class FinanceReview(Approval):
    """Approval by finance, for large amounts."""

    callable = "approvals::finance_review"
    approved_by = "finance"


class FinalizeApproval(StepHandler):
    """The deferred convergence: the outcome of whichever approvals ran."""

    callable = "approvals::finalize_approval"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        # `ctx.dependency()` cannot tell a step that did not run from a null result.
        ran = [name for name in APPROVALS if name in ctx.dependency_results]
        if not ran:
            raise PermanentError("no approval step ran")
        return {
            "approved": all(at(ctx.dependency_results[name], "approved") is True for name in ran),
            "approvals": ran,
            "amount": _amount(ctx),
        }
