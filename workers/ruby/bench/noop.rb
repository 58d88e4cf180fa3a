# frozen_string_literal: true

# The no-op handler `tasker-bench compare` runs in the Ruby worker: the same
# work as Rust's `bench::noop` (nothing), so the difference between the two
# runs is what the Ruby worker costs per step.
#
#   cargo run --release -p tasker-bench -- compare \
#     --worker "workers/ruby/exe/tasker-ruby-worker --require workers/ruby/bench/noop.rb"
require "tasker"

Tasker.handler("bench::noop") { |_ctx| {} }
