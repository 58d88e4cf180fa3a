//! Handlers of the conditional-approval example (SPEC §4.6): validate an
//! expense request, let a decision step route it by amount, run the
//! approvals it chose, and finalize with whichever ran.

use serde::Deserialize;
use serde_json::{Value, json};
use tasker_worker::{HandlerError, HandlerRegistry, StepContext, Success};

/// The approvals a request may need, in the order they are reported.
const APPROVALS: [&str; 3] = ["auto_approve", "manager_approval", "finance_review"];

#[derive(Deserialize)]
struct Request {
    amount: i64,
    requester: String,
    purpose: String,
}

#[derive(Deserialize)]
struct Routing {
    #[serde(default = "Routing::default_auto")]
    auto_approve_below: i64,
    #[serde(default = "Routing::default_finance")]
    finance_review_from: i64,
}

impl Routing {
    fn default_auto() -> i64 {
        1000
    }

    fn default_finance() -> i64 {
        5000
    }
}

/// The steps a request of `amount` needs.
fn route(amount: i64, routing: &Routing) -> Vec<&'static str> {
    if amount < routing.auto_approve_below {
        vec!["auto_approve"]
    } else if amount < routing.finance_review_from {
        vec!["manager_approval"]
    } else {
        vec!["manager_approval", "finance_review"]
    }
}

fn amount(ctx: &StepContext) -> Result<i64, HandlerError> {
    ctx.dependency("validate_request")
        .and_then(|r| r["amount"].as_i64())
        .ok_or_else(|| HandlerError::permanent("validate_request gave no amount"))
}

fn approval(ctx: &StepContext, by: &str) -> Result<Success, HandlerError> {
    Ok(Success::new(json!({
        "approved": true,
        "approved_by": by,
        "amount": amount(ctx)?,
    })))
}

pub(crate) fn register(registry: &mut HandlerRegistry) {
    registry
        .register_fn("approvals::validate_request", |ctx| async move {
            let request: Request = ctx.context_as()?;
            if request.amount < 0 {
                return Err(HandlerError::permanent("amount must not be negative"));
            }
            if request.requester.trim().is_empty() {
                return Err(HandlerError::permanent("requester is required"));
            }
            Ok(Success::new(json!({
                "amount": request.amount,
                "requester": request.requester,
                "purpose": request.purpose,
            })))
        })
        .register_fn("approvals::routing_decision", |ctx| async move {
            let routing: Routing = ctx.initialization_as()?;
            let amount = amount(&ctx)?;
            let steps = route(amount, &routing);
            Ok(Success::create_steps(
                json!({ "amount": amount, "route": steps }),
                steps,
            ))
        })
        .register_fn("approvals::auto_approve", |ctx| async move {
            approval(&ctx, "policy")
        })
        .register_fn("approvals::manager_approval", |ctx| async move {
            approval(&ctx, "manager")
        })
        .register_fn("approvals::finance_review", |ctx| async move {
            approval(&ctx, "finance")
        })
        .register_fn("approvals::finalize_approval", |ctx| async move {
            let ran: Vec<(&str, &Value)> = APPROVALS
                .iter()
                .filter_map(|name| ctx.dependency(name).map(|r| (*name, r)))
                .collect();
            if ran.is_empty() {
                return Err(HandlerError::permanent("no approval step ran"));
            }
            let approved = ran.iter().all(|(_, r)| r["approved"] == true);
            Ok(Success::new(json!({
                "approved": approved,
                "approvals": ran.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
                "amount": amount(&ctx)?,
            })))
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_route_to_the_approvals_they_need() {
        let routing = Routing {
            auto_approve_below: 1000,
            finance_review_from: 5000,
        };
        assert_eq!(route(500, &routing), ["auto_approve"]);
        assert_eq!(route(1000, &routing), ["manager_approval"]);
        assert_eq!(route(4999, &routing), ["manager_approval"]);
        assert_eq!(
            route(5000, &routing),
            ["manager_approval", "finance_review"]
        );
    }
}
