# frozen_string_literal: true

require_relative "spec_helper"

# `tasker-bench compare` in smoke mode with the Ruby worker's no-op handler:
# the harness that measures the Ruby worker against Rust runs end to end and
# reports figures that make sense (no thresholds: this keeps the harness
# from rotting, it does not judge the system).
RSpec.describe "the comparison benchmark" do
  it "measures both workers" do
    bench = TaskerSpec.binary("tasker-bench", "tasker-bench", "TASKER_BENCH_BIN")
    worker = "#{RbConfig.ruby} #{File.join(TaskerSpec::RUBY_WORKER, 'exe', 'tasker-ruby-worker')} " \
             "--require #{File.join(TaskerSpec::RUBY_WORKER, 'bench', 'noop.rb')}"
    env = ENV.to_h.merge("DATABASE_URL" => TaskerSpec.admin_url).tap { |e| e.delete("TASKER_ENV") }
    out, err, status = Open3.capture3(env, bench, "--smoke", "--json", "--port", TaskerSpec.free_port.to_s,
                                      "compare", "--worker", worker)
    expect(status).to be_success, err
    figures = JSON.parse(out)
    expect(figures["rounds"].size).to eq(1)
    %w[rust foreign].each do |side|
      round = figures["rounds"][0][side]
      expect(round["throughput_steps"]).to be > 0
      expect(round["handler_call_ms_p50"]).to be > 0
      expect(round["handoff_ms_p50"]).to be > 0
    end
    expect(figures["rounds"][0]["foreign"]["worker"]).to eq(worker)
  end
end
