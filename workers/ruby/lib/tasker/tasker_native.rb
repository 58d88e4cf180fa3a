# frozen_string_literal: true

# Loads the native extension: the copy `rake compile` puts beside this file,
# or the one `gem install` put on the load path.
begin
  require_relative "tasker_native.so"
rescue LoadError
  require "tasker/tasker_native.so"
end
