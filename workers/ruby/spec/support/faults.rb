# frozen_string_literal: true

# Handlers that misbehave on purpose, for the end-to-end specs of retries,
# failures, timeouts, crashes, shutdown and bad input (templates in
# workers/tests/templates, shared with the other languages' suites).
# In-process specs read what they did from the records below.

require "tasker"

module Faults
  # Steps that ran a handler that must never run.
  NEVER_RAN = Queue.new
  # Pushed when faults::overrun saw its cancel flag.
  SAW_CANCEL = Queue.new

  module_function

  def parse_row(row)
    raise ArgumentError, "bad row #{row}"
  end
end

Tasker.handler("faults::noop") { |_ctx| {} }

Tasker.handler("faults::flaky_once") do |ctx|
  if ctx.attempt == 1
    raise Tasker::RetryableError.new("upstream answered 503", retry_after: 0.4, code: "upstream_unavailable")
  end

  { "attempt" => ctx.attempt }
end

Tasker.handler("faults::decline") do |_ctx|
  raise Tasker::PermanentError.new("card declined", code: "card_declined", details: { "last4" => "4242" })
end

Tasker.handler("faults::never_runs") do |ctx|
  Faults::NEVER_RAN << ctx.step_uuid
  { "ran" => true }
end

# Raises an exception that is not a Tasker error, from a helper.
Tasker.handler("faults::boom") { |ctx| Faults.parse_row(ctx.context.fetch("row", 7)) }

# Runs past its timeout until it is told to stop.
Tasker.handler("faults::overrun") do |ctx|
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 15
  sleep 0.01 until ctx.cancelled? || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
  Faults::SAW_CANCEL << ctx.step_uuid if ctx.cancelled?
  { "too" => "late" }
end

# The Ruby worker has no event loop: this one also overruns, sleeping.
Tasker.handler("faults::async_overrun") do |ctx|
  sleep 0.05 until ctx.cancelled?
  { "too" => "late" }
end

# Sleeps context["seconds"] (or "first_attempt_seconds" on attempt 1).
Tasker.handler("faults::nap") do |ctx|
  seconds = ctx.context.fetch("seconds", 0).to_f
  seconds = ctx.context["first_attempt_seconds"].to_f if ctx.attempt == 1 && ctx.context.key?("first_attempt_seconds")
  sleep seconds
  { "napped" => seconds, "attempt" => ctx.attempt, "pid" => Process.pid }
end

Tasker.handler("faults::not_json") { |_ctx| { "when" => Time.utc(2026, 12, 1, 12, 0) } }

Tasker.handler("faults::bad_decision") do |_ctx|
  Tasker::Decision.create_steps(["no_such_step"], result: { "chose" => "badly" })
end

Tasker.handler("faults::async_nap") do |_ctx|
  sleep 0.5
  { "slept" => 0.5 }
end

Tasker.handler("faults::sync_nap") do |_ctx|
  sleep 0.5
  { "slept" => 0.5 }
end

# Raises Interrupt on its first attempt (as Ctrl-C in a handler would).
Tasker.handler("faults::interrupt_once") do |ctx|
  raise Interrupt if ctx.attempt == 1

  { "attempt" => ctx.attempt }
end
