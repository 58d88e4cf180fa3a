"""The example workflows end to end, with the Python worker as the only
worker: a real tasker-server on a fresh database, the handlers of
``examples/`` running on the Rust core through the dispatch surface."""

from __future__ import annotations

import csv
from typing import Any

import tasker

from .conftest import SAMPLE_CSV
from .support import steps_by_name, unique


def run(client: tasker.Client, namespace: str, name: str, context: Any) -> dict[str, Any]:
    task = client.create_task(namespace, name, context)
    return client.wait(task["task_uuid"], timeout=60)


def test_linear_squares_six_four_times(client: tasker.Client, worker: tasker.Worker) -> None:
    done = run(client, "linear_workflow", "mathematical_sequence", {"value": 6})
    assert done["state"] == "complete"
    steps = steps_by_name(done)
    assert [steps[f"linear_step_{i}"]["results"]["value"] for i in range(1, 5)] == [
        6**2,
        6**4,
        6**8,
        6**16,
    ]
    assert all(step["attempts"] == 1 for step in done["steps"])


def test_diamond_joins_both_branches(client: tasker.Client, worker: tasker.Worker) -> None:
    done = run(client, "diamond_workflow", "parallel_computation", {"value": 6})
    assert done["state"] == "complete"
    steps = steps_by_name(done)
    assert steps["diamond_start"]["results"] == {"value": 36}
    assert steps["diamond_branch_b"]["results"] == {"value": 1296}
    assert steps["diamond_branch_c"]["results"] == {"value": 1296}
    assert steps["diamond_end"]["results"] == {"value": 1296 * 1296}


def order(token: str) -> dict[str, Any]:
    return {
        "customer": {"id": 7, "email": "ada@example.com"},
        "items": [
            {"sku": "BOOK-42", "quantity": 2, "unit_price_cents": 1999},
            {"sku": "MUG-7", "quantity": 1, "unit_price_cents": 1250},
        ],
        "payment": {"method": "card", "token": token},
        "shipping": {"address": "1 Infinite Loop", "method": "express"},
        "order_ref": unique(),
    }


def test_order_fulfillment_retries_a_flaky_gateway(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    done = run(client, "ecommerce", "order_fulfillment", order("tok_flaky"))
    assert done["state"] == "complete", done
    steps = steps_by_name(done)
    assert steps["validate_order"]["results"]["order_total_cents"] == 2 * 1999 + 1250
    payment = steps["process_payment"]
    assert payment["attempts"] == 2, "the gateway failed once"
    assert payment["results"]["amount_charged_cents"] == 2 * 1999 + 1250
    assert steps["ship_order"]["results"]["tracking_number"].startswith("TRK")
    assert steps["ship_order"]["results"]["estimated_days"] == 1


def test_order_fulfillment_stops_at_a_declined_card(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    done = run(client, "ecommerce", "order_fulfillment", order("tok_decline"))
    assert done["state"] == "error"
    steps = steps_by_name(done)
    payment = steps["process_payment"]
    assert payment["state"] == "error"
    assert payment["last_error"]["code"] == "card_declined"
    assert payment["last_error"]["retryable"] is False
    assert steps["ship_order"]["state"] == "pending", "dependents of a failure never run"


def test_conditional_approval_creates_exactly_the_branches_it_chose(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    expected = {
        500: {"auto_approve"},
        3000: {"manager_approval"},
        10000: {"manager_approval", "finance_review"},
    }
    for amount, branches in expected.items():
        done = run(
            client,
            "conditional_approval",
            "approval_routing",
            {"amount": amount, "requester": "ada", "purpose": f"test {unique()}"},
        )
        assert done["state"] == "complete", (amount, done)
        steps = steps_by_name(done)
        assert (
            set(steps) == {"validate_request", "routing_decision", "finalize_approval"} | branches
        )
        final = steps["finalize_approval"]["results"]
        assert final["approved"] is True
        assert set(final["approvals"]) == branches
        assert final["amount"] == amount


def csv_totals() -> dict[str, int]:
    with open(SAMPLE_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "rows": len(rows),
        "quantity": sum(int(r["quantity"]) for r in rows),
        "value_cents": sum(int(r["quantity"]) * int(r["unit_price_cents"]) for r in rows),
    }


def test_csv_batches_resume_from_their_checkpoint_and_count_no_row_twice(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    # Row 275 lies in the second batch (rows 201–400); its first attempt
    # checkpoints at row 250, then fails at 275; the retry resumes at 251.
    done = run(
        client,
        "csv_processing",
        "csv_product_inventory",
        {"csv_file_path": str(SAMPLE_CSV), "fail_on_row": 275},
    )
    assert done["state"] == "complete", done
    steps = steps_by_name(done)
    batches = {name: s for name, s in steps.items() if name.startswith("process_csv_batch_")}
    assert sorted(batches) == [f"process_csv_batch_{i:03}" for i in range(1, 6)]
    second = batches["process_csv_batch_002"]
    assert second["attempts"] == 2
    assert second["results"]["resumed_from_row"] == 251
    assert second["results"]["rows_processed"] == 200
    for name, batch in batches.items():
        if name != "process_csv_batch_002":
            assert batch["attempts"] == 1, name
    expected = csv_totals()
    total = steps["aggregate_results"]["results"]
    assert total["batches"] == 5
    assert total["total_rows"] == expected["rows"] == 1000
    assert total["total_quantity"] == expected["quantity"]
    assert total["total_value_cents"] == expected["value_cents"]


def test_diamond_decision_and_batches_square_the_dominant_parity(
    client: tasker.Client, worker: tasker.Worker
) -> None:
    numbers = [2, 4, 6, 8, 10, 12, 14, 1, 3, 5]
    done = run(client, "diamond_decision_batch", "parity_analysis", {"numbers": numbers})
    assert done["state"] == "complete", done
    steps = steps_by_name(done)
    evens = [n for n in numbers if n % 2 == 0]
    final = steps["final_convergence"]["results"]
    assert final["dominant"] == "even"
    assert final["sum_of_squares"] == sum(n * n for n in evens)
    assert final["count"] == len(evens)
    assert not any(name.startswith("odd_batch") for name in steps)


def test_rust_built_ins_and_python_handlers_share_one_worker(
    client: tasker.Client, start_worker: Any
) -> None:
    start_worker(include_builtins=True)
    done = run(client, "worker_mixed", "rust_and_python", {"value": 2})
    assert done["state"] == "complete", done
    steps = steps_by_name(done)
    assert steps["seed"]["results"] == {"value": 7}, "tasker::math ran in Rust"
    assert steps["square"]["results"] == {"value": 49}, "examples::square ran in Python"
