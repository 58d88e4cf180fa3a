# frozen_string_literal: true

require_relative "lib/tasker/version"

Gem::Specification.new do |spec|
  spec.name = "tasker"
  spec.version = Tasker::VERSION
  spec.summary = "Tasker's Ruby worker: step handlers in Ruby on Tasker's Rust worker core"
  spec.authors = ["Tasker maintainers"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"
  spec.files = Dir["lib/**/*.rb", "exe/*", "ext/**/*.rb", "README.md"]
  spec.bindir = "exe"
  spec.executables = ["tasker-ruby-worker"]
  spec.extensions = ["ext/tasker_native/extconf.rb"]
  spec.require_paths = ["lib"]
end
