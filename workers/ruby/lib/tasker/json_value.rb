# frozen_string_literal: true

module Tasker
  # Checks that a handler's result is JSON before it crosses to the core.
  #
  # Ruby's JSON generator turns any object into a string through +to_s+, so
  # a Time, a Set or a custom object would arrive as text nobody asked for;
  # the worker refuses them instead (the step fails as +invalid_result+,
  # naming where). Symbols become strings, as +JSON.generate+ makes them.
  module JSONValue
    # Raised for a value that is not JSON; the message names its path.
    class NotJSON < TypeError; end

    module_function

    # @param value [Object]
    # @return [Object] +value+, checked
    # @raise [NotJSON]
    def check(value, path = "result", depth = 0)
      raise NotJSON, "#{path} nests deeper than 128 levels" if depth > 128

      case value
      when String
        raise NotJSON, "#{path} is a string that is not valid UTF-8" unless value.valid_encoding? && utf8?(value)
      when Integer, true, false, nil, Symbol
        nil
      when Float
        raise NotJSON, "#{path} is #{value}, which JSON cannot represent" unless value.finite?
      when Array
        value.each_with_index { |item, i| check(item, "#{path}[#{i}]", depth + 1) }
      when Hash
        value.each do |key, item|
          unless key.is_a?(String) || key.is_a?(Symbol)
            raise NotJSON, "#{path} has a #{key.class} key (#{key.inspect}); JSON keys are strings"
          end

          check(item, "#{path}[#{key.to_s.inspect}]", depth + 1)
        end
      else
        raise NotJSON, "#{path} is a #{value.class}, which is not JSON"
      end
      value
    end

    def utf8?(string)
      string.encoding == Encoding::UTF_8 || string.encoding == Encoding::US_ASCII ||
        string.dup.force_encoding(Encoding::UTF_8).valid_encoding?
    end
  end
end
