# frozen_string_literal: true

# Tasker's Ruby worker: write step handlers in Ruby and run them on Tasker's
# Rust worker core, which claims steps, keeps their leases, enforces
# timeouts and writes results; your handlers only compute.
#
#   require "tasker"
#
#   Tasker.handler("ecommerce::process_payment") do |ctx|
#     total = ctx.dependency("validate_order")["order_total_cents"]
#     raise Tasker::RetryableError.new("gateway unavailable", retry_after: 0.5) if gateway_busy?
#     { "charged_cents" => total }
#   end
#
# Run them with +tasker-ruby-worker --require ./app/handlers.rb+, or from
# code with {Tasker::Worker}. Submit work with {Tasker::Client}.
module Tasker
end

require_relative "tasker/version"
require_relative "tasker/errors"
require_relative "tasker/tasker_native"
require_relative "tasker/json_value"
require_relative "tasker/context"
require_relative "tasker/results"
require_relative "tasker/handler"
require_relative "tasker/outcome"
require_relative "tasker/worker"
require_relative "tasker/client"
