# frozen_string_literal: true

module Tasker
  # Base class of the errors a handler raises to fail its step on purpose.
  #
  # Raise {RetryableError} for a failure another attempt may fix (a gateway
  # timeout, a 503) and {PermanentError} for one no retry will fix (a
  # declined card, invalid input). Any other exception fails the step as a
  # *retryable* +exception+ failure that carries the exception's class,
  # message and backtrace, so the step's retry policy decides how often it
  # is tried again.
  class StepError < StandardError
    # @return [String, nil] an application error code ("card_declined")
    attr_reader :code
    # @return [Object, nil] extra JSON-serialisable context
    attr_reader :details
    # @return [String, nil] the failure's category; +handler_error+ when nil
    attr_reader :error_type

    # @param message [String] what went wrong, for operators
    # @param code [String, nil]
    # @param details [Object, nil]
    # @param error_type [String, nil]
    def initialize(message = nil, code: nil, details: nil, error_type: nil)
      super(message)
      @code = code
      @details = details
      @error_type = error_type
    end

    # @return [Boolean] whether another attempt may help
    def retryable?
      false
    end
  end

  # A failure another attempt may fix.
  class RetryableError < StepError
    # @return [Float, nil] seconds to wait before the next attempt
    attr_reader :retry_after

    # @param retry_after [Numeric, nil] wait at least this many seconds before
    #   the next attempt; wins over the step's backoff policy, still capped by
    #   its +max_backoff_ms+ (an HTTP Retry-After you received is a good value)
    def initialize(message = nil, retry_after: nil, code: nil, details: nil, error_type: nil)
      super(message, code: code, details: details, error_type: error_type)
      raise ArgumentError, "retry_after must not be negative" if retry_after&.negative?

      @retry_after = retry_after&.to_f
    end

    # @return [Boolean] true
    def retryable?
      true
    end
  end

  # A failure no retry will fix: the step fails at once and its dependents
  # never run.
  class PermanentError < StepError; end

  # The worker could not start, or a call on it failed (raised by the native
  # extension; {ConfigError} and {ForkError} are kinds of it).
  class WorkerError < StandardError; end

  # The configuration (TOML, environment or keyword options) is invalid.
  class ConfigError < WorkerError; end

  # The worker was started in a parent process: a worker does not survive
  # +fork+; start a new one in the child.
  class ForkError < WorkerError; end

  # Raised by the native extension when a checkpoint was not saved; the
  # context turns it into a {RetryableError} or {PermanentError}.
  class CheckpointRefused < StandardError
    # @return [Boolean]
    attr_reader :retryable
    # @return [String]
    attr_reader :error_type

    def initialize(message = nil, retryable = true, error_type = "lease_lost")
      super(message)
      @retryable = retryable
      @error_type = error_type
    end
  end
end
