# frozen_string_literal: true

require "json"

module Tasker
  # Turns what a handler did into the outcome envelope the Rust core reads,
  # and hands it over. Exceptions that are not {StepError} and results that
  # are not JSON are handed to the native side as facts; the rules that turn
  # them into failures live in Rust, once for every language.
  module Outcome
    module_function

    # @return [Hash] the envelope of a handler's return value
    def success(value)
      if value.is_a?(Success)
        envelope = { "status" => "success", "result" => value.result }
        envelope["control"] = value.control if value.control
        envelope
      else
        { "status" => "success", "result" => value }
      end
    end

    # @param error [StepError]
    # @return [Hash] the envelope of a {StepError} the handler raised
    def failure(error)
      failure = { "message" => error.message, "retryable" => error.retryable? }
      failure["error_type"] = error.error_type if error.error_type
      failure["code"] = error.code if error.code
      failure["details"] = error.details unless error.details.nil?
      if error.respond_to?(:retry_after) && error.retry_after
        failure["retry_after_ms"] = (error.retry_after * 1000).round
      end
      { "status" => "failure", "error" => failure }
    end

    # Serialises +envelope+ and completes +dispatch_id+ with it; a result
    # that is not JSON fails the step as +invalid_result+.
    # @return [Boolean] whether the runtime accepted it (false: the attempt was over)
    def deliver(native, dispatch_id, envelope)
      JSONValue.check(envelope["result"]) if envelope["status"] == "success"
      JSONValue.check(envelope["error"]["details"], "details") if envelope["status"] == "failure"
      native.complete(dispatch_id, JSON.generate(envelope))
    rescue JSONValue::NotJSON, JSON::GeneratorError, JSON::NestingError, EncodingError => e
      native.reject_result(dispatch_id, "#{e.class.name.split('::').last}: #{e.message}")
    end

    # Fails +dispatch_id+ with an unexpected exception and its backtrace.
    # @return [Boolean] whether the runtime accepted it
    def deliver_exception(native, dispatch_id, exception)
      native.fail_with_exception(dispatch_id, exception.class.name || exception.class.to_s,
                                 exception.message, exception.full_message(highlight: false))
    end
  end
end
