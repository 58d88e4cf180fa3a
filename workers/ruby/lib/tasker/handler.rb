# frozen_string_literal: true

module Tasker
  # Base class of class-style handlers. Name the callable with {.handles}
  # and implement +call(ctx)+; mix in {Decision} or {Batchable} where the
  # step needs them:
  #
  #   class RoutingDecision < Tasker::StepHandler
  #     include Tasker::Decision
  #     handles "approvals::routing_decision"
  #
  #     def call(ctx)
  #       amount = ctx.dependency("validate_request")["amount"]
  #       create_steps(amount < 1000 ? ["auto_approve"] : ["manager_approval"], result: { amount: amount })
  #     end
  #   end
  #
  # One instance serves every step: keep per-step state in locals.
  class StepHandler
    class << self
      # Registers this class under +callable+ (in +registry+, default {Tasker.registry}).
      # @param callable [String]
      def handles(callable, registry: Tasker.registry)
        registry.register(callable, self)
        @callable = callable
      end

      # @return [String, nil] the callable named with {.handles}
      attr_reader :callable
    end

    # Runs the step. Return its result (any JSON value, or a {Success});
    # raise {RetryableError} or {PermanentError} to fail it.
    # @param ctx [StepContext]
    def call(ctx)
      raise NotImplementedError, "#{self.class} must implement call(ctx)"
    end
  end

  # Handlers by callable. The worker serves the namespaces whose templates
  # only name callables it has.
  class Registry
    def initialize
      @handlers = {}
      @lock = Mutex.new
    end

    # Registers a {StepHandler} subclass (instantiated once, on first use, so
    # its +initialize+ runs), an object that responds to +call(ctx)+, or a
    # block, under +callable+ (replacing any earlier one). In a block,
    # +return+ returns from the handler, as in a method.
    # @return [void]
    def register(callable, handler = nil, &block)
      unless callable.is_a?(String) && !callable.strip.empty?
        raise ArgumentError, "a callable is a non-empty string such as 'ecommerce::process_payment'"
      end

      entry = if block && handler.nil?
                BlockHandler.new(callable, &block)
              elsif handler.is_a?(Class) && handler <= StepHandler
                handler
              elsif handler.respond_to?(:call)
                handler
              else
                raise ArgumentError, "cannot register #{handler.inspect}: it does not respond to call"
              end
      @lock.synchronize { @handlers[callable] = entry }
    end

    # @return [#call, nil] the handler of +callable+
    def [](callable)
      @lock.synchronize do
        entry = @handlers[callable]
        entry = @handlers[callable] = entry.new if entry.is_a?(Class)
        entry
      end
    end

    # @return [Array<String>] every registered callable, sorted
    def callables
      @lock.synchronize { @handlers.keys.sort }
    end

    # Adds every handler of +other+ (its entries win).
    # @return [self]
    def merge!(other)
      other.callables.each { |callable| @lock.synchronize { @handlers[callable] = other[callable] } }
      self
    end

    # @return [Boolean]
    def include?(callable)
      @lock.synchronize { @handlers.key?(callable) }
    end

    # @return [Integer]
    def size
      @lock.synchronize { @handlers.size }
    end
  end

  # A block registered with {Tasker.handler}, made into a method so that
  # +return+ inside it returns from the handler.
  class BlockHandler
    def initialize(callable, &block)
      @callable = callable
      define_singleton_method(:call, &block)
    end

    def inspect
      "#<Tasker::BlockHandler #{@callable}>"
    end
  end

  class << self
    # Where {handler} and {StepHandler.handles} register by default.
    # @return [Registry]
    def registry
      @registry ||= Registry.new
    end

    # Registers a block as the handler of +callable+:
    #
    #   Tasker.handler("ecommerce::validate_order") do |ctx|
    #     { "order_total_cents" => ctx.context["items"].sum { |i| i["quantity"] * i["unit_price_cents"] } }
    #   end
    # @return [void]
    def handler(callable, registry: Tasker.registry, &block)
      raise ArgumentError, "Tasker.handler needs a block" if block.nil?

      registry.register(callable, block)
    end
  end
end
