/**
 * Handlers of the order-fulfillment example (`order_fulfillment.yaml`):
 * `validate_order` → `reserve_inventory` → `process_payment` →
 * `ship_order`.
 *
 * They stand in for real services: validation and totals are computed for
 * real; inventory, payment and shipping return deterministic identifiers
 * derived from the task, so a retried step returns the same answer
 * (handlers should be idempotent).
 *
 * Special inputs exercise failures:
 *
 * - a SKU starting with `OOS-` is out of stock (permanent, code
 *   `out_of_stock`);
 * - payment token `tok_decline` is declined (permanent, code
 *   `card_declined`);
 * - payment token `tok_flaky` fails the first attempt with a retry hint
 *   (retryable, code `gateway_unavailable`, `retryAfterMs` 50).
 *
 * Written in function style, with the task context parsed into typed
 * objects by `ctx.contextAs(parseOrder)`.
 * @module
 */

import { PermanentError, RetryableError, handle, type StepContext } from "../ts";

import { array, at, int, isInt, isObject, object, text } from "./_json";

/** Who ordered. */
export interface Customer {
  id: number;
  email: string;
}

/** One order line. */
export interface Item {
  sku: string;
  quantity: number;
  unitPriceCents: number;
}

/** How the order is paid. */
export interface Payment {
  method: string;
  token: string;
}

/** Where and how the order ships. */
export interface Shipping {
  address: string;
  method: string;
}

/** The task context of an order (extra fields are ignored). */
export interface Order {
  customer: Customer;
  items: Item[];
  payment: Payment;
  shipping: Shipping;
}

/**
 * The task context as an {@link Order}; for `ctx.contextAs`, which turns
 * the `TypeError` of a missing or mistyped field into a permanent
 * "invalid task context" failure.
 */
export function parseOrder(data: unknown): Order {
  // Fields are read in order, so the first bad one is the one reported.
  const customer = object(data, "customer");
  const parsedCustomer = { id: int(customer, "id"), email: text(customer, "email") };
  const items = array(data, "items").map((item) => ({
    sku: text(item, "sku"),
    quantity: int(item, "quantity"),
    unitPriceCents: int(item, "unit_price_cents"),
  }));
  const payment = object(data, "payment");
  const parsedPayment = { method: text(payment, "method"), token: text(payment, "token") };
  const shipping = object(data, "shipping");
  return {
    customer: parsedCustomer,
    items,
    payment: parsedPayment,
    shipping: { address: text(shipping, "address"), method: text(shipping, "method") },
  };
}

/** A short, stable suffix for identifiers derived from the task. */
function short(ctx: StepContext): string {
  return ctx.taskUuid.replaceAll("-", "").slice(20);
}

/** Field `field` of ancestor `step`'s result. */
function fromParent(ctx: StepContext, step: string, field: string): unknown {
  const result: unknown = ctx.dependency(step);
  if (!isObject(result) || !Object.hasOwn(result, field)) {
    throw new PermanentError(`\`${step}\` result has no \`${field}\``);
  }
  return result[field];
}

/** Checks every item's quantity and computes the order total. */
export async function validateOrder(ctx: StepContext) {
  const order = ctx.contextAs(parseOrder);
  let total = 0;
  let itemCount = 0;
  for (const item of order.items) {
    if (item.quantity <= 0) throw new PermanentError(`item ${item.sku} has quantity ${item.quantity}`);
    const line = item.quantity * item.unitPriceCents;
    total += line;
    if (!isInt(line) || !isInt(total)) throw new PermanentError("order total overflows");
    itemCount += item.quantity;
  }
  if (!isInt(itemCount)) throw new PermanentError("item count overflows");
  return {
    customer_id: order.customer.id,
    customer_email: order.customer.email,
    item_count: itemCount,
    order_total_cents: total,
  };
}

/** Reserves every item in the initialization's `warehouse` (default `main`). */
export async function reserveInventory(ctx: StepContext) {
  const order = ctx.contextAs(parseOrder);
  for (const item of order.items) {
    if (item.sku.startsWith("OOS-")) {
      throw new PermanentError(`${item.sku} is out of stock`, { code: "out_of_stock" });
    }
  }
  const warehouse = at(ctx.initialization, "warehouse");
  return {
    reservation_id: `res_${short(ctx)}`,
    warehouse: typeof warehouse === "string" ? warehouse : "main",
    skus: order.items.map((item) => item.sku),
  };
}

/** Charges the total `validate_order` computed through the initialization's `gateway`. */
export async function processPayment(ctx: StepContext) {
  const order = ctx.contextAs(parseOrder);
  const amount = fromParent(ctx, "validate_order", "order_total_cents");
  fromParent(ctx, "reserve_inventory", "reservation_id");
  if (order.payment.token === "tok_decline") {
    throw new PermanentError("card declined", { code: "card_declined" });
  }
  if (order.payment.token === "tok_flaky" && ctx.attempt === 1) {
    // What a gateway's `Retry-After` would say: wins over the step's backoff.
    throw new RetryableError("payment gateway unavailable (503)", { retryAfterMs: 50, code: "gateway_unavailable" });
  }
  return {
    payment_id: `pay_${short(ctx)}`,
    method: order.payment.method,
    amount_charged_cents: amount,
    gateway: at(ctx.initialization, "gateway"),
  };
}

/** Books the shipment of a paid order: 1 day for `express`, else 5. */
export async function shipOrder(ctx: StepContext) {
  const order = ctx.contextAs(parseOrder);
  fromParent(ctx, "process_payment", "payment_id");
  return {
    tracking_number: `TRK${short(ctx).toUpperCase()}`,
    address: order.shipping.address,
    shipping_method: order.shipping.method,
    estimated_days: order.shipping.method === "express" ? 1 : 5,
  };
}

handle("ecommerce::validate_order", validateOrder);
handle("ecommerce::reserve_inventory", reserveInventory);
handle("ecommerce::process_payment", processPayment);
handle("ecommerce::ship_order", shipOrder);
