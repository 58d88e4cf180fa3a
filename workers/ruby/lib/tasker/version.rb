# frozen_string_literal: true

module Tasker
  # The gem's version (the workspace's).
  VERSION = "0.1.0"
end
