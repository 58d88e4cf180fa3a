/**
 * Handlers of the conditional-approval example
 * (`conditional_approval.yaml`, SPEC §4.6).
 *
 * `validate_request` checks an expense request; the decision step
 * `routing_decision` routes it by amount (thresholds from its
 * initialization):
 *
 * ```
 * amount < auto_approve_below (1000)            -> auto_approve
 * auto_approve_below <= amount < finance_review_from (5000)
 *                                               -> manager_approval
 * amount >= finance_review_from                 -> manager_approval + finance_review
 * ```
 *
 * Only the approvals it chose are created and run, and the deferred
 * convergence step `finalize_approval` records the outcome of whichever
 * ran.
 *
 * Written in class style: each handler is a {@link StepHandler} subclass
 * registered with `registry.register`, the decision mixes in
 * {@link Decision}, and the three approvals share an abstract base class
 * (never registered itself).
 * @module
 */

import { Decision, PermanentError, StepHandler, registry, type StepContext, type Success } from "../ts";

import { asInt, at, int, isObject, text } from "./_json";

/** The approvals a request may need, in the order they are reported. */
export const APPROVALS = ["auto_approve", "manager_approval", "finance_review"] as const;

/** The task context: an expense request. */
export interface Request {
  amount: number;
  requester: string;
  purpose: string;
}

/** The task context as a {@link Request} (for `ctx.contextAs`). */
export function parseRequest(data: unknown): Request {
  return { amount: int(data, "amount"), requester: text(data, "requester"), purpose: text(data, "purpose") };
}

/** The decision step's thresholds (its `handler.initialization`). */
export interface Routing {
  autoApproveBelow: number;
  financeReviewFrom: number;
}

/** The initialization as {@link Routing} (for `ctx.initializationAs`); absent keys keep their defaults. */
export function parseRouting(data: unknown): Routing {
  if (!isObject(data)) throw new TypeError("expected an object");
  return {
    autoApproveBelow: Object.hasOwn(data, "auto_approve_below") ? int(data, "auto_approve_below") : 1000,
    financeReviewFrom: Object.hasOwn(data, "finance_review_from") ? int(data, "finance_review_from") : 5000,
  };
}

/** The approval steps a request of `amount` needs. */
export function route(amount: number, routing: Routing): string[] {
  if (amount < routing.autoApproveBelow) return ["auto_approve"];
  if (amount < routing.financeReviewFrom) return ["manager_approval"];
  return ["manager_approval", "finance_review"];
}

/** The amount `validate_request` accepted. */
function approvedAmount(ctx: StepContext): number {
  const amount = asInt(at(ctx.dependency("validate_request"), "amount"));
  if (amount === undefined) throw new PermanentError("validate_request gave no amount");
  return amount;
}

/** Accepts an expense request `{ amount, requester, purpose }`. */
export class ValidateRequest extends StepHandler {
  static override readonly callable = "approvals::validate_request";

  async call(ctx: StepContext): Promise<Request> {
    const request = ctx.contextAs(parseRequest);
    if (request.amount < 0) throw new PermanentError("amount must not be negative");
    if (request.requester.trim() === "") throw new PermanentError("requester is required");
    return request;
  }
}

/** The decision: creates exactly the approval steps the amount needs. */
export class RoutingDecision extends Decision(StepHandler) {
  static override readonly callable = "approvals::routing_decision";

  async call(ctx: StepContext): Promise<Success> {
    const routing = ctx.initializationAs(parseRouting);
    const amount = approvedAmount(ctx);
    const steps = route(amount, routing);
    return this.createSteps(steps, { result: { amount, route: steps } });
  }
}

/**
 * An approval that always approves, recording who approved it.
 * Subclasses set `static callable` and `approvedBy`.
 */
export abstract class Approval extends StepHandler {
  /** Who approves: recorded in the result. */
  abstract readonly approvedBy: string;

  async call(ctx: StepContext) {
    return { approved: true, approved_by: this.approvedBy, amount: approvedAmount(ctx) };
  }
}

/** Approval by policy, for small amounts. */
export class AutoApprove extends Approval {
  static override readonly callable = "approvals::auto_approve";
  readonly approvedBy = "policy";
}

/** Approval by the requester's manager. */
export class ManagerApproval extends Approval {
  static override readonly callable = "approvals::manager_approval";
  readonly approvedBy = "manager";
}

/** Approval by finance, for large amounts. */
export class FinanceReview extends Approval {
  static override readonly callable = "approvals::finance_review";
  readonly approvedBy = "finance";
}

/** The deferred convergence: the outcome of whichever approvals ran. */
export class FinalizeApproval extends StepHandler {
  static override readonly callable = "approvals::finalize_approval";

  async call(ctx: StepContext) {
    // A step that ran has a key, even if its result is null: look at the keys, not the values.
    const ran = APPROVALS.filter((name) => Object.hasOwn(ctx.dependencyResults, name));
    if (ran.length === 0) throw new PermanentError("no approval step ran");
    return {
      approved: ran.every((name) => at(ctx.dependencyResults[name], "approved") === true),
      approvals: ran,
      amount: approvedAmount(ctx),
    };
  }
}

for (const Handler of [ValidateRequest, RoutingDecision, AutoApprove, ManagerApproval, FinanceReview, FinalizeApproval]) {
  registry.register(Handler);
}
