# frozen_string_literal: true

# Handlers of the order-fulfillment example (order_fulfillment.yaml):
# validate_order → reserve_inventory → process_payment → ship_order.
#
# They stand in for real services: validation and totals are computed for
# real; inventory, payment and shipping return deterministic identifiers
# derived from the task, so a retried step returns the same answer
# (handlers should be idempotent).
#
# Special inputs exercise failures:
#
# * a SKU starting with "OOS-" is out of stock (permanent, code
#   "out_of_stock");
# * payment token "tok_decline" is declined (permanent, code
#   "card_declined");
# * payment token "tok_flaky" fails the first attempt with a retry hint
#   (retryable, code "gateway_unavailable", retry_after 50 ms).
#
# Written in block style, with the task context parsed into Structs by
# ctx.context_as.

require "tasker"
require_relative "json_values"

module Examples
  # The order of the task context, and helpers of the order handlers.
  module Ecommerce
    Customer = Struct.new(:id, :email) do
      # @param data [Hash]
      # @return [Customer]
      def self.from_h(data)
        new(JsonValues.i64(data, "id"), JsonValues.text(data, "email"))
      end
    end

    Item = Struct.new(:sku, :quantity, :unit_price_cents) do
      # @param data [Hash]
      # @return [Item]
      def self.from_h(data)
        new(JsonValues.text(data, "sku"), JsonValues.i64(data, "quantity"),
            JsonValues.i64(data, "unit_price_cents"))
      end
    end

    # Payment and Shipping call their "method" field +payment_method+ and
    # +shipping_method+: a Struct member +method+ would hide Object#method.
    Payment = Struct.new(:payment_method, :token) do
      # @param data [Hash]
      # @return [Payment]
      def self.from_h(data)
        new(JsonValues.text(data, "method"), JsonValues.text(data, "token"))
      end
    end

    Shipping = Struct.new(:address, :shipping_method) do
      # @param data [Hash]
      # @return [Shipping]
      def self.from_h(data)
        new(JsonValues.text(data, "address"), JsonValues.text(data, "method"))
      end
    end

    # The task context of an order (extra fields are ignored).
    Order = Struct.new(:customer, :items, :payment, :shipping) do
      # Parses the task context, for +ctx.context_as+: a missing field
      # (KeyError) or a mistyped one (TypeError) fails the step as an
      # invalid task context.
      # @param data [Hash]
      # @return [Order]
      def self.from_h(data)
        new(Customer.from_h(JsonValues.object(data, "customer")),
            JsonValues.array(data, "items").map { |item| Item.from_h(item) },
            Payment.from_h(JsonValues.object(data, "payment")),
            Shipping.from_h(JsonValues.object(data, "shipping")))
      end
    end

    module_function

    # @param ctx [Tasker::StepContext]
    # @return [Order] the task context
    def order_of(ctx)
      ctx.context_as { |data| Order.from_h(data) }
    end

    # @param ctx [Tasker::StepContext]
    # @return [String] a short, stable suffix for identifiers derived from the task
    def short(ctx)
      ctx.task_uuid.delete("-")[20..].to_s
    end

    # @param ctx [Tasker::StepContext]
    # @param step [String] an ancestor step
    # @param field [String]
    # @return [Object] field +field+ of +step+'s result
    # @raise [Tasker::PermanentError] the result has no such field
    def from_parent(ctx, step, field)
      result = ctx.dependency(step)
      return result[field] if result.is_a?(Hash) && result.key?(field)

      raise Tasker::PermanentError, "`#{step}` result has no `#{field}`"
    end

    # Checks every item's quantity and computes the order total.
    Tasker.handler("ecommerce::validate_order") do |ctx|
      order = order_of(ctx)
      total = order.items.reduce(0) do |sum, item|
        raise Tasker::PermanentError, "item #{item.sku} has quantity #{item.quantity}" unless item.quantity.positive?

        line = JsonValues.checked(item.quantity * item.unit_price_cents, "order total overflows")
        JsonValues.checked(sum + line, "order total overflows")
      end
      { "customer_id" => order.customer.id,
        "customer_email" => order.customer.email,
        "item_count" => JsonValues.checked(order.items.sum(&:quantity), "item count overflows"),
        "order_total_cents" => total }
    end

    # Reserves every item in the initialization's "warehouse" (default "main").
    Tasker.handler("ecommerce::reserve_inventory") do |ctx|
      order = order_of(ctx)
      if (item = order.items.find { |i| i.sku.start_with?("OOS-") })
        raise Tasker::PermanentError.new("#{item.sku} is out of stock", code: "out_of_stock")
      end

      warehouse = JsonValues.at(ctx.initialization, "warehouse")
      { "reservation_id" => "res_#{short(ctx)}",
        "warehouse" => warehouse.is_a?(String) ? warehouse : "main",
        "skus" => order.items.map(&:sku) }
    end

    # Charges the total validate_order computed through the initialization's "gateway".
    Tasker.handler("ecommerce::process_payment") do |ctx|
      order = order_of(ctx)
      amount = from_parent(ctx, "validate_order", "order_total_cents")
      from_parent(ctx, "reserve_inventory", "reservation_id")
      case order.payment.token
      when "tok_decline"
        raise Tasker::PermanentError.new("card declined", code: "card_declined")
      when "tok_flaky"
        if ctx.attempt == 1
          raise Tasker::RetryableError.new("payment gateway unavailable (503)",
                                           retry_after: 0.05, code: "gateway_unavailable")
        end
      end
      { "payment_id" => "pay_#{short(ctx)}",
        "method" => order.payment.payment_method,
        "amount_charged_cents" => amount,
        "gateway" => JsonValues.at(ctx.initialization, "gateway") }
    end

    # Books the shipment of a paid order: 1 day for "express", else 5.
    Tasker.handler("ecommerce::ship_order") do |ctx|
      order = order_of(ctx)
      from_parent(ctx, "process_payment", "payment_id")
      { "tracking_number" => "TRK#{short(ctx).upcase}",
        "address" => order.shipping.address,
        "shipping_method" => order.shipping.shipping_method,
        "estimated_days" => order.shipping.shipping_method == "express" ? 1 : 5 }
    end
  end
end
