"""Handlers of the order-fulfillment example (``order_fulfillment.yaml``):
``validate_order`` → ``reserve_inventory`` → ``process_payment`` →
``ship_order``.

They stand in for real services: validation and totals are computed for
real; inventory, payment and shipping return deterministic identifiers
derived from the task, so a retried step returns the same answer (handlers
should be idempotent).

Special inputs exercise failures:

* a SKU starting with ``OOS-`` is out of stock (permanent, code
  ``out_of_stock``);
* payment token ``tok_decline`` is declined (permanent, code
  ``card_declined``);
* payment token ``tok_flaky`` fails the first attempt with a retry hint
  (retryable, code ``gateway_unavailable``, ``retry_after`` 50 ms).

Written in function style, with the task context parsed into dataclasses;
the payment and shipping handlers are ``async def``, as handlers calling
remote services usually are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasker import PermanentError, RetryableError, StepContext, handler

from ._json import I64, array, at, i64, text


@dataclass(frozen=True)
class Customer:
    id: int
    email: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Customer:
        return cls(i64(data, "id"), text(data, "email"))


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    unit_price_cents: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Item:
        return cls(text(data, "sku"), i64(data, "quantity"), i64(data, "unit_price_cents"))


@dataclass(frozen=True)
class Payment:
    method: str
    token: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Payment:
        return cls(text(data, "method"), text(data, "token"))


@dataclass(frozen=True)
class Shipping:
    address: str
    method: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Shipping:
        return cls(text(data, "address"), text(data, "method"))


@dataclass(frozen=True)
class Order:
    """The task context of an order (extra fields are ignored). Parsed by
    ``ctx.context_as(Order.from_dict)``: a missing field (``KeyError``) or a
    mistyped one (``TypeError``) fails the step as an invalid task context."""

    customer: Customer
    items: list[Item]
    payment: Payment
    shipping: Shipping

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        return cls(
            customer=Customer.from_dict(data["customer"]),
            items=[Item.from_dict(item) for item in array(data, "items")],
            payment=Payment.from_dict(data["payment"]),
            shipping=Shipping.from_dict(data["shipping"]),
        )


def _short(ctx: StepContext) -> str:
    """A short, stable suffix for identifiers derived from the task."""
    return ctx.task_uuid.replace("-", "")[20:]


def _from_parent(ctx: StepContext, step: str, field: str) -> Any:
    """Field ``field`` of ancestor ``step``'s result."""
    result = ctx.dependency(step)
    if not isinstance(result, dict) or field not in result:
        raise PermanentError(f"`{step}` result has no `{field}`")
    return result[field]


@handler("ecommerce::validate_order")
def validate_order(ctx: StepContext) -> dict[str, Any]:
    """Checks every item's quantity and computes the order total."""
    order = ctx.context_as(Order.from_dict)
    total = 0
    for item in order.items:
        if item.quantity <= 0:
            raise PermanentError(f"item {item.sku} has quantity {item.quantity}")
        line = item.quantity * item.unit_price_cents
        total += line
        if line not in I64 or total not in I64:
            raise PermanentError("order total overflows")
    if (item_count := sum(item.quantity for item in order.items)) not in I64:
        raise PermanentError("item count overflows")
    return {
        "customer_id": order.customer.id,
        "customer_email": order.customer.email,
        "item_count": item_count,
        "order_total_cents": total,
    }


@handler("ecommerce::reserve_inventory")
def reserve_inventory(ctx: StepContext) -> dict[str, Any]:
    """Reserves every item in the initialization's ``warehouse`` (default ``main``)."""
    order = ctx.context_as(Order.from_dict)
    for item in order.items:
        if item.sku.startswith("OOS-"):
            raise PermanentError(f"{item.sku} is out of stock", code="out_of_stock")
    warehouse = at(ctx.initialization, "warehouse")
    return {
        "reservation_id": f"res_{_short(ctx)}",
        "warehouse": warehouse if isinstance(warehouse, str) else "main",
        "skus": [item.sku for item in order.items],
    }


@handler("ecommerce::process_payment")
async def process_payment(ctx: StepContext) -> dict[str, Any]:
    """Charges the total ``validate_order`` computed through the initialization's ``gateway``."""
    order = ctx.context_as(Order.from_dict)
    amount = _from_parent(ctx, "validate_order", "order_total_cents")
    _from_parent(ctx, "reserve_inventory", "reservation_id")
    if order.payment.token == "tok_decline":
        raise PermanentError("card declined", code="card_declined")
    if order.payment.token == "tok_flaky" and ctx.attempt == 1:
        raise RetryableError(
            "payment gateway unavailable (503)", retry_after=0.05, code="gateway_unavailable"
        )
    return {
        "payment_id": f"pay_{_short(ctx)}",
        "method": order.payment.method,
        "amount_charged_cents": amount,
        "gateway": at(ctx.initialization, "gateway"),
    }


@handler("ecommerce::ship_order")
async def ship_order(ctx: StepContext) -> dict[str, Any]:
    """Books the shipment of a paid order: 1 day for ``express``, else 5."""
    order = ctx.context_as(Order.from_dict)
    _from_parent(ctx, "process_payment", "payment_id")
    return {
        "tracking_number": f"TRK{_short(ctx).upper()}",
        "address": order.shipping.address,
        "shipping_method": order.shipping.method,
        "estimated_days": 1 if order.shipping.method == "express" else 5,
    }
