//! Handlers of the order-fulfillment example. They stand in for real
//! services: validation and totals are computed for real; inventory, payment
//! and shipping return deterministic identifiers derived from the task, so a
//! retried step returns the same answer (handlers should be idempotent).
//! Special inputs exercise failures: a SKU starting with `OOS-` is out of
//! stock (permanent), payment token `tok_decline` is declined (permanent),
//! `tok_flaky` fails the first attempt with a retry hint (retryable).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tasker_worker::{HandlerError, HandlerRegistry, StepContext, Success};

#[derive(Deserialize)]
struct Order {
    customer: Customer,
    items: Vec<Item>,
    payment: Payment,
    shipping: Shipping,
}

#[derive(Deserialize)]
struct Customer {
    id: i64,
    email: String,
}

#[derive(Deserialize)]
struct Item {
    sku: String,
    quantity: i64,
    unit_price_cents: i64,
}

#[derive(Deserialize)]
struct Payment {
    method: String,
    token: String,
}

#[derive(Deserialize)]
struct Shipping {
    address: String,
    method: String,
}

/// A short, stable suffix for identifiers derived from the task.
fn short(ctx: &StepContext) -> String {
    ctx.task_uuid.to_string().replace('-', "")[20..].to_owned()
}

fn from_parent(
    ctx: &StepContext,
    step: &str,
    field: &str,
) -> Result<serde_json::Value, HandlerError> {
    ctx.dependency(step)
        .and_then(|r| r.get(field))
        .cloned()
        .ok_or_else(|| HandlerError::permanent(format!("`{step}` result has no `{field}`")))
}

pub(crate) fn register(registry: &mut HandlerRegistry) {
    registry
        .register_fn("ecommerce::validate_order", |ctx| async move {
            let order: Order = ctx.context_as()?;
            let mut total: i64 = 0;
            for item in &order.items {
                if item.quantity <= 0 {
                    return Err(HandlerError::permanent(format!(
                        "item {} has quantity {}",
                        item.sku, item.quantity
                    )));
                }
                total = item
                    .quantity
                    .checked_mul(item.unit_price_cents)
                    .and_then(|line| total.checked_add(line))
                    .ok_or_else(|| HandlerError::permanent("order total overflows"))?;
            }
            Ok(Success::new(json!({
                "customer_id": order.customer.id,
                "customer_email": order.customer.email,
                "item_count": order.items.iter().map(|i| i.quantity).sum::<i64>(),
                "order_total_cents": total,
            })))
        })
        .register_fn("ecommerce::reserve_inventory", |ctx| async move {
            let order: Order = ctx.context_as()?;
            if let Some(item) = order.items.iter().find(|i| i.sku.starts_with("OOS-")) {
                return Err(
                    HandlerError::permanent(format!("{} is out of stock", item.sku))
                        .with_code("out_of_stock"),
                );
            }
            let warehouse = ctx.initialization["warehouse"]
                .as_str()
                .unwrap_or("main")
                .to_owned();
            Ok(Success::new(json!({
                "reservation_id": format!("res_{}", short(&ctx)),
                "warehouse": warehouse,
                "skus": order.items.iter().map(|i| i.sku.clone()).collect::<Vec<_>>(),
            })))
        })
        .register_fn("ecommerce::process_payment", |ctx| async move {
            let order: Order = ctx.context_as()?;
            let amount = from_parent(&ctx, "validate_order", "order_total_cents")?;
            let _reservation = from_parent(&ctx, "reserve_inventory", "reservation_id")?;
            match order.payment.token.as_str() {
                "tok_decline" => {
                    return Err(HandlerError::permanent("card declined").with_code("card_declined"));
                }
                "tok_flaky" if ctx.attempt == 1 => {
                    return Err(HandlerError::retryable("payment gateway unavailable (503)")
                        .with_code("gateway_unavailable")
                        .retry_after(Duration::from_millis(50)));
                }
                _ => {}
            }
            Ok(Success::new(json!({
                "payment_id": format!("pay_{}", short(&ctx)),
                "method": order.payment.method,
                "amount_charged_cents": amount,
                "gateway": ctx.initialization["gateway"],
            })))
        })
        .register_fn("ecommerce::ship_order", |ctx| async move {
            let order: Order = ctx.context_as()?;
            let _payment = from_parent(&ctx, "process_payment", "payment_id")?;
            let days = if order.shipping.method == "express" {
                1
            } else {
                5
            };
            Ok(Success::new(json!({
                "tracking_number": format!("TRK{}", short(&ctx).to_uppercase()),
                "address": order.shipping.address,
                "shipping_method": order.shipping.method,
                "estimated_days": days,
            })))
        });
}
