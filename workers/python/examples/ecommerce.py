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

Written in function style; the payment and shipping handlers are
``async def``, as handlers calling remote services usually are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasker import PermanentError, RetryableError, StepContext, handler

__all__ = [
    "Customer",
    "Item",
    "Order",
    "Payment",
    "Shipping",
    "order_of",
    "validate_order",
    "reserve_inventory",
    "process_payment",
    "ship_order",
]

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


# -- the task context ---------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    id: int
    email: str


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class Payment:
    method: str
    token: str


@dataclass(frozen=True)
class Shipping:
    address: str
    method: str


@dataclass(frozen=True)
class Order:
    """The task context of an order (extra fields are ignored)."""

    customer: Customer
    items: list[Item]
    payment: Payment
    shipping: Shipping


def _invalid(problem: str) -> PermanentError:
    return PermanentError(f"invalid task context: {problem}")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"`{path}` must be an object")
    return value


def _field(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _invalid(f"missing field `{path}{key}`")
    return obj[key]


def _str(obj: dict[str, Any], key: str, path: str = "") -> str:
    value = _field(obj, key, path)
    if not isinstance(value, str):
        raise _invalid(f"`{path}{key}` must be a string")
    return value


def _i64(obj: dict[str, Any], key: str, path: str = "") -> int:
    value = _field(obj, key, path)
    if type(value) is not int or not I64_MIN <= value <= I64_MAX:
        raise _invalid(f"`{path}{key}` must be a 64-bit integer")
    return value


def order_of(ctx: StepContext) -> Order:
    """The task context as an :class:`Order`.

    :raises PermanentError: ``invalid task context: …`` when it does not fit.
    """
    context = _object(ctx.context, "context")
    customer = _object(_field(context, "customer", ""), "customer")
    items = _field(context, "items", "")
    if not isinstance(items, list):
        raise _invalid("`items` must be an array")
    parsed_items = []
    for i, raw in enumerate(items):
        path = f"items[{i}]."
        item = _object(raw, path[:-1])
        parsed_items.append(
            Item(
                sku=_str(item, "sku", path),
                quantity=_i64(item, "quantity", path),
                unit_price_cents=_i64(item, "unit_price_cents", path),
            )
        )
    payment = _object(_field(context, "payment", ""), "payment")
    shipping = _object(_field(context, "shipping", ""), "shipping")
    return Order(
        customer=Customer(id=_i64(customer, "id", "customer."), email=_str(customer, "email", "customer.")),
        items=parsed_items,
        payment=Payment(method=_str(payment, "method", "payment."), token=_str(payment, "token", "payment.")),
        shipping=Shipping(
            address=_str(shipping, "address", "shipping."), method=_str(shipping, "method", "shipping.")
        ),
    )


# -- helpers ------------------------------------------------------------------


def _short(ctx: StepContext) -> str:
    """A short, stable suffix for identifiers derived from the task."""
    return ctx.task_uuid.replace("-", "")[20:]


def _from_parent(ctx: StepContext, step: str, field: str) -> Any:
    """Field ``field`` of ancestor ``step``'s result."""
    result = ctx.dependency(step)
    if not isinstance(result, dict) or field not in result:
        raise PermanentError(f"`{step}` result has no `{field}`")
    return result[field]


def _initialization(ctx: StepContext) -> dict[str, Any]:
    return ctx.initialization if isinstance(ctx.initialization, dict) else {}


# -- handlers -----------------------------------------------------------------


@handler("ecommerce::validate_order")
def validate_order(ctx: StepContext) -> dict[str, Any]:
    """Checks every item's quantity and computes the order total.

    :raises PermanentError: an item's quantity is not positive, or the total
        overflows a 64-bit integer.
    """
    order = order_of(ctx)
    total = 0
    for item in order.items:
        if item.quantity <= 0:
            raise PermanentError(f"item {item.sku} has quantity {item.quantity}")
        line = item.quantity * item.unit_price_cents
        if not I64_MIN <= line <= I64_MAX or not I64_MIN <= total + line <= I64_MAX:
            raise PermanentError("order total overflows")
        total += line
    item_count = sum(item.quantity for item in order.items)
    if item_count > I64_MAX:
        raise PermanentError("item count overflows")
    return {
        "customer_id": order.customer.id,
        "customer_email": order.customer.email,
        "item_count": item_count,
        "order_total_cents": total,
    }


@handler("ecommerce::reserve_inventory")
def reserve_inventory(ctx: StepContext) -> dict[str, Any]:
    """Reserves stock for every item in the ``warehouse`` of the step's
    initialization (``main`` by default).

    :raises PermanentError: code ``out_of_stock``, for a SKU starting with
        ``OOS-``.
    """
    order = order_of(ctx)
    for item in order.items:
        if item.sku.startswith("OOS-"):
            raise PermanentError(f"{item.sku} is out of stock", code="out_of_stock")
    warehouse = _initialization(ctx).get("warehouse")
    return {
        "reservation_id": f"res_{_short(ctx)}",
        "warehouse": warehouse if isinstance(warehouse, str) else "main",
        "skus": [item.sku for item in order.items],
    }


@handler("ecommerce::process_payment")
async def process_payment(ctx: StepContext) -> dict[str, Any]:
    """Charges the order total computed by ``validate_order`` through the
    ``gateway`` of the step's initialization.

    :raises PermanentError: code ``card_declined``, for token ``tok_decline``.
    :raises RetryableError: code ``gateway_unavailable`` with a 50 ms retry
        hint, on the first attempt with token ``tok_flaky``.
    """
    order = order_of(ctx)
    amount = _from_parent(ctx, "validate_order", "order_total_cents")
    _from_parent(ctx, "reserve_inventory", "reservation_id")
    token = order.payment.token
    if token == "tok_decline":
        raise PermanentError("card declined", code="card_declined")
    if token == "tok_flaky" and ctx.attempt == 1:
        raise RetryableError(
            "payment gateway unavailable (503)", retry_after=0.05, code="gateway_unavailable"
        )
    return {
        "payment_id": f"pay_{_short(ctx)}",
        "method": order.payment.method,
        "amount_charged_cents": amount,
        "gateway": _initialization(ctx).get("gateway"),
    }


@handler("ecommerce::ship_order")
async def ship_order(ctx: StepContext) -> dict[str, Any]:
    """Books the shipment of a paid order: a tracking number, and 1 day for
    ``express`` shipping or 5 otherwise."""
    order = order_of(ctx)
    _from_parent(ctx, "process_payment", "payment_id")
    return {
        "tracking_number": f"TRK{_short(ctx).upper()}",
        "address": order.shipping.address,
        "shipping_method": order.shipping.method,
        "estimated_days": 1 if order.shipping.method == "express" else 5,
    }
