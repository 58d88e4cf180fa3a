# frozen_string_literal: true

# Handlers of the CSV batch example (csv_batch_processing.yaml, SPEC §4.7).
#
# analyze_csv (a batchable step) counts the data rows of a
# sku,name,category,quantity,unit_price_cents file and plans one batch
# worker per range of batch_config.batch_size rows; each process_csv_batch
# clone sums quantity and quantity × unit_price_cents over its range, saving
# a checkpoint every "checkpoint_every" rows (from its initialization,
# default 100), so a retried attempt resumes from its checkpoint and no row
# is counted twice; aggregate_results (deferred convergence) adds the
# batches up.
#
# Failures for demonstrations and tests come from the task context:
#
# * "fail_on_row" => n makes the first attempt fail (retryably) when it
#   reaches data row n (numbered from 1), after the checkpoints before it
#   were saved;
# * "fail_batch" => "<batch_id>" fails that batch permanently.
#
# Written in class style: the planner includes Tasker::Batchable.

require "tasker"
require_relative "json_values"

module Examples
  # The CSV batch handlers.
  module CsvBatch
    # The 1,000-row sample file shipped with the Rust examples.
    SAMPLE_CSV = File.expand_path("../../rust/data/products.csv", __dir__)

    # What Rust's str::trim + str::parse::<i64> accept (Integer() also takes "1_000" and "0x1f").
    INTEGER = /\A[[:space:]]*([+-]?[0-9]+)[[:space:]]*\z/

    # The task context.
    Input = Struct.new(:csv_file_path, :fail_on_row, :fail_batch) do
      # @param data [Hash]
      # @return [Input]
      def self.from_h(data)
        new(JsonValues.text(data, "csv_file_path"), JsonValues.u64(data, "fail_on_row", optional: true),
            JsonValues.text(data, "fail_batch", optional: true))
      end
    end

    # What a range of rows adds up to (also a checkpoint's +partial_results+).
    Totals = Struct.new(:rows, :quantity, :value_cents) do
      # @param data [Hash] a checkpoint's +partial_results+
      # @return [Totals]
      # @raise [KeyError, TypeError] +data+ is not a Totals
      def self.from_h(data)
        new(JsonValues.u64(data, "rows"), JsonValues.i64(data, "quantity"), JsonValues.i64(data, "value_cents"))
      end

      # @return [Totals] nothing counted yet
      def self.zero
        new(0, 0, 0)
      end

      # @param other [Totals]
      # @return [Totals] the sum of both
      # @raise [Tasker::PermanentError] a total does not fit 64 bits
      def +(other)
        Totals.new(rows + other.rows, JsonValues.checked(quantity + other.quantity, "totals overflow"),
                   JsonValues.checked(value_cents + other.value_cents, "totals overflow"))
      end

      # @return [Hash] the JSON form, as a checkpoint's +partial_results+
      def to_json_value
        to_h.transform_keys(&:to_s)
      end
    end

    module_function

    # The file's data rows: every non-blank line after the header (as Rust's
    # str::lines: split at "\n", dropping a "\r" before it).
    # @param path [String]
    # @return [Array<String>]
    # @raise [Tasker::PermanentError] the file cannot be read or is not UTF-8
    def read_rows(path)
      content = File.read(path, encoding: Encoding::UTF_8)
      raise Tasker::PermanentError, "cannot read #{path}: it is not valid UTF-8" unless content.valid_encoding?

      lines = content.split("\n").drop(1).map { |line| line.delete_suffix("\r") }
      lines.grep_v(/\A[[:space:]]*\z/)
    rescue SystemCallError, IOError => e
      raise Tasker::PermanentError, "cannot read #{path}: #{e.message}"
    end

    # @param line [String] a sku,name,category,quantity,unit_price_cents row
    # @param number [Integer] the row's number, for messages
    # @return [Totals] its quantity and quantity × unit_price_cents
    # @raise [Tasker::PermanentError] a field is not a 64-bit integer, or the value overflows
    def row_totals(line, number)
      fields = line.split(",", -1)
      quantity, price = [[3, "quantity"], [4, "unit_price_cents"]].map do |i, name|
        JsonValues.as_i64(fields[i].to_s[INTEGER, 1]&.to_i) or
          raise Tasker::PermanentError, "row #{number}: `#{name}` is not an integer"
      end
      Totals.new(1, quantity, JsonValues.checked(quantity * price, "row #{number}: value overflows"))
    end

    # @param value [Object] a cursor
    # @return [Integer] the row index it is
    # @raise [Tasker::PermanentError] it is not one
    def row_index(value)
      JsonValues.as_u64(value) or raise Tasker::PermanentError, "batch cursors must be row indexes"
    end

    # The batchable step: one batch per batch_config.batch_size rows (default 100).
    class AnalyzeCsv < Tasker::StepHandler
      include Tasker::Batchable
      handles "csv::analyze_csv"

      # @param ctx [Tasker::StepContext]
      # @return [Tasker::Success] the batch plan
      def call(ctx)
        path = ctx.context_as { |data| Input.from_h(data) }.csv_file_path
        rows = CsvBatch.read_rows(path).size
        result = { "csv_file_path" => path, "total_rows" => rows }
        return no_batches(result: result) if rows.zero?

        create_batches(cursors(rows, ctx.batch_config&.batch_size || 100), result: result)
      end
    end

    # A batch worker: totals of its rows, resuming from and saving checkpoints.
    class ProcessCsvBatch < Tasker::StepHandler
      handles "csv::process_csv_batch"

      # @param ctx [Tasker::StepContext]
      # @return [Hash] the batch's range and totals
      # @raise [Tasker::RetryableError] the simulated crash of +fail_on_row+
      # @raise [Tasker::PermanentError] +fail_batch+, a bad cursor, checkpoint or row
      def call(ctx)
        input = ctx.context_as { |data| Input.from_h(data) }
        cursor = ctx.batch_cursor
        if input.fail_batch == cursor.batch_id
          raise Tasker::PermanentError, "batch #{cursor.batch_id} is marked to fail"
        end

        first = CsvBatch.row_index(cursor.start_cursor)
        last = CsvBatch.row_index(cursor.end_cursor)
        resumed_from, totals = resume(ctx, first)
        totals = count(ctx, input, first...last, resumed_from, totals)
        { "batch_id" => cursor.batch_id, "first_row" => first + 1, "last_row" => last,
          "resumed_from_row" => resumed_from + 1, "rows_processed" => totals.rows,
          "total_quantity" => totals.quantity, "total_value_cents" => totals.value_cents }
      end

      private

      # Where an earlier attempt left off, with what it had counted.
      # @return [Array(Integer, Totals)]
      def resume(ctx, start)
        return [start, Totals.zero] if ctx.checkpoint.nil?

        [CsvBatch.row_index(ctx.checkpoint.cursor), Totals.from_h(ctx.checkpoint.partial_results)]
      rescue KeyError, TypeError => e
        raise Tasker::PermanentError, "checkpoint does not parse: #{e.message}"
      end

      # +totals+ plus the rows of +range+ from index +from+, checkpointing every
      # "checkpoint_every" rows of the range.
      # @return [Totals]
      def count(ctx, input, range, from, totals)
        every = [JsonValues.as_u64(JsonValues.at(ctx.initialization, "checkpoint_every")) || 100, 1].max
        rows = CsvBatch.read_rows(input.csv_file_path)
        (from...range.end).reduce(totals) do |sum, index|
          number = index + 1 # data rows are numbered from 1, as a spreadsheet shows them
          if input.fail_on_row == number && ctx.attempt == 1
            raise Tasker::RetryableError, "simulated crash at row #{number}"
          end
          raise Tasker::PermanentError, "row #{number} is past the end" if index >= rows.size

          sum += CsvBatch.row_totals(rows[index], number)
          # The next row to process is index `number`: checkpoint there every `every` rows.
          if ((number - range.begin) % every).zero? && number < range.end
            ctx.save_checkpoint(cursor: number, items_processed: sum.rows, partial_results: sum.to_json_value)
          end
          sum
        end
      end
    end

    # The deferred convergence: totals of the completed batches, names of the failed ones.
    class AggregateResults < Tasker::StepHandler
      handles "csv::aggregate_results"

      # @param ctx [Tasker::StepContext]
      # @return [Hash] {"batches", "failed_batches", "total_rows", "total_quantity", "total_value_cents"}
      def call(ctx)
        results = ctx.parent_results.map(&:last).select { |result| result.is_a?(Hash) && result.key?("batch_id") }
        totals = results.reduce(Totals.zero) do |sum, result|
          sum + Totals.new(JsonValues.as_u64(result["rows_processed"]) || 0,
                           JsonValues.as_i64(result["total_quantity"]) || 0,
                           JsonValues.as_i64(result["total_value_cents"]) || 0)
        end
        { "batches" => results.size, "failed_batches" => ctx.failed_parents.keys.sort,
          "total_rows" => totals.rows, "total_quantity" => totals.quantity,
          "total_value_cents" => totals.value_cents }
      end
    end
  end
end
