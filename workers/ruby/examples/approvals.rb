# frozen_string_literal: true

# Handlers of the conditional-approval example (conditional_approval.yaml,
# SPEC §4.6).
#
# validate_request checks an expense request; the decision step
# routing_decision routes it by amount (thresholds from its
# initialization):
#
#   amount < auto_approve_below (1000)            -> auto_approve
#   auto_approve_below <= amount < finance_review_from (5000)
#                                                 -> manager_approval
#   amount >= finance_review_from                 -> manager_approval + finance_review
#
# only the approvals it chose are created and run, and the deferred
# convergence step finalize_approval records the outcome of whichever ran.
#
# Written in class style: each handler is a Tasker::StepHandler subclass
# that names its callable with +handles+, the decision includes
# Tasker::Decision, and the three approvals share a base class (which,
# handling nothing, is not a handler itself).

require "tasker"
require_relative "json_values"

module Examples
  # The conditional-approval handlers.
  module Approvals
    # The approvals a request may need, in the order they are reported.
    APPROVALS = %w[auto_approve manager_approval finance_review].freeze

    # The task context: an expense request.
    Request = Struct.new(:amount, :requester, :purpose) do
      # @param data [Hash]
      # @return [Request]
      def self.from_h(data)
        new(JsonValues.i64(data, "amount"), JsonValues.text(data, "requester"),
            JsonValues.text(data, "purpose"))
      end
    end

    # The decision step's thresholds (its +handler.initialization+).
    Routing = Struct.new(:auto_approve_below, :finance_review_from) do
      # @param data [Hash] absent keys keep their defaults (1000 and 5000)
      # @return [Routing]
      def self.from_h(data)
        raise TypeError, "expected an object" unless data.is_a?(Hash)

        defaults = new(1000, 5000)
        new(*members.map { |key| data.key?(key.to_s) ? JsonValues.i64(data, key.to_s) : defaults[key] })
      end
    end

    module_function

    # @param amount [Integer]
    # @param routing [Routing]
    # @return [Array<String>] the approval steps a request of +amount+ needs
    def route(amount, routing)
      if amount < routing.auto_approve_below
        %w[auto_approve]
      elsif amount < routing.finance_review_from
        %w[manager_approval]
      else
        %w[manager_approval finance_review]
      end
    end

    # @param ctx [Tasker::StepContext]
    # @return [Integer] the amount validate_request accepted
    # @raise [Tasker::PermanentError] it gave none
    def amount(ctx)
      JsonValues.as_i64(JsonValues.at(ctx.dependency("validate_request"), "amount")) or
        raise Tasker::PermanentError, "validate_request gave no amount"
    end

    # Accepts an expense request {"amount", "requester", "purpose"}.
    class ValidateRequest < Tasker::StepHandler
      handles "approvals::validate_request"

      # @param ctx [Tasker::StepContext]
      # @return [Hash] the request
      def call(ctx)
        request = ctx.context_as { |data| Request.from_h(data) }
        raise Tasker::PermanentError, "amount must not be negative" if request.amount.negative?
        # [[:space:]] is Unicode White_Space, as Rust's str::trim strips.
        raise Tasker::PermanentError, "requester is required" if request.requester.match?(/\A[[:space:]]*\z/)

        request.to_h.transform_keys(&:to_s)
      end
    end

    # The decision: creates exactly the approval steps the amount needs.
    class RoutingDecision < Tasker::StepHandler
      include Tasker::Decision
      handles "approvals::routing_decision"

      # @param ctx [Tasker::StepContext]
      # @return [Tasker::Success] a decision creating the approval steps
      def call(ctx)
        routing = ctx.initialization_as { |init| Routing.from_h(init) }
        amount = Approvals.amount(ctx)
        steps = Approvals.route(amount, routing)
        create_steps(steps, result: { "amount" => amount, "route" => steps })
      end
    end

    # An approval that always approves, recording who approved it.
    # Subclasses name their callable and set +APPROVED_BY+.
    class Approval < Tasker::StepHandler
      # @param ctx [Tasker::StepContext]
      # @return [Hash] {"approved" => true, "approved_by", "amount"}
      def call(ctx)
        { "approved" => true, "approved_by" => self.class::APPROVED_BY, "amount" => Approvals.amount(ctx) }
      end
    end

    # Approval by policy, for small amounts.
    class AutoApprove < Approval
      handles "approvals::auto_approve"
      APPROVED_BY = "policy"
    end

    # Approval by the requester's manager.
    class ManagerApproval < Approval
      handles "approvals::manager_approval"
      APPROVED_BY = "manager"
    end

    # Approval by finance, for large amounts.
    class FinanceReview < Approval
      handles "approvals::finance_review"
      APPROVED_BY = "finance"
    end

    # The deferred convergence: the outcome of whichever approvals ran.
    class FinalizeApproval < Tasker::StepHandler
      handles "approvals::finalize_approval"

      # @param ctx [Tasker::StepContext]
      # @return [Hash] {"approved", "approvals", "amount"}
      # @raise [Tasker::PermanentError] no approval ran
      def call(ctx)
        # ctx.dependency cannot tell a step that did not run from a null result.
        ran = APPROVALS.select { |name| ctx.dependency_results.key?(name) }
        raise Tasker::PermanentError, "no approval step ran" if ran.empty?

        { "approved" => ran.all? { |name| JsonValues.at(ctx.dependency(name), "approved") == true },
          "approvals" => ran,
          "amount" => Approvals.amount(ctx) }
      end
    end
  end
end
