"""Unit tests of the example handlers in ``examples/``: each handler is
called directly with a :meth:`StepContext.for_test` context, so no
database, server or worker is needed. Results are compared with the field
names and values of the Rust examples in ``workers/rust/src/``."""

from __future__ import annotations

import asyncio
import csv
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `examples` imports from here

import pytest  # noqa: E402
import tasker  # noqa: E402
from tasker import PermanentError, RetryableError, StepContext, Success  # noqa: E402

import examples.all  # noqa: E402,F401  (registers every example handler)
from examples import approvals, csv_batch, ecommerce, numbers, parity  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
TEMPLATES = REPO / "config" / "tasks"
SAMPLE_CSV = Path(__file__).resolve().parents[2] / "rust" / "data" / "products.csv"
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
TASK_UUID = "0190f0e4-8a1b-7c3d-9e2f-a1b2c3d4e5f6"


def ctx(**fields: Any) -> StepContext:
    fields.setdefault("task_uuid", TASK_UUID)
    return StepContext.for_test(**fields)


def call(callable: str, context: StepContext) -> Any:
    """Runs the registered handler of ``callable``, awaiting it if async."""
    entry = tasker.default_registry.get(callable)
    assert entry is not None, f"{callable} is not registered"
    value = entry.run(context)
    return asyncio.run(value) if entry.is_async else value


# -- registration ---------------------------------------------------------------


def test_every_callable_of_the_example_templates_is_registered() -> None:
    named = set()
    for template in TEMPLATES.glob("*.yaml"):
        named.update(re.findall(r'callable:\s*"([^"]+)"', template.read_text()))
    assert len(named) == 23
    assert set(examples.all.__all__) == {"approvals", "csv_batch", "ecommerce", "numbers", "parity"}
    missing = sorted(c for c in named if c not in tasker.default_registry)
    assert missing == []


def test_function_and_class_styles_and_async_handlers_are_all_used() -> None:
    assert tasker.default_registry.get("examples::square").source is numbers.square
    assert isinstance(tasker.default_registry.get("csv::analyze_csv").source, csv_batch.AnalyzeCsv)
    assert isinstance(
        tasker.default_registry.get("approvals::routing_decision").source, approvals.RoutingDecision
    )
    assert tasker.default_registry.get("ecommerce::ship_order").is_async
    assert tasker.default_registry.get("ecommerce::process_payment").is_async
    assert not tasker.default_registry.get("ecommerce::validate_order").is_async
    sources = [tasker.default_registry.get(c).source for c in tasker.default_registry]
    assert not any(type(s) is approvals.Approval for s in sources), (
        "the base class is not a handler"
    )


# -- numbers --------------------------------------------------------------------


def parents(**values: Any) -> dict[str, Any]:
    """Fields of a context whose direct parents returned ``{"value": v}``."""
    return {
        "direct_parents": list(values),
        "dependency_results": {name: {"value": v} for name, v in values.items()},
    }


def test_square_reads_the_context_at_the_root() -> None:
    assert numbers.square(ctx(context={"value": 6})) == {"value": 36}
    assert call("examples::square", ctx(context={"value": -7})) == {"value": 49}


def test_square_reads_its_single_parent() -> None:
    assert numbers.square(ctx(context={"value": 1}, **parents(a=12))) == {"value": 144}
    with pytest.raises(PermanentError, match="examples::square takes exactly one parent"):
        numbers.square(ctx(**parents(a=1, b=2)))


def test_sum_and_product_of_the_parents() -> None:
    assert numbers.sum_values(ctx(**parents(a=2, b=3, c=-4))) == {"value": 1}
    assert numbers.product(ctx(**parents(a=2, b=3, c=-4))) == {"value": -24}
    assert call("examples::sum", ctx(context={"value": 5})) == {"value": 5}
    assert call("examples::product", ctx(context={"value": 5})) == {"value": 5}


def test_the_example_workflows_compute_what_their_templates_say() -> None:
    # linear_workflow.yaml: {"value": 6} squared four times is 6^16.
    value = numbers.square(ctx(context={"value": 6}))["value"]
    for step in ("linear_step_2", "linear_step_3", "linear_step_4"):
        value = numbers.square(ctx(step_name=step, **parents(prev=value)))["value"]
    assert value == 6**16 == 2821109907456
    # mixed_dag_workflow.yaml: {"value": 3} ends with 13284.
    init = numbers.square(ctx(context={"value": 3}))["value"]
    left = numbers.square(ctx(**parents(dag_init=init)))["value"]
    right = numbers.square(ctx(**parents(dag_init=init)))["value"]
    validate = numbers.square(ctx(**parents(dag_process_left=left)))["value"]
    transform = numbers.sum_values(ctx(**parents(dag_process_left=left, dag_process_right=right)))[
        "value"
    ]
    analyze = numbers.square(ctx(**parents(dag_process_right=right)))["value"]
    final = numbers.sum_values(
        ctx(**parents(dag_validate=validate, dag_transform=transform, dag_analyze=analyze))
    )
    assert final == {"value": 13284}


def test_overflowing_64_bits_fails_permanently() -> None:
    assert numbers.square(ctx(context={"value": 3037000499})) == {"value": 3037000499**2}
    message = "step `linear_step_4` overflowed a 64-bit integer"
    with pytest.raises(PermanentError, match=re.escape(message)) as err:
        numbers.square(ctx(step_name="linear_step_4", context={"value": 3037000500}))
    assert not err.value.retryable
    with pytest.raises(PermanentError, match="overflowed a 64-bit integer"):
        numbers.product(ctx(**parents(a=2**62, b=2)))
    with pytest.raises(PermanentError, match="overflowed a 64-bit integer"):
        numbers.sum_values(ctx(**parents(a=I64_MIN, b=-1)))
    # Checked at every step, as Rust's `try_fold(checked_add)`: the final sum
    # would fit, but a partial one does not.
    with pytest.raises(PermanentError, match="overflowed a 64-bit integer"):
        numbers.sum_values(ctx(**parents(a=I64_MAX, b=1, c=-1)))
    assert numbers.sum_values(ctx(**parents(a=I64_MAX, b=-1, c=1))) == {"value": I64_MAX}


@pytest.mark.parametrize("value", [2.0, True, "6", None, 2**63])
def test_a_root_value_must_be_a_64_bit_integer(value: Any) -> None:
    with pytest.raises(PermanentError, match="context.value must be an integer"):
        numbers.square(ctx(context={"value": value}))


def test_a_parent_must_return_an_integer_value() -> None:
    context = ctx(direct_parents=["a"], dependency_results={"a": {"value": 1.5}})
    with pytest.raises(PermanentError, match="parent `a` did not return an integer value"):
        numbers.sum_values(context)


# -- ecommerce ------------------------------------------------------------------


def order(token: str = "tok_ok", **changes: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "customer": {"id": 7, "email": "ada@example.com"},
        "items": [
            {"sku": "BOOK-42", "quantity": 2, "unit_price_cents": 1999},
            {"sku": "MUG-7", "quantity": 1, "unit_price_cents": 1250},
        ],
        "payment": {"method": "card", "token": token},
        "shipping": {"address": "1 Infinite Loop", "method": "express"},
    }
    context.update(changes)
    return context


PAID_PARENTS = {
    "validate_order": {"order_total_cents": 5248},
    "reserve_inventory": {"reservation_id": "res_x"},
}


def payment_ctx(token: str, attempt: int = 1, **fields: Any) -> StepContext:
    fields.setdefault("initialization", {"gateway": "sandbox"})
    return ctx(
        context=order(token),
        attempt=attempt,
        direct_parents=["reserve_inventory"],
        dependency_results=PAID_PARENTS,
        **fields,
    )


def test_validate_order_computes_the_totals() -> None:
    assert ecommerce.validate_order(ctx(context=order())) == {
        "customer_id": 7,
        "customer_email": "ada@example.com",
        "item_count": 3,
        "order_total_cents": 2 * 1999 + 1250,
    }


def test_validate_order_rejects_bad_quantities_and_overflow() -> None:
    bad = [{"sku": "A", "quantity": 0, "unit_price_cents": 5}]
    with pytest.raises(PermanentError, match="item A has quantity 0"):
        ecommerce.validate_order(ctx(context=order(items=bad)))
    huge = [{"sku": "A", "quantity": 2**40, "unit_price_cents": 2**40}]
    with pytest.raises(PermanentError, match="order total overflows"):
        ecommerce.validate_order(ctx(context=order(items=huge)))


def test_a_context_that_is_not_an_order_fails_permanently() -> None:
    context = order()
    del context["payment"]
    for handler in (ecommerce.validate_order, ecommerce.reserve_inventory):
        with pytest.raises(PermanentError, match="invalid task context: missing 'payment'"):
            handler(ctx(context=context))
    with pytest.raises(
        PermanentError, match="invalid task context: `quantity` must be a 64-bit integer"
    ):
        ecommerce.validate_order(
            ctx(context=order(items=[{"sku": "A", "quantity": "2", "unit_price_cents": 1}]))
        )


def test_reserve_inventory_derives_a_stable_reservation() -> None:
    result = ecommerce.reserve_inventory(ctx(context=order(), initialization={"warehouse": "east"}))
    assert result == {
        "reservation_id": "res_a1b2c3d4e5f6",
        "warehouse": "east",
        "skus": ["BOOK-42", "MUG-7"],
    }
    assert ecommerce.reserve_inventory(ctx(context=order()))["warehouse"] == "main"


def test_an_out_of_stock_sku_fails_permanently_with_its_code() -> None:
    items = [
        {"sku": "OK-1", "quantity": 1, "unit_price_cents": 1},
        {"sku": "OOS-9", "quantity": 1, "unit_price_cents": 1},
    ]
    with pytest.raises(PermanentError, match="OOS-9 is out of stock") as err:
        ecommerce.reserve_inventory(ctx(context=order(items=items)))
    assert err.value.code == "out_of_stock"
    assert not err.value.retryable


def test_process_payment_charges_the_order_total() -> None:
    result = asyncio.run(ecommerce.process_payment(payment_ctx("tok_ok")))
    assert result == {
        "payment_id": "pay_a1b2c3d4e5f6",
        "method": "card",
        "amount_charged_cents": 5248,
        "gateway": "sandbox",
    }
    assert (
        call("ecommerce::process_payment", payment_ctx("tok_ok", initialization={}))["gateway"]
        is None
    )


def test_a_declined_card_fails_permanently() -> None:
    for attempt in (1, 2):
        with pytest.raises(PermanentError, match="card declined") as err:
            asyncio.run(ecommerce.process_payment(payment_ctx("tok_decline", attempt)))
        assert err.value.code == "card_declined"
        assert not err.value.retryable


def test_a_flaky_gateway_fails_the_first_attempt_only() -> None:
    with pytest.raises(RetryableError, match=re.escape("payment gateway unavailable (503)")) as err:
        asyncio.run(ecommerce.process_payment(payment_ctx("tok_flaky", attempt=1)))
    assert err.value.retryable
    assert err.value.retry_after == 0.05
    assert err.value.code == "gateway_unavailable"
    second = asyncio.run(ecommerce.process_payment(payment_ctx("tok_flaky", attempt=2)))
    assert second["amount_charged_cents"] == 5248


def test_process_payment_needs_its_ancestors_results() -> None:
    context = ctx(context=order(), dependency_results={"validate_order": {"order_total_cents": 1}})
    with pytest.raises(PermanentError, match="`reserve_inventory` result has no `reservation_id`"):
        asyncio.run(ecommerce.process_payment(context))


def test_ship_order_books_by_shipping_method() -> None:
    paid = {"process_payment": {"payment_id": "pay_x"}}
    express = asyncio.run(ecommerce.ship_order(ctx(context=order(), dependency_results=paid)))
    assert express == {
        "tracking_number": "TRKA1B2C3D4E5F6",
        "address": "1 Infinite Loop",
        "shipping_method": "express",
        "estimated_days": 1,
    }
    standard = order(shipping={"address": "2 Main St", "method": "standard"})
    assert (
        call("ecommerce::ship_order", ctx(context=standard, dependency_results=paid))[
            "estimated_days"
        ]
        == 5
    )
    with pytest.raises(PermanentError, match="`process_payment` result has no `payment_id`"):
        asyncio.run(ecommerce.ship_order(ctx(context=order())))


# -- approvals ------------------------------------------------------------------

ROUTING_INIT = {"auto_approve_below": 1000, "finance_review_from": 5000}


def request(amount: int, requester: str = "ada") -> dict[str, Any]:
    return {"amount": amount, "requester": requester, "purpose": "travel"}


def routing(amount: int, initialization: dict[str, Any] | None = None) -> Success:
    context = ctx(
        initialization=ROUTING_INIT if initialization is None else initialization,
        direct_parents=["validate_request"],
        dependency_results={"validate_request": request(amount)},
    )
    result = approvals.RoutingDecision().call(context)
    assert isinstance(result, Success)
    return result


def test_validate_request() -> None:
    assert approvals.ValidateRequest().call(ctx(context=request(500))) == request(500)
    with pytest.raises(PermanentError, match="amount must not be negative"):
        approvals.ValidateRequest().call(ctx(context=request(-1)))
    with pytest.raises(PermanentError, match="requester is required"):
        approvals.ValidateRequest().call(ctx(context=request(5, requester="  ")))
    with pytest.raises(PermanentError, match="invalid task context: missing 'purpose'"):
        approvals.ValidateRequest().call(ctx(context={"amount": 5, "requester": "ada"}))


@pytest.mark.parametrize(
    "amount, steps",
    [
        (500, ["auto_approve"]),
        (3000, ["manager_approval"]),
        (10000, ["manager_approval", "finance_review"]),
        (999, ["auto_approve"]),
        (1000, ["manager_approval"]),
        (4999, ["manager_approval"]),
        (5000, ["manager_approval", "finance_review"]),
    ],
)
def test_routing_creates_exactly_the_approvals_the_amount_needs(
    amount: int, steps: list[str]
) -> None:
    decision = routing(amount)
    assert decision.control == {"type": "decision", "outcome": "create_steps", "steps": steps}
    assert decision.result == {"amount": amount, "route": steps}


def test_routing_thresholds_come_from_the_initialization() -> None:
    assert routing(3000, {"auto_approve_below": 5000}).control["steps"] == ["auto_approve"]
    assert routing(3000, {"finance_review_from": 2000}).control["steps"] == [
        "manager_approval",
        "finance_review",
    ]
    with pytest.raises(PermanentError, match="invalid handler initialization"):
        routing(3000, {"auto_approve_below": "lots"})


def test_each_approval_records_who_approved() -> None:
    validated = {"validate_request": request(3000)}
    for handler, by in (
        (approvals.AutoApprove, "policy"),
        (approvals.ManagerApproval, "manager"),
        (approvals.FinanceReview, "finance"),
    ):
        result = handler().call(
            ctx(direct_parents=["routing_decision"], dependency_results=validated)
        )
        assert result == {"approved": True, "approved_by": by, "amount": 3000}
    with pytest.raises(PermanentError, match="validate_request gave no amount"):
        approvals.ManagerApproval().call(ctx())


def test_finalize_reports_the_approvals_that_ran() -> None:
    def finalize(ran: dict[str, Any]) -> dict[str, Any]:
        results = {"validate_request": request(10000), "routing_decision": {}, **ran}
        return approvals.FinalizeApproval().call(
            ctx(direct_parents=list(ran), dependency_results=results)
        )

    approval = {"approved": True, "approved_by": "x", "amount": 10000}
    both = finalize({"finance_review": approval, "manager_approval": approval})
    assert both == {
        "approved": True,
        "approvals": ["manager_approval", "finance_review"],
        "amount": 10000,
    }
    one_denied = finalize({"manager_approval": approval, "finance_review": {"approved": False}})
    assert one_denied["approved"] is False
    with pytest.raises(PermanentError, match="no approval step ran"):
        finalize({})


def test_the_approval_workflow_end_to_end_in_memory() -> None:
    for amount, expected in (
        (500, ["auto_approve"]),
        (3000, ["manager_approval"]),
        (10000, ["manager_approval", "finance_review"]),
    ):
        results: dict[str, Any] = {}
        results["validate_request"] = call(
            "approvals::validate_request", ctx(context=request(amount))
        )
        decision = call(
            "approvals::routing_decision",
            ctx(
                initialization=ROUTING_INIT,
                direct_parents=["validate_request"],
                dependency_results=results,
            ),
        )
        results["routing_decision"] = decision.result
        for step in decision.control["steps"]:
            results[step] = call(
                f"approvals::{step}",
                ctx(direct_parents=["routing_decision"], dependency_results=dict(results)),
            )
        final = call(
            "approvals::finalize_approval",
            ctx(direct_parents=decision.control["steps"], dependency_results=results),
        )
        assert final == {"approved": True, "approvals": expected, "amount": amount}


# -- csv ------------------------------------------------------------------------

CSV_BATCH_CONFIG = {
    "worker_template": "process_csv_batch",
    "parallelism": 4,
    "batch_size": 200,
    "failure_strategy": "fail_fast",
}


def file_totals(first: int = 1, last: int = 1000) -> dict[str, int]:
    """Totals of data rows ``first..=last``, computed independently."""
    with open(SAMPLE_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))[first - 1 : last]
    return {
        "rows_processed": len(rows),
        "total_quantity": sum(int(r["quantity"]) for r in rows),
        "total_value_cents": sum(int(r["quantity"]) * int(r["unit_price_cents"]) for r in rows),
    }


def batch_ctx(
    start: int,
    end: int,
    batch_id: str = "001",
    attempt: int = 1,
    checkpoint: dict[str, Any] | None = None,
    every: int | None = 50,
    **context: Any,
) -> StepContext:
    return ctx(
        step_name=f"process_csv_batch_{batch_id}",
        context={"csv_file_path": str(SAMPLE_CSV), **context},
        initialization={} if every is None else {"checkpoint_every": every},
        attempt=attempt,
        batch_cursor={
            "batch_id": batch_id,
            "start_cursor": start,
            "end_cursor": end,
            "batch_size": end - start,
        },
        checkpoint=checkpoint,
        direct_parents=["analyze_csv"],
        dependency_results={"analyze_csv": {"csv_file_path": str(SAMPLE_CSV), "total_rows": 1000}},
    )


def test_the_sample_file_has_a_thousand_well_formed_rows() -> None:
    rows = csv_batch.read_rows(str(SAMPLE_CSV))
    assert len(rows) == 1000
    for i, row in enumerate(rows):
        csv_batch.row_totals(row, i + 1)
    assert csv_batch.SAMPLE_CSV == SAMPLE_CSV


def test_analyze_plans_batches_of_200_over_the_file() -> None:
    plan = csv_batch.AnalyzeCsv().call(
        ctx(context={"csv_file_path": str(SAMPLE_CSV)}, batch_config=CSV_BATCH_CONFIG)
    )
    assert plan.result == {"csv_file_path": str(SAMPLE_CSV), "total_rows": 1000}
    assert plan.control == {
        "type": "batches",
        "outcome": "create_batches",
        "worker_count": 5,
        "cursor_configs": [
            {
                "batch_id": f"{i + 1:03}",
                "start_cursor": i * 200,
                "end_cursor": (i + 1) * 200,
                "batch_size": 200,
            }
            for i in range(5)
        ],
    }
    # Without a batch config, 100 rows a batch.
    unconfigured = call("csv::analyze_csv", ctx(context={"csv_file_path": str(SAMPLE_CSV)}))
    assert unconfigured.control["worker_count"] == 10


def test_plan_covers_the_rows_once() -> None:
    bounds = [(c.start_cursor, c.end_cursor) for c in csv_batch.plan(1000, 300)]
    assert bounds == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert csv_batch.plan(1000, 300)[3].batch_id == "004"
    assert csv_batch.plan(0, 100) == []
    assert len(csv_batch.plan(3, 0)) == 3, "a batch size below 1 counts as 1"


def test_a_file_without_rows_plans_no_batches(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("sku,name,category,quantity,unit_price_cents\n\n")
    plan = csv_batch.AnalyzeCsv().call(
        ctx(context={"csv_file_path": str(empty)}, batch_config=CSV_BATCH_CONFIG)
    )
    assert plan.control == {"type": "batches", "outcome": "no_batches"}
    assert plan.result == {"csv_file_path": str(empty), "total_rows": 0}


def test_a_missing_file_fails_permanently(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="cannot read"):
        csv_batch.AnalyzeCsv().call(ctx(context={"csv_file_path": str(tmp_path / "nope.csv")}))
    with pytest.raises(PermanentError, match="invalid task context: missing 'csv_file_path'"):
        csv_batch.AnalyzeCsv().call(ctx(context={}))


def test_a_batch_worker_totals_its_range_and_checkpoints_every_n_rows() -> None:
    context = batch_ctx(200, 400, batch_id="002")
    result = csv_batch.ProcessCsvBatch().call(context)
    assert result == {
        "batch_id": "002",
        "first_row": 201,
        "last_row": 400,
        "resumed_from_row": 201,
        **file_totals(201, 400),
    }
    # Every 50 rows, but not at the end of the range.
    saved = context.saved_checkpoints
    assert [c.cursor for c in saved] == [250, 300, 350]
    assert [c.items_processed for c in saved] == [50, 100, 150]
    first_50 = file_totals(201, 250)
    assert saved[0].partial_results == {
        "rows": 50,
        "quantity": first_50["total_quantity"],
        "value_cents": first_50["total_value_cents"],
    }


def test_checkpoint_every_defaults_to_100() -> None:
    context = batch_ctx(0, 250, every=None)
    csv_batch.ProcessCsvBatch().call(context)
    assert [c.cursor for c in context.saved_checkpoints] == [100, 200]


def test_the_batches_add_up_to_the_file() -> None:
    plan = csv_batch.AnalyzeCsv().call(
        ctx(context={"csv_file_path": str(SAMPLE_CSV)}, batch_config=CSV_BATCH_CONFIG)
    )
    results = {"analyze_csv": plan.result}
    for cursor in plan.control["cursor_configs"]:
        name = f"process_csv_batch_{cursor['batch_id']}"
        results[name] = call(
            "csv::process_csv_batch",
            batch_ctx(cursor["start_cursor"], cursor["end_cursor"], cursor["batch_id"]),
        )
    names = sorted(n for n in results if n.startswith("process_csv_batch_"))
    total = call("csv::aggregate_results", ctx(direct_parents=names, dependency_results=results))
    expected = file_totals()
    assert total == {
        "batches": 5,
        "failed_batches": [],
        "total_rows": 1000,
        "total_quantity": expected["total_quantity"],
        "total_value_cents": expected["total_value_cents"],
    }


def test_a_resumed_batch_counts_no_row_twice() -> None:
    uninterrupted = csv_batch.ProcessCsvBatch().call(batch_ctx(0, 200))
    first = batch_ctx(0, 200)
    csv_batch.ProcessCsvBatch().call(first)
    for checkpoint in first.saved_checkpoints:
        resumed = csv_batch.ProcessCsvBatch().call(
            batch_ctx(0, 200, attempt=2, checkpoint=vars(checkpoint).copy())
        )
        assert resumed["resumed_from_row"] == checkpoint.cursor + 1
        for field in ("rows_processed", "total_quantity", "total_value_cents"):
            assert resumed[field] == uninterrupted[field], (checkpoint.cursor, field)


def test_fail_on_row_fails_the_first_attempt_after_saving_checkpoints() -> None:
    # Batch 001 covers rows 1–200 and checkpoints every 50 rows: the first
    # attempt saves checkpoints at rows 50 and 100, then fails at row 130.
    first = batch_ctx(0, 200, fail_on_row=130)
    with pytest.raises(RetryableError, match="simulated crash at row 130") as err:
        csv_batch.ProcessCsvBatch().call(first)
    assert err.value.retryable
    assert [c.cursor for c in first.saved_checkpoints] == [50, 100]
    last = first.saved_checkpoints[-1]
    retry = batch_ctx(
        0,
        200,
        attempt=2,
        fail_on_row=130,
        checkpoint={
            "cursor": last.cursor,
            "items_processed": last.items_processed,
            "partial_results": last.partial_results,
        },
    )
    result = csv_batch.ProcessCsvBatch().call(retry)
    assert result["resumed_from_row"] == 101
    assert result == {
        "batch_id": "001",
        "first_row": 1,
        "last_row": 200,
        "resumed_from_row": 101,
        **file_totals(1, 200),
    }
    assert [c.cursor for c in retry.saved_checkpoints] == [150]
    # Other batches never reach row 130.
    assert (
        csv_batch.ProcessCsvBatch().call(batch_ctx(200, 400, "002", fail_on_row=130))[
            "rows_processed"
        ]
        == 200
    )


def test_fail_batch_fails_that_batch_permanently_and_convergence_sees_it() -> None:
    with pytest.raises(PermanentError, match="batch 002 is marked to fail"):
        csv_batch.ProcessCsvBatch().call(batch_ctx(200, 400, "002", attempt=3, fail_batch="002"))
    ok = csv_batch.ProcessCsvBatch().call(batch_ctx(0, 200, "001", fail_batch="002"))
    total = csv_batch.AggregateResults().call(
        ctx(
            direct_parents=["process_csv_batch_001"],
            dependency_results={"process_csv_batch_001": ok, "analyze_csv": {"total_rows": 1000}},
            failed_parents={"process_csv_batch_002": {"message": "batch 002 is marked to fail"}},
        )
    )
    assert total["batches"] == 1
    assert total["failed_batches"] == ["process_csv_batch_002"]
    assert total["total_rows"] == 200
    assert total["total_value_cents"] == file_totals(1, 200)["total_value_cents"]


def test_bad_cursors_and_checkpoints_fail_permanently() -> None:
    with pytest.raises(PermanentError, match="batch cursors must be row indexes"):
        csv_batch.ProcessCsvBatch().call(batch_ctx(-1, 200))
    with pytest.raises(PermanentError, match="row 1001 is past the end"):
        csv_batch.ProcessCsvBatch().call(batch_ctx(900, 1100))
    with pytest.raises(PermanentError, match="checkpoint does not parse"):
        csv_batch.ProcessCsvBatch().call(
            batch_ctx(
                0,
                200,
                attempt=2,
                checkpoint={"cursor": 50, "items_processed": 50, "partial_results": {"rows": 50}},
            )
        )
    with pytest.raises(PermanentError, match="has no batch cursor"):
        csv_batch.ProcessCsvBatch().call(ctx(context={"csv_file_path": str(SAMPLE_CSV)}))


def test_a_malformed_row_fails_permanently(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,name,category,quantity,unit_price_cents\nA,a,c,1,2\nB,b,c,1_000,2\n")
    context = ctx(
        context={"csv_file_path": str(bad)},
        batch_cursor={"batch_id": "001", "start_cursor": 0, "end_cursor": 2, "batch_size": 2},
    )
    with pytest.raises(PermanentError, match="row 2: `quantity` is not an integer"):
        csv_batch.ProcessCsvBatch().call(context)


# -- parity ---------------------------------------------------------------------


def parity_batch_config(worker: str) -> dict[str, Any]:
    return {
        "worker_template": worker,
        "parallelism": 3,
        "batch_size": 5,
        "failure_strategy": "fail_fast",
    }


def run_parity(values: list[int]) -> dict[str, Any]:
    """Runs the diamond_decision_batch workflow in memory; every result."""
    results: dict[str, Any] = {}
    results["diamond_start"] = call("parity::load_numbers", ctx(context={"numbers": values}))
    for step, callable in (
        ("branch_evens", "parity::select_evens"),
        ("branch_odds", "parity::select_odds"),
    ):
        results[step] = call(
            callable, ctx(direct_parents=["diamond_start"], dependency_results=dict(results))
        )
    decision = call(
        "parity::choose_dominant",
        ctx(direct_parents=["branch_evens", "branch_odds"], dependency_results=dict(results)),
    )
    results["routing_decision"] = decision.result
    (analyzer,) = decision.control["steps"]
    source, worker = {
        "even_batch_analyzer": ("branch_evens", "even_batch_worker"),
        "odd_batch_analyzer": ("branch_odds", "odd_batch_worker"),
    }[analyzer]
    plan = call(
        "parity::plan_batches",
        ctx(
            initialization={"source": source},
            batch_config=parity_batch_config(worker),
            direct_parents=["routing_decision"],
            dependency_results=dict(results),
        ),
    )
    results[analyzer] = plan.result
    workers = []
    for cursor in plan.control.get("cursor_configs", []):
        name = f"{worker}_{cursor['batch_id']}"
        results[name] = call(
            "parity::process_batch",
            ctx(batch_cursor=cursor, direct_parents=[analyzer], dependency_results=dict(results)),
        )
        workers.append(name)
    results["final_convergence"] = call(
        "parity::combine_batches", ctx(direct_parents=workers, dependency_results=dict(results))
    )
    results["_plan"] = plan
    return results


def test_the_diamond_splits_by_parity() -> None:
    assert parity.load_numbers(ctx(context={"numbers": [1, 2, -3, -4]})) == {
        "numbers": [1, 2, -3, -4]
    }
    start = {"diamond_start": {"numbers": [1, 2, -3, -4, 0]}}
    assert parity.select_evens(ctx(dependency_results=start)) == {"numbers": [2, -4, 0], "count": 3}
    assert parity.select_odds(ctx(dependency_results=start)) == {"numbers": [1, -3], "count": 2}
    with pytest.raises(PermanentError, match="`the task context` gave a non-integer"):
        parity.load_numbers(ctx(context={"numbers": [1, 2.5]}))
    with pytest.raises(PermanentError, match="`diamond_start` gave no numbers"):
        parity.select_evens(ctx())


def test_the_decision_picks_the_dominant_parity_evens_on_a_tie() -> None:
    def decide(evens: int, odds: int) -> Success:
        return parity.choose_dominant(
            ctx(
                dependency_results={
                    "branch_evens": {"numbers": [2] * evens, "count": evens},
                    "branch_odds": {"numbers": [1] * odds, "count": odds},
                }
            )
        )

    assert decide(3, 2).control["steps"] == ["even_batch_analyzer"]
    assert decide(2, 2).control["steps"] == ["even_batch_analyzer"]
    odd = decide(1, 7)
    assert odd.control == {
        "type": "decision",
        "outcome": "create_steps",
        "steps": ["odd_batch_analyzer"],
    }
    assert odd.result == {"dominant": "odd", "even_count": 1, "odd_count": 7}


def test_plan_batches_numbers_batches_from_zero() -> None:
    evens = [2 * n for n in range(1, 13)]
    plan = parity.plan_batches(
        ctx(
            initialization={"source": "branch_evens"},
            batch_config=parity_batch_config("even_batch_worker"),
            dependency_results={"branch_evens": {"numbers": evens, "count": 12}},
        )
    )
    assert plan.result == {"source": "branch_evens", "numbers": evens}
    assert plan.control["worker_count"] == 3
    assert plan.control["cursor_configs"] == [
        {"batch_id": "0", "start_cursor": 0, "end_cursor": 5, "batch_size": 5},
        {"batch_id": "1", "start_cursor": 5, "end_cursor": 10, "batch_size": 5},
        {"batch_id": "2", "start_cursor": 10, "end_cursor": 12, "batch_size": 5},
    ]
    empty = parity.plan_batches(
        ctx(
            initialization={"source": "branch_odds"},
            dependency_results={"branch_odds": {"numbers": []}},
        )
    )
    assert empty.control == {"type": "batches", "outcome": "no_batches"}
    with pytest.raises(PermanentError, match="invalid handler initialization: missing 'source'"):
        parity.plan_batches(ctx(initialization={}))


def test_a_parity_batch_worker_sums_its_slice() -> None:
    planned = {"even_batch_analyzer": {"source": "branch_evens", "numbers": [2, 4, 6, 8, 10, 12]}}
    cursor = {"batch_id": "1", "start_cursor": 5, "end_cursor": 6, "batch_size": 5}
    result = parity.process_batch(
        ctx(batch_cursor=cursor, direct_parents=["even_batch_analyzer"], dependency_results=planned)
    )
    assert result == {"batch_id": "1", "count": 1, "sum": 12, "sum_of_squares": 144}
    outside = dict(cursor, end_cursor=7)
    with pytest.raises(PermanentError, match="cursor outside the numbers"):
        parity.process_batch(
            ctx(
                batch_cursor=outside,
                direct_parents=["even_batch_analyzer"],
                dependency_results=planned,
            )
        )
    with pytest.raises(PermanentError, match="a batch worker needs its analyzer"):
        parity.process_batch(ctx(batch_cursor=cursor))
    big = {"a": {"numbers": [3037000500]}}
    with pytest.raises(PermanentError, match="sum of squares overflows"):
        parity.process_batch(
            ctx(
                batch_cursor=dict(cursor, start_cursor=0, end_cursor=1),
                direct_parents=["a"],
                dependency_results=big,
            )
        )


def test_the_parity_workflow_follows_the_dominant_parity() -> None:
    values = [2, 4, 6, 8, 10, 12, 14, 1, 3, 5]
    evens = [n for n in values if n % 2 == 0]
    results = run_parity(values)
    assert "even_batch_worker_0" in results and "even_batch_worker_1" in results
    assert results["final_convergence"] == {
        "dominant": "even",
        "batches": 2,
        "count": len(evens),
        "sum": sum(evens),
        "sum_of_squares": sum(n * n for n in evens),
    }
    odds = [1, 3, 5, 7, 9, 11, 13, 2, 4]
    final = run_parity(odds)["final_convergence"]
    assert final["dominant"] == "odd"
    assert final["count"] == 7
    assert final["sum_of_squares"] == sum(n * n for n in odds if n % 2)
