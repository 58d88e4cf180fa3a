# frozen_string_literal: true

require_relative "spec_helper"
require "time"

# Handlers run on a pool of Ruby threads up to the worker's concurrency, and
# the GVL is not held while Rust waits.
RSpec.describe "concurrency", :e2e do
  it "finishes eight half-second handlers together, not one after another" do
    start_worker(concurrency: 8)
    done = run_task("worker_faults", "sync_naps", {})
    expect(done["state"]).to eq("complete")
    expect(done["steps"].map { |s| s["results"] }.uniq).to eq([{ "slept" => 0.5 }])
    elapsed = Time.parse(done["completed_at"]) - Time.parse(done["created_at"])
    # One after the other they would take 4 s.
    expect(elapsed).to be < 2.0
  end
end
