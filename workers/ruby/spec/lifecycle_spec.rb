# frozen_string_literal: true

require_relative "spec_helper"

# The worker's life: crashes, graceful shutdown on SIGTERM and Ctrl-C,
# Interrupt inside a handler, fork, and errors at start.
RSpec.describe "the worker's life", :e2e do
  it "has a killed worker's step finished by another" do
    doomed = spawn_worker("--concurrency", "2")
    doomed.wait_for("ruby worker running")
    task = client.create_task("worker_faults", "nap", { "first_attempt_seconds" => 60, "seconds" => 0 })
    step_in_state(task["task_uuid"], "nap", "in_progress")
    doomed.kill # SIGKILL mid-handler: no chance to clean up

    start_worker
    done = client.wait(task["task_uuid"], timeout: 60)
    nap = steps_by_name(done)["nap"]
    expect(done["state"]).to eq("complete")
    expect(nap["attempts"]).to eq(2)
    expect(nap["results"]).to include("attempt" => 2, "pid" => Process.pid)
  end

  %w[TERM INT].each do |signal|
    it "drains running handlers on SIG#{signal}" do
      process = spawn_worker("--concurrency", "2")
      process.wait_for("ruby worker running")
      task = client.create_task("worker_faults", "nap", { "seconds" => 1.5 })
      step_in_state(task["task_uuid"], "nap", "in_progress")
      process.signal(signal)
      expect(process.wait(timeout: 30)).to eq(0), process.output
      expect(process.output).to include("worker stopped")
      nap = steps_by_name(client.get_task(task["task_uuid"]))["nap"]
      # The handler finished and its result was written before the process left.
      expect(nap["attempts"]).to eq(1)
      expect(nap["results"]["napped"]).to eq(1.5)
      expect(client.wait(task["task_uuid"], timeout: 30)["state"]).to eq("complete")
    end
  end

  it "stops on Interrupt inside a handler and gives the step back" do
    process = spawn_worker
    process.wait_for("ruby worker running")
    task = client.create_task("worker_faults", "interrupt", {})
    expect(process.wait(timeout: 30)).to eq(0), process.output
    expect(process.output).to include("Interrupt in the handler")
    expect(steps_by_name(client.get_task(task["task_uuid"]))["interrupt"]["last_error"]).to be_nil

    start_worker
    done = client.wait(task["task_uuid"], timeout: 60)
    expect(done["state"]).to eq("complete")
    expect(steps_by_name(done)["interrupt"]["results"]).to eq({ "attempt" => 2 })
  end

  it "gives a forked child a clear error instead of a hang" do
    worker = start_worker
    pid = fork do
      code = begin
        worker.status
        worker.send(:native).poll(1, 10)
        1
      rescue Tasker::ForkError => e
        e.message.include?("fork") ? 0 : 2
      rescue Exception # rubocop:disable Lint/RescueException
        3
      end
      exit!(code)
    end
    _, status = Process.wait2(pid)
    expect(status.exitstatus).to eq(0)
    expect(worker.status["state"]).to eq("running")
  end

  it "refuses invalid options before anything starts" do
    expect { Tasker::Worker.new(concurrency: 0, database_url: server.database_url, environment: "test").start }
      .to raise_error(Tasker::ConfigError, /worker.concurrency/)
    expect { Tasker::Worker.new(namespaces: ["Not A Namespace"], database_url: server.database_url).start }
      .to raise_error(Tasker::ConfigError, /namespace/)
    expect { Tasker::Worker.new(registry: Tasker::Registry.new, database_url: server.database_url).start }
      .to raise_error(Tasker::WorkerError, /no handlers/)
  end

  it "says clearly when the database is unreachable" do
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    expect do
      Tasker::Worker.new(database_url: "postgresql://nobody@127.0.0.1:1/nothing", environment: "test",
                         config: { "database.acquire_timeout_ms" => 1000 }, logger: Logger.new(File::NULL)).start
    end.to raise_error(Tasker::WorkerError)
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 20
  end

  it "reports what went through it" do
    worker = start_worker
    expect(run_task("linear_workflow", "mathematical_sequence", { "value" => 3 })["state"]).to eq("complete")
    status = eventually("four completions") do
      s = worker.status
      s if s["totals"]["completed"] >= 4
    end
    expect(status).to include("state" => "running", "worker_id" => worker.worker_id, "pid" => Process.pid)
    expect(status["callables"]).to include("examples::square")
  end
end
