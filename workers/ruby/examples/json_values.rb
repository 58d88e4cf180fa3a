# frozen_string_literal: true

module Examples
  # JSON values read as the Rust examples read them with serde_json, so the
  # Ruby ports accept and reject the same inputs. Ruby Integers never
  # overflow, so "an integer" here means one that fits 64 bits, and never a
  # Float or a boolean.
  #
  # The field readers ({i64}, {u64}, {text}, {array}, {object}) are for the
  # parsers given to +ctx.context_as+ / +ctx.initialization_as+: a missing
  # field raises KeyError and a mistyped one TypeError, which fail the step
  # permanently as an invalid task context.
  module JsonValues
    # The values of a signed 64-bit integer.
    I64 = (-(2**63)..(2**63) - 1)
    # The values of an unsigned 64-bit integer.
    U64 = (0..(2**64) - 1)

    module_function

    # @param value [Object]
    # @return [Integer, nil] +value+ if it is an Integer that fits 64 bits (+Value::as_i64+)
    def as_i64(value)
      value if value.is_a?(Integer) && I64.cover?(value)
    end

    # @param value [Object]
    # @return [Integer, nil] +value+ if it is a non-negative 64-bit Integer (+Value::as_u64+)
    def as_u64(value)
      value if value.is_a?(Integer) && U64.cover?(value)
    end

    # +value[key]+ as serde_json indexes.
    # @param value [Object]
    # @param key [String]
    # @return [Object, nil] nil when +value+ is not an object or has no +key+
    def at(value, key)
      value[key] if value.is_a?(Hash)
    end

    # @param value [Integer]
    # @param what [String] what overflowed, for the message
    # @return [Integer] +value+
    # @raise [Tasker::PermanentError] +value+ does not fit 64 bits
    def checked(value, what)
      I64.cover?(value) ? value : raise(Tasker::PermanentError, what)
    end

    # @param data [Hash]
    # @param key [String]
    # @param optional [Boolean] a missing or null field reads as nil
    # @return [Integer, nil]
    def i64(data, key, optional: false)
      read(data, key, optional, "a 64-bit integer") { |value| as_i64(value) }
    end

    # @return [Integer, nil] (see {i64})
    def u64(data, key, optional: false)
      read(data, key, optional, "a non-negative 64-bit integer") { |value| as_u64(value) }
    end

    # @return [String, nil] (see {i64})
    def text(data, key, optional: false)
      read(data, key, optional, "a string") { |value| value if value.is_a?(String) }
    end

    # @return [Array, nil] (see {i64})
    def array(data, key, optional: false)
      read(data, key, optional, "an array") { |value| value if value.is_a?(Array) }
    end

    # @return [Hash, nil] (see {i64})
    def object(data, key, optional: false)
      read(data, key, optional, "an object") { |value| value if value.is_a?(Hash) }
    end

    # The field +key+ of +data+ through the block, which returns nil for a
    # value of the wrong type.
    def read(data, key, optional, expected)
      raise TypeError, "expected an object, not #{data.inspect[0, 40]}" unless data.is_a?(Hash)
      return if optional && data[key].nil?

      value = data.fetch(key) { raise KeyError, "missing field `#{key}`" }
      yield(value).tap { |read| raise TypeError, "`#{key}` must be #{expected}" if read.nil? }
    end
    private_class_method :read
  end
end
