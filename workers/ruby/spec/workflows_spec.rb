# frozen_string_literal: true

require_relative "spec_helper"
require "csv"

# The example workflows end to end, with the Ruby worker as the only worker:
# a real tasker-server on a fresh database, the handlers of examples/ running
# on the Rust core through the dispatch surface.
RSpec.describe "example workflows", :e2e do
  def order(token)
    { "customer" => { "id" => 7, "email" => "ada@example.com" },
      "items" => [{ "sku" => "BOOK-42", "quantity" => 2, "unit_price_cents" => 1999 },
                  { "sku" => "MUG-7", "quantity" => 1, "unit_price_cents" => 1250 }],
      "payment" => { "method" => "card", "token" => token },
      "shipping" => { "address" => "1 Infinite Loop", "method" => "express" },
      "order_ref" => unique }
  end

  before { start_worker }

  it "squares 6 four times in a line" do
    done = run_task("linear_workflow", "mathematical_sequence", { "value" => 6 })
    expect(done["state"]).to eq("complete")
    steps = steps_by_name(done)
    expect((1..4).map { |i| steps["linear_step_#{i}"]["results"]["value"] }).to eq([6**2, 6**4, 6**8, 6**16])
    expect(done["steps"].map { |s| s["attempts"] }.uniq).to eq([1])
  end

  it "joins both branches of a diamond" do
    done = run_task("diamond_workflow", "parallel_computation", { "value" => 6 })
    steps = steps_by_name(done)
    expect(done["state"]).to eq("complete")
    expect(steps["diamond_start"]["results"]).to eq({ "value" => 36 })
    expect(steps["diamond_branch_b"]["results"]).to eq({ "value" => 1296 })
    expect(steps["diamond_end"]["results"]).to eq({ "value" => 1296 * 1296 })
  end

  it "fulfils an order, retrying a flaky payment gateway" do
    done = run_task("ecommerce", "order_fulfillment", order("tok_flaky"))
    expect(done["state"]).to eq("complete")
    steps = steps_by_name(done)
    expect(steps["validate_order"]["results"]["order_total_cents"]).to eq((2 * 1999) + 1250)
    expect(steps["process_payment"]["attempts"]).to eq(2)
    expect(steps["process_payment"]["results"]["amount_charged_cents"]).to eq((2 * 1999) + 1250)
    expect(steps["ship_order"]["results"]["tracking_number"]).to start_with("TRK")
  end

  it "stops an order at a declined card" do
    done = run_task("ecommerce", "order_fulfillment", order("tok_decline"))
    steps = steps_by_name(done)
    expect(done["state"]).to eq("error")
    expect(steps["process_payment"]["last_error"]).to include("code" => "card_declined", "retryable" => false)
    expect(steps["ship_order"]["state"]).to eq("pending")
  end

  it "creates exactly the approval branches the decision chose" do
    { 500 => %w[auto_approve], 3000 => %w[manager_approval],
      10_000 => %w[manager_approval finance_review] }.each do |amount, branches|
      done = run_task("conditional_approval", "approval_routing",
                      { "amount" => amount, "requester" => "ada", "purpose" => "test #{unique}" })
      expect(done["state"]).to eq("complete")
      steps = steps_by_name(done)
      expect(steps.keys).to match_array(%w[validate_request routing_decision finalize_approval] + branches)
      final = steps["finalize_approval"]["results"]
      expect(final["approved"]).to be(true)
      expect(final["approvals"]).to match_array(branches)
      expect(final["amount"]).to eq(amount)
    end
  end

  it "resumes a CSV batch from its checkpoint and counts no row twice" do
    # Row 275 lies in the second batch (rows 201–400): its first attempt
    # checkpoints at row 250, then fails at 275; the retry resumes at 251.
    done = run_task("csv_processing", "csv_product_inventory",
                    { "csv_file_path" => TaskerSpec::SAMPLE_CSV, "fail_on_row" => 275 })
    expect(done["state"]).to eq("complete")
    steps = steps_by_name(done)
    batches = steps.select { |name, _| name.start_with?("process_csv_batch_") }
    expect(batches.keys.sort).to eq((1..5).map { |i| format("process_csv_batch_%03d", i) })
    second = batches["process_csv_batch_002"]
    expect(second["attempts"]).to eq(2)
    expect(second["results"]).to include("resumed_from_row" => 251, "rows_processed" => 200)
    rows = CSV.read(TaskerSpec::SAMPLE_CSV, headers: true)
    total = steps["aggregate_results"]["results"]
    expect(total["total_rows"]).to eq(1000)
    expect(total["total_quantity"]).to eq(rows.sum { |r| r["quantity"].to_i })
    expect(total["total_value_cents"]).to eq(rows.sum { |r| r["quantity"].to_i * r["unit_price_cents"].to_i })
  end

  it "squares the dominant parity in batches after a diamond and a decision" do
    numbers = [2, 4, 6, 8, 10, 12, 14, 1, 3, 5]
    done = run_task("diamond_decision_batch", "parity_analysis", { "numbers" => numbers })
    expect(done["state"]).to eq("complete")
    final = steps_by_name(done)["final_convergence"]["results"]
    evens = numbers.select(&:even?)
    expect(final).to include("dominant" => "even", "sum_of_squares" => evens.sum { |n| n * n },
                             "count" => evens.size)
  end
end

RSpec.describe "a worker mixing Rust built-ins and Ruby handlers", :e2e do
  it "runs both in one task" do
    start_worker(include_builtins: true)
    done = run_task("worker_mixed", "rust_and_python", { "value" => 2 })
    steps = steps_by_name(done)
    expect(done["state"]).to eq("complete")
    expect(steps["seed"]["results"]).to eq({ "value" => 7 })
    expect(steps["square"]["results"]).to eq({ "value" => 49 })
  end
end
