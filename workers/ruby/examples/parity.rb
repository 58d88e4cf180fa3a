# frozen_string_literal: true

# Handlers of the diamond + decision + batch example
# (diamond_decision_batch.yaml).
#
# A diamond splits a list of numbers into evens and odds (load_numbers →
# select_evens / select_odds); a decision (choose_dominant) picks the parity
# with more numbers (evens on a tie) and creates only that parity's batch
# analyzer; the analyzer (plan_batches) splits its numbers into batches of
# batch_config.batch_size; each batch worker (process_batch) sums its
# numbers and their squares; and a deferred convergence step
# (combine_batches) adds the batches up.
#
# Written in block style: decisions and batch plans are built with the
# module functions Tasker::Decision.create_steps and
# Tasker::Batchable.create_batches.

require "tasker"
require_relative "json_values"

module Examples
  # Helpers of the parity handlers.
  module Parity
    module_function

    # @param result [Object] a step's result (or the task context)
    # @param step [String] its name, for messages
    # @return [Array<Integer>] its "numbers"
    # @raise [Tasker::PermanentError] it has no array of 64-bit integers
    def numbers_of(result, step)
      numbers = JsonValues.at(result, "numbers")
      raise Tasker::PermanentError, "`#{step}` gave no numbers" unless numbers.is_a?(Array)
      raise Tasker::PermanentError, "`#{step}` gave a non-integer" unless numbers.all? { |n| JsonValues.as_i64(n) }

      numbers
    end

    # @param ctx [Tasker::StepContext]
    # @param even [Boolean]
    # @return [Hash] the numbers of diamond_start of that parity, and how many there are
    def by_parity(ctx, even:)
      chosen = numbers_of(ctx.dependency("diamond_start"), "diamond_start").select { |n| n.even? == even }
      { "numbers" => chosen, "count" => chosen.size }
    end

    # @param value [Object] a cursor
    # @return [Integer] the index it is
    # @raise [Tasker::PermanentError] it is not one
    def index(value)
      JsonValues.as_u64(value) or raise Tasker::PermanentError, "cursors must be indexes"
    end

    # {"numbers" => [...]} of the task context, checked to be integers.
    Tasker.handler("parity::load_numbers") do |ctx|
      { "numbers" => numbers_of(ctx.context, "the task context") }
    end

    # The even numbers of diamond_start, and how many there are.
    Tasker.handler("parity::select_evens") { |ctx| by_parity(ctx, even: true) }

    # The odd numbers of diamond_start, and how many there are.
    Tasker.handler("parity::select_odds") { |ctx| by_parity(ctx, even: false) }

    # The decision: creates the batch analyzer of the parity with more numbers (evens on a tie).
    Tasker.handler("parity::choose_dominant") do |ctx|
      evens = numbers_of(ctx.dependency("branch_evens"), "branch_evens").size
      odds = numbers_of(ctx.dependency("branch_odds"), "branch_odds").size
      even = evens >= odds
      Tasker::Decision.create_steps([even ? "even_batch_analyzer" : "odd_batch_analyzer"],
                                    result: { "dominant" => even ? "even" : "odd",
                                              "even_count" => evens, "odd_count" => odds })
    end

    # The batchable step: batches of the numbers of step initialization["source"].
    Tasker.handler("parity::plan_batches") do |ctx|
      source = ctx.initialization_as { |init| JsonValues.text(init, "source") }
      numbers = numbers_of(ctx.dependency(source), source)
      result = { "source" => source, "numbers" => numbers }
      next Tasker::Batchable.no_batches(result: result) if numbers.empty?

      size = ctx.batch_config ? ctx.batch_config.batch_size : 5
      Tasker::Batchable.create_batches(Tasker::Batchable.cursors(numbers.size, size, first_id: 0, id_width: 0),
                                       result: result)
    end

    # A batch worker: count, sum and sum of squares of its slice of the analyzer's numbers.
    Tasker.handler("parity::process_batch") do |ctx|
      cursor = ctx.batch_cursor
      analyzer, planned = ctx.parent_results.first
      raise Tasker::PermanentError, "a batch worker needs its analyzer" if analyzer.nil?

      numbers = numbers_of(planned, analyzer)
      first = index(cursor.start_cursor)
      last = index(cursor.end_cursor)
      raise Tasker::PermanentError, "cursor outside the numbers" unless first <= last && last <= numbers.size

      batch = numbers[first...last]
      # Squares are never negative: if the total fits 64 bits, every partial sum did.
      squares = JsonValues.checked(batch.sum { |n| n * n }, "sum of squares overflows")
      { "batch_id" => cursor.batch_id, "count" => batch.size, "sum" => batch.sum, "sum_of_squares" => squares }
    end

    # The deferred convergence: the dominant parity and the totals of every batch that ran.
    Tasker.handler("parity::combine_batches") do |ctx|
      batches = ctx.parent_results.map(&:last).select { |result| result.is_a?(Hash) && result.key?("batch_id") }
      count = sum = squares = 0
      batches.each do |result|
        count += JsonValues.as_u64(result["count"]) || 0
        sum = JsonValues.checked(sum + (JsonValues.as_i64(result["sum"]) || 0), "batch totals overflow")
        squares = JsonValues.checked(squares + (JsonValues.as_i64(result["sum_of_squares"]) || 0),
                                     "batch totals overflow")
      end
      { "dominant" => JsonValues.at(ctx.dependency("routing_decision"), "dominant"),
        "batches" => batches.size, "count" => count, "sum" => sum, "sum_of_squares" => squares }
    end
  end
end
