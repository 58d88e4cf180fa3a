# frozen_string_literal: true

# Every example handler: requiring this file registers the handlers of all
# example workflows (config/tasks/*.yaml) in Tasker.registry, so one worker
# serves them all:
#
#   tasker-ruby-worker --require examples/all.rb

require "tasker"

require_relative "approvals"
require_relative "csv_batch"
require_relative "ecommerce"
require_relative "numbers"
require_relative "parity"
