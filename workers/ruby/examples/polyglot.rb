# frozen_string_literal: true

# The Ruby step of workers/tests/templates/polyglot.yaml (one task whose
# steps run in Rust, Python, Ruby and TypeScript): adds 10 to its parent's
# "value" and "ruby" to the trail of languages the task went through.
#
# The step names `pool: ruby`, so only a worker with this handler takes it.

require "tasker"

Tasker.handler("polyglot::ruby_add_ten") do |ctx|
  parent, result = ctx.parent_results.first
  value = result.is_a?(Hash) ? result["value"] : nil
  raise Tasker::PermanentError, "parent `#{parent}` did not return an integer value" unless value.is_a?(Integer)

  {
    "value" => value + 10,
    "trail" => [*result.fetch("trail", ["rust"]), "ruby"],
    "runtime" => RUBY_DESCRIPTION
  }
end
