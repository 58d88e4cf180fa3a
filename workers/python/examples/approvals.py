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

from dataclasses import dataclass
from typing import Any, ClassVar

from tasker import Decision, PermanentError, StepContext, StepHandler, Success

__all__ = [
    "APPROVALS",
    "Routing",
    "route",
    "ValidateRequest",
    "RoutingDecision",
    "Approval",
    "AutoApprove",
    "ManagerApproval",
    "FinanceReview",
    "FinalizeApproval",
]

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

APPROVALS = ("auto_approve", "manager_approval", "finance_review")
"""The approvals a request may need, in the order they are reported."""


def _is_i64(value: Any) -> bool:
    return type(value) is int and I64_MIN <= value <= I64_MAX


@dataclass(frozen=True)
class Routing:
    """The decision step's thresholds (its ``handler.initialization``)."""

    auto_approve_below: int = 1000
    finance_review_from: int = 5000

    @classmethod
    def of(cls, initialization: Any) -> "Routing":
        """Reads the initialization; absent keys keep their defaults.

        :raises PermanentError: ``invalid handler initialization: …``.
        """
        if initialization is None:
            initialization = {}
        if not isinstance(initialization, dict):
            raise PermanentError("invalid handler initialization: expected an object")
        values = {}
        for key in ("auto_approve_below", "finance_review_from"):
            if key in initialization:
                if not _is_i64(initialization[key]):
                    raise PermanentError(
                        f"invalid handler initialization: `{key}` must be a 64-bit integer"
                    )
                values[key] = initialization[key]
        return cls(**values)


def route(amount: int, routing: Routing) -> list[str]:
    """The approval steps a request of ``amount`` needs."""
    if amount < routing.auto_approve_below:
        return ["auto_approve"]
    if amount < routing.finance_review_from:
        return ["manager_approval"]
    return ["manager_approval", "finance_review"]


def _amount(ctx: StepContext) -> int:
    """The amount ``validate_request`` accepted."""
    result = ctx.dependency("validate_request")
    amount = result.get("amount") if isinstance(result, dict) else None
    if not _is_i64(amount):
        raise PermanentError("validate_request gave no amount")
    return amount


class ValidateRequest(StepHandler):
    """Accepts an expense request ``{"amount", "requester", "purpose"}``.

    :raises PermanentError: the context does not fit, the amount is
        negative, or the requester is blank.
    """

    callable = "approvals::validate_request"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        request = ctx.context
        if not isinstance(request, dict):
            raise PermanentError("invalid task context: expected an object")
        for key, valid, kind in (
            ("amount", _is_i64, "a 64-bit integer"),
            ("requester", lambda v: isinstance(v, str), "a string"),
            ("purpose", lambda v: isinstance(v, str), "a string"),
        ):
            if key not in request:
                raise PermanentError(f"invalid task context: missing field `{key}`")
            if not valid(request[key]):
                raise PermanentError(f"invalid task context: `{key}` must be {kind}")
        if request["amount"] < 0:
            raise PermanentError("amount must not be negative")
        if not request["requester"].strip():
            raise PermanentError("requester is required")
        return {
            "amount": request["amount"],
            "requester": request["requester"],
            "purpose": request["purpose"],
        }


class RoutingDecision(StepHandler, Decision):
    """The decision: creates exactly the approval steps the amount needs
    (see :func:`route`); its result is ``{"amount", "route"}``."""

    callable = "approvals::routing_decision"

    def call(self, ctx: StepContext) -> Success:
        routing = Routing.of(ctx.initialization)
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
    """The deferred convergence: ``{"approved", "approvals", "amount"}`` of
    whichever approvals ran (``approved`` only if every one approved).

    :raises PermanentError: no approval step ran.
    """

    callable = "approvals::finalize_approval"

    def call(self, ctx: StepContext) -> dict[str, Any]:
        # `dependency()` cannot tell a missing step from a null result.
        ran = [(name, ctx.dependency_results[name]) for name in APPROVALS if name in ctx.dependency_results]
        if not ran:
            raise PermanentError("no approval step ran")
        approved = all(isinstance(r, dict) and r.get("approved") is True for _, r in ran)
        return {
            "approved": approved,
            "approvals": [name for name, _ in ran],
            "amount": _amount(ctx),
        }
