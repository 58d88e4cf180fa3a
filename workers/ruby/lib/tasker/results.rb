# frozen_string_literal: true

module Tasker
  # A successful attempt: +result+ is what dependents receive; +control+
  # (set by the decision and batch helpers) is what a decision or batchable
  # step asks orchestration to create. Returning a plain value +v+ from a
  # handler is the same as returning +Success.new(v)+.
  class Success
    # @return [Object]
    attr_reader :result
    # @return [Hash, nil]
    attr_reader :control

    def initialize(result = nil, control: nil)
      @result = result
      @control = control
    end

    def ==(other)
      other.is_a?(Success) && other.result == result && other.control == control
    end
  end

  # Capability of a decision step's handler: choose which downstream steps
  # to create (SPEC §4.6). Include it in a {StepHandler}, or call
  # +Tasker::Decision.create_steps+ directly.
  module Decision
    # A decision: create these downstream steps (names reachable from the
    # decision in the template). Naming any other step fails the decision
    # permanently.
    # @param steps [Array<String>]
    # @return [Success]
    def create_steps(steps, result: nil)
      names = Array(steps).map do |name|
        raise TypeError, "step names must be strings, not #{name.class}" unless name.is_a?(String) || name.is_a?(Symbol)

        name.to_s
      end
      Success.new(result, control: { "type" => "decision", "outcome" => "create_steps", "steps" => names })
    end

    # A decision that creates nothing; convergence steps still run.
    # @return [Success]
    def no_branches(result: nil)
      Success.new(result, control: { "type" => "decision", "outcome" => "no_branches" })
    end

    extend self
  end

  # Capability of a batchable step's handler: split a dataset into batch
  # workers (SPEC §4.7).
  module Batchable
    # A batchable step's plan: one batch worker per cursor.
    # @param cursor_configs [Array<CursorConfig, Hash>]
    # @return [Success]
    def create_batches(cursor_configs, result: nil)
      cursors = cursor_configs.map { |c| c.respond_to?(:to_json_value) ? c.to_json_value : c }
      Success.new(result, control: { "type" => "batches", "outcome" => "create_batches",
                                     "worker_count" => cursors.size, "cursor_configs" => cursors })
    end

    # A batchable step with nothing to process; convergence still runs.
    # @return [Success]
    def no_batches(result: nil)
      Success.new(result, control: { "type" => "batches", "outcome" => "no_batches" })
    end

    # Cursors that cover +0...total_items+ once, +batch_size+ (at least 1) at
    # a time, with batch ids counted from +first_id+ and zero-padded to
    # +id_width+: "001", "002", …
    # @return [Array<CursorConfig>]
    def cursors(total_items, batch_size, first_id: 1, id_width: 3)
      size = [batch_size.to_i, 1].max
      (0...[total_items, 0].max).step(size).each_with_index.map do |start, i|
        CursorConfig.new(batch_id: (first_id + i).to_s.rjust(id_width, "0"), start_cursor: start,
                         end_cursor: [start + size, total_items].min, batch_size: size)
      end
    end

    extend self
  end
end
