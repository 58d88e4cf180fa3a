# frozen_string_literal: true

require_relative "spec_helper"
require "time"

# Failures end to end: retries with the handler's delay, permanent failures,
# unexpected exceptions, timeouts, and bad input — each a clear step error,
# never a crashed worker.
RSpec.describe "failures", :e2e do
  let!(:worker) { start_worker }

  def run_fault(name, context = {})
    run_task("worker_faults", name, context)
  end

  it "retries a RetryableError after the delay the handler asked for" do
    done = run_fault("retry_then_success")
    step = steps_by_name(done)["flaky"]
    expect(done["state"]).to eq("complete")
    expect(step["attempts"]).to eq(2)
    attempts = client.step_audit(done["task_uuid"], step["workflow_step_uuid"])["attempts"].sort_by { |a| a["attempt"] }
    expect(attempts[0]["error"]).to include("code" => "upstream_unavailable", "retry_after_ms" => 400)
    gap = Time.parse(attempts[1]["started_at"]) - Time.parse(attempts[0]["finished_at"])
    # The handler's 0.4 s wins over the policy's 2 s exponential backoff.
    expect(gap).to be_between(0.4, 1.9)
  end

  it "fails the task on a PermanentError and never runs its dependents" do
    done = run_fault("permanent_failure")
    steps = steps_by_name(done)
    expect(done["state"]).to eq("error")
    expect(steps["charge"]["attempts"]).to eq(1)
    expect(steps["charge"]["last_error"]).to include("code" => "card_declined", "message" => "card declined",
                                                     "details" => { "last4" => "4242" })
    expect(steps["ship"]).to include("state" => "pending", "attempts" => 0)
    expect(Faults::NEVER_RAN).to be_empty
  end

  it "records an unexpected exception with its class and backtrace" do
    done = run_fault("unexpected_exception", { "row" => 7 })
    error = steps_by_name(done)["parse"]["last_error"]
    expect(done["state"]).to eq("error")
    expect(error).to include("error_type" => "exception", "message" => "ArgumentError: bad row 7", "retryable" => true)
    expect(error["details"]["exception_type"]).to eq("ArgumentError")
    expect(error["details"]["backtrace"]).to include("faults.rb").and include("parse_row")
  end

  it "tells an overrunning handler through cancelled? and discards its late result" do
    done = run_fault("overrun")
    steps = steps_by_name(done)
    expect(done["state"]).to eq("error")
    %w[overrun async_overrun].each do |name|
      expect(steps[name]["last_error"]["error_type"]).to eq("timeout")
      expect(steps[name]["results"]).to be_nil
    end
    eventually("the handler to see cancelled?", timeout: 10) { !Faults::SAW_CANCEL.empty? }
    status = eventually("both late completions", timeout: 15) do
      s = worker.status
      s if s["totals"]["refused"] == 2
    end
    expect(status["slots"]).to eq({ "queued" => 0, "running" => 0, "ended" => 0 })
    expect(status["handlers_running"]).to eq(0)
  end

  it "fails a result that is not JSON as an invalid_result" do
    done = run_fault("bad_result")
    error = steps_by_name(done)["not_json"]["last_error"]
    expect(done["state"]).to eq("error")
    expect(error).to include("error_type" => "invalid_result", "retryable" => false)
    expect(error["message"]).to include("not JSON").and include("Time")
  end

  it "fails a decision that names an unknown step" do
    done = run_fault("bad_decision")
    steps = steps_by_name(done)
    expect(done["state"]).to eq("error")
    expect(steps["decide"]["last_error"]["message"]).to include("no_such_step")
    expect(steps).not_to have_key("branch")
  end
end

RSpec.describe "a callable nobody registered", :e2e do
  it "is a step error, and the worker goes on" do
    worker = start_worker(namespaces: %w[worker_unregistered linear_workflow])
    done = run_task("worker_unregistered", "unregistered")
    error = steps_by_name(done)["orphan"]["last_error"]
    expect(done["state"]).to eq("error")
    expect(error["error_type"]).to eq("handler_not_found")
    expect(error["message"]).to include("faults::nobody_registered")
    expect(run_task("linear_workflow", "mathematical_sequence", { "value" => 2 })["state"]).to eq("complete")
    expect(worker.status["state"]).to eq("running")
  end
end
