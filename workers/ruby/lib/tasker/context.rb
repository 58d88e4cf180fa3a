# frozen_string_literal: true

require "json"

module Tasker
  # The slice of a dataset one batch worker processes.
  #
  # @!attribute batch_id [String] unique within the batch; the worker step is named +<worker>_<batch_id>+
  # @!attribute start_cursor [Object] where the batch starts (inclusive)
  # @!attribute end_cursor [Object] where the batch ends (exclusive)
  # @!attribute batch_size [Integer] items per unit of work within the batch
  CursorConfig = Struct.new(:batch_id, :start_cursor, :end_cursor, :batch_size, keyword_init: true) do
    # @return [Hash] the wire form
    def to_json_value
      { "batch_id" => batch_id, "start_cursor" => start_cursor, "end_cursor" => end_cursor,
        "batch_size" => batch_size }
    end
  end

  # How far an earlier attempt of a batch worker got.
  #
  # @!attribute cursor [Object] where to resume: the next item to process
  # @!attribute items_processed [Integer] items processed so far, across attempts
  # @!attribute partial_results [Object] what the processed items added up to
  Checkpoint = Struct.new(:cursor, :items_processed, :partial_results, keyword_init: true)

  # A batchable step's +batch_config+ from its template.
  BatchConfig = Struct.new(:worker_template, :parallelism, :failure_strategy, :batch_size,
                           keyword_init: true)

  # Everything a handler knows about the step it runs: the same fields as the
  # Rust context (SPEC §7), JSON as Ruby values with string keys (the JSON
  # convention, and what other languages' handlers see).
  class StepContext
    # @return [String]
    attr_reader :task_uuid, :step_uuid, :namespace, :task_name, :task_version,
                :step_name, :template_step, :correlation_id
    # @return [Object] the task's context (usually a Hash)
    attr_reader :context
    # @return [Integer] this attempt's number, from 1
    attr_reader :attempt
    # @return [Integer]
    attr_reader :max_attempts
    # @return [Object] the step's +handler.initialization+ (a Hash)
    attr_reader :initialization
    # @return [Object, nil] extra inputs: a batch cursor, or inputs edited by an operator
    attr_reader :inputs
    # @return [Array<String>] the step's direct parents that exist in this task
    attr_reader :direct_parents
    # @return [Hash{String => Object}] every completed ancestor's result, by step name
    attr_reader :dependency_results
    # @return [Hash{String => Object}] direct parents that failed permanently (tolerated batches)
    attr_reader :failed_parents
    # @return [BatchConfig, nil]
    attr_reader :batch_config
    # @return [Checkpoint, nil] the last checkpoint an earlier attempt saved: resume from here
    attr_reader :checkpoint
    # @return [Array<Checkpoint>] checkpoints saved through a {.for_test} context
    attr_reader :saved_checkpoints

    # @param data [Hash] the context as the core sends it
    # @param native [Object, nil] the native worker (nil in handler unit tests)
    # @param dispatch_id [Integer, nil]
    def initialize(data, native = nil, dispatch_id = nil)
      @task_uuid = data.fetch("task_uuid", "")
      @step_uuid = data.fetch("step_uuid", "")
      @namespace = data.fetch("namespace", "")
      @task_name = data.fetch("task_name", "")
      @task_version = data.fetch("task_version", "")
      @context = data.fetch("context", {})
      @step_name = data.fetch("step_name", "")
      @template_step = data.fetch("template_step", "")
      @attempt = data.fetch("attempt", 1)
      @max_attempts = data.fetch("max_attempts", 1)
      @initialization = data.fetch("initialization", {})
      @inputs = data["inputs"]
      @direct_parents = data["direct_parents"] || []
      @dependency_results = data["dependency_results"] || {}
      @failed_parents = data["failed_parents"] || {}
      @batch_config = struct_of(BatchConfig, data["batch_config"],
                                "parallelism" => 4, "failure_strategy" => "fail_fast", "batch_size" => 100)
      @cursor = struct_of(CursorConfig, data["batch_cursor"])
      @checkpoint = struct_of(Checkpoint, data["checkpoint"])
      @correlation_id = data.fetch("correlation_id", "")
      @native = native
      @dispatch_id = dispatch_id
      @saved_checkpoints = []
    end

    # A context not linked to a worker, for unit tests of handlers: pass any
    # field by name (+context: {...}+, +attempt: 2+, +batch_cursor: {...}+).
    # {#cancelled?} is false; checkpoints are kept in {#saved_checkpoints}.
    # @return [StepContext]
    def self.for_test(**fields)
      new(JSON.parse(JSON.generate(plain(fields))))
    end

    # Structs (a {Checkpoint} from {#saved_checkpoints}, a {CursorConfig})
    # as hashes, so tests can pass back what handlers produced.
    def self.plain(value)
      case value
      when Struct then plain(value.to_h)
      when Hash then value.to_h { |k, v| [k.to_s, plain(v)] }
      when Array then value.map { |v| plain(v) }
      else value
      end
    end
    private_class_method :plain

    # @param name [String] an ancestor step
    # @return [Object, nil] its result
    def dependency(name)
      dependency_results[name.to_s]
    end

    # @return [Array<Array(String, Object)>] [name, result] of each direct parent, in order
    def parent_results
      direct_parents.filter_map { |name| [name, dependency_results[name]] if dependency_results.key?(name) }
    end

    # The task context through the block (or +parser.call+); a context it
    # rejects (KeyError, TypeError, ArgumentError) fails the step
    # permanently, as no retry can fix it.
    # @raise [PermanentError] "invalid task context: …"
    def context_as(parser = nil, &block)
      parsed(context, "task context", parser || block)
    end

    # The step's +handler.initialization+ through the block, like {#context_as}.
    # @raise [PermanentError] "invalid handler initialization: …"
    def initialization_as(parser = nil, &block)
      parsed(initialization, "handler initialization", parser || block)
    end

    # This batch worker's slice of the dataset.
    # @return [CursorConfig]
    # @raise [PermanentError] the step is not a batch worker
    def batch_cursor
      @cursor or raise PermanentError, "step `#{step_name}` has no batch cursor: only batch workers do"
    end

    # Whether to stop early: the task was cancelled, this attempt lost its
    # lease, or it overran its timeout (its result will be discarded).
    # Cheap; check it in long loops.
    def cancelled?
      return false if @native.nil?

      @native.cancelled?(@dispatch_id)
    end

    # Records how far this attempt got, so a retried attempt resumes from
    # +cursor+ with +partial_results+ instead of starting over (SPEC §4.7).
    # Save after the items it counts are done. Other Ruby threads run while
    # the row is written.
    # @raise [RetryableError] this attempt is no longer current (re-claimed
    #   or cancelled: stop working), or the database failed
    def save_checkpoint(cursor:, items_processed:, partial_results: nil)
      checkpoint = { "cursor" => cursor, "items_processed" => items_processed,
                     "partial_results" => partial_results }
      text = JSON.generate(Tasker::JSONValue.check(checkpoint, "checkpoint"))
      if @native.nil?
        # What the runtime would store: checked, and a copy.
        saved = JSON.parse(text)
        @saved_checkpoints << Checkpoint.new(**saved.transform_keys(&:to_sym))
        return
      end
      @native.save_checkpoint(@dispatch_id, text)
    rescue JSONValue::NotJSON => e
      raise PermanentError, "the checkpoint is not JSON: #{e.message}"
    rescue CheckpointRefused => e
      raise((e.retryable ? RetryableError : PermanentError).new(e.message, error_type: e.error_type))
    end

    # @return [String]
    def inspect
      "#<Tasker::StepContext step_name=#{step_name.inspect} attempt=#{attempt} task_uuid=#{task_uuid.inspect}>"
    end

    private

    def struct_of(struct, hash, defaults = {})
      return nil if hash.nil?

      known = struct.members.map(&:to_s)
      struct.new(**defaults.merge(hash).slice(*known).transform_keys(&:to_sym))
    end

    def parsed(value, what, parser)
      raise ArgumentError, "pass a parser or a block" if parser.nil?

      parser.call(value)
    rescue KeyError, TypeError, ArgumentError, NoMethodError => e
      raise PermanentError, "invalid #{what}: #{e.message}"
    end
  end
end
