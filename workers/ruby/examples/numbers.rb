# frozen_string_literal: true

# Handlers of the linear, diamond, tree and mixed-DAG examples
# (linear_workflow.yaml, diamond_workflow.yaml, tree_workflow.yaml,
# mixed_dag_workflow.yaml).
#
# Each step reads the "value" of its direct parents (or the task context's
# "value", at the root) and returns {"value" => n}: examples::square squares
# its single input, examples::sum adds its inputs and examples::product
# multiplies them.
#
# Arithmetic is checked as in the Rust handlers: Ruby Integers never
# overflow, but a result outside a signed 64-bit integer (or a partial sum
# or product outside it, as Rust's +try_fold+ with +checked_add+) fails the
# step permanently instead of producing a number other workers could not
# read.
#
# Written in block style: each handler is a block registered with
# Tasker.handler.

require "tasker"
require_relative "json_values"

module Examples
  # Helpers of the number handlers.
  module Numbers
    module_function

    # @param ctx [Tasker::StepContext]
    # @return [Array<Integer>] the parents' values, or the context's "value" for a root step
    # @raise [Tasker::PermanentError] a value is not a 64-bit integer
    def inputs(ctx)
      if ctx.direct_parents.empty?
        value = JsonValues.as_i64(JsonValues.at(ctx.context, "value"))
        return [value] if value

        raise Tasker::PermanentError, "context.value must be an integer"
      end
      ctx.parent_results.map do |parent, result|
        JsonValues.as_i64(JsonValues.at(result, "value")) or
          raise Tasker::PermanentError, "parent `#{parent}` did not return an integer value"
      end
    end

    # @param ctx [Tasker::StepContext]
    # @param value [Integer]
    # @return [Integer] +value+
    # @raise [Tasker::PermanentError] +value+ does not fit 64 bits
    def checked(ctx, value)
      JsonValues.checked(value, "step `#{ctx.step_name}` overflowed a 64-bit integer")
    end

    # {"value" => x * x} of the single input x.
    Tasker.handler("examples::square") do |ctx|
      case inputs(ctx)
      in [x] then { "value" => checked(ctx, x * x) }
      else raise Tasker::PermanentError, "examples::square takes exactly one parent"
      end
    end

    # {"value" => a + b + …} of the inputs (0 for none).
    Tasker.handler("examples::sum") do |ctx|
      { "value" => inputs(ctx).reduce(0) { |total, n| checked(ctx, total + n) } }
    end

    # {"value" => a * b * …} of the inputs (1 for none).
    Tasker.handler("examples::product") do |ctx|
      { "value" => inputs(ctx).reduce(1) { |total, n| checked(ctx, total * n) } }
    end
  end
end
