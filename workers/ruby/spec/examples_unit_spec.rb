# frozen_string_literal: true

# Unit specs of the example handlers in examples/: each handler is called
# directly with a Tasker::StepContext.for_test context, so no database,
# server or worker is needed. Results are compared with the field names and
# values of the Rust examples in workers/rust/src/ (and the Python ports'
# unit tests, workers/python/tests/test_examples_unit.py).
#
#   rspec spec/examples_unit_spec.rb

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
$LOAD_PATH.unshift(File.expand_path("..", __dir__))
require "csv"
require "tmpdir"
require "tasker"
require "examples/all"

RSpec.describe "the example handlers" do
  i64_max = (2**63) - 1
  i64_min = -(2**63)
  task_uuid = "0190f0e4-8a1b-7c3d-9e2f-a1b2c3d4e5f6"
  sample_csv = File.expand_path("../../rust/data/products.csv", __dir__)
  templates = File.expand_path("../../../config/tasks", __dir__)

  define_method(:ctx) { |**fields| Tasker::StepContext.for_test(task_uuid: task_uuid, **fields) }

  # Runs the registered handler of +callable+.
  def run(callable, context)
    handler = Tasker.registry[callable]
    raise "#{callable} is not registered" if handler.nil?

    handler.call(context)
  end

  describe "registration" do
    it "registers every callable of the example templates" do
      named = Dir[File.join(templates, "*.yaml")].flat_map { |f| File.read(f).scan(/callable:\s*"([^"]+)"/) }
      named = named.flatten.uniq
      expect(named.size).to eq(23)
      expect(named.reject { |c| Tasker.registry.include?(c) }).to eq([])
    end

    it "uses block style for numbers, ecommerce and parity, class style for approvals and csv" do
      %w[examples::square ecommerce::ship_order parity::plan_batches].each do |callable|
        expect(Tasker.registry[callable]).to be_a(Proc)
      end
      expect(Tasker.registry["approvals::routing_decision"]).to be_a(Examples::Approvals::RoutingDecision)
      expect(Tasker.registry["approvals::routing_decision"]).to be_a(Tasker::Decision)
      expect(Tasker.registry["csv::analyze_csv"]).to be_a(Tasker::Batchable)
      expect(Tasker.registry["approvals::auto_approve"]).to be_a(Examples::Approvals::Approval)
      instances = Tasker.registry.callables.map { |c| Tasker.registry[c] }
      expect(instances.map(&:class)).not_to include(Examples::Approvals::Approval) # the base class is no handler
    end
  end

  describe "numbers" do
    # Fields of a context whose direct parents returned {"value" => v}.
    def parents(**values)
      { direct_parents: values.keys.map(&:to_s), dependency_results: values.transform_values { |v| { "value" => v } } }
    end

    def square(**fields) = run("examples::square", ctx(**fields))
    def sum(**fields) = run("examples::sum", ctx(**fields))
    def product(**fields) = run("examples::product", ctx(**fields))

    it "squares the context's value at the root, and its single parent's value below it" do
      expect(square(context: { "value" => 6 })).to eq("value" => 36)
      expect(square(context: { "value" => -7 })).to eq("value" => 49)
      expect(square(context: { "value" => 1 }, **parents(a: 12))).to eq("value" => 144)
      expect { square(**parents(a: 1, b: 2)) }
        .to raise_error(Tasker::PermanentError, "examples::square takes exactly one parent")
    end

    it "sums and multiplies the parents" do
      expect(sum(**parents(a: 2, b: 3, c: -4))).to eq("value" => 1)
      expect(product(**parents(a: 2, b: 3, c: -4))).to eq("value" => -24)
      expect(sum(context: { "value" => 5 })).to eq("value" => 5)
      expect(product(context: { "value" => 5 })).to eq("value" => 5)
    end

    it "computes what the example workflows' templates say" do
      # linear_workflow.yaml: {"value": 6} squared four times is 6^16.
      value = square(context: { "value" => 6 })["value"]
      %w[linear_step_2 linear_step_3 linear_step_4].each do |step|
        value = square(step_name: step, **parents(prev: value))["value"]
      end
      expect(value).to eq(6**16).and eq(2_821_109_907_456)
      # mixed_dag_workflow.yaml: {"value": 3} ends with 13284.
      init = square(context: { "value" => 3 })["value"]
      left = square(**parents(dag_init: init))["value"]
      right = square(**parents(dag_init: init))["value"]
      validate = square(**parents(dag_process_left: left))["value"]
      transform = sum(**parents(dag_process_left: left, dag_process_right: right))["value"]
      analyze = square(**parents(dag_process_right: right))["value"]
      expect(sum(**parents(dag_validate: validate, dag_transform: transform, dag_analyze: analyze)))
        .to eq("value" => 13_284)
    end

    it "fails permanently outside 64 bits, checking every partial result" do
      expect(square(context: { "value" => 3_037_000_499 })).to eq("value" => 3_037_000_499**2)
      expect { square(step_name: "linear_step_4", context: { "value" => 3_037_000_500 }) }
        .to raise_error(Tasker::PermanentError, "step `linear_step_4` overflowed a 64-bit integer") { |e|
          expect(e.retryable?).to be(false)
        }
      overflow = /overflowed a 64-bit integer/
      expect { product(**parents(a: 2**62, b: 2)) }.to raise_error(Tasker::PermanentError, overflow)
      expect { sum(**parents(a: i64_min, b: -1)) }.to raise_error(Tasker::PermanentError, overflow)
      # As Rust's try_fold(checked_add): the final sum would fit, a partial one does not.
      expect { sum(**parents(a: i64_max, b: 1, c: -1)) }.to raise_error(Tasker::PermanentError, overflow)
      expect(sum(**parents(a: i64_max, b: -1, c: 1))).to eq("value" => i64_max)
    end

    [2.0, true, "6", nil, 2**63].each do |value|
      it "rejects a root value of #{value.inspect}" do
        expect { square(context: { "value" => value }) }
          .to raise_error(Tasker::PermanentError, "context.value must be an integer")
      end
    end

    it "rejects a parent that did not return an integer value" do
      expect { sum(direct_parents: ["a"], dependency_results: { "a" => { "value" => 1.5 } }) }
        .to raise_error(Tasker::PermanentError, "parent `a` did not return an integer value")
    end
  end

  describe "ecommerce" do
    def order(token = "tok_ok", **changes)
      { "customer" => { "id" => 7, "email" => "ada@example.com" },
        "items" => [{ "sku" => "BOOK-42", "quantity" => 2, "unit_price_cents" => 1999 },
                    { "sku" => "MUG-7", "quantity" => 1, "unit_price_cents" => 1250 }],
        "payment" => { "method" => "card", "token" => token },
        "shipping" => { "address" => "1 Infinite Loop", "method" => "express" } }.merge(changes.transform_keys(&:to_s))
    end

    def pay(token, attempt: 1, initialization: { "gateway" => "sandbox" })
      run("ecommerce::process_payment",
          ctx(context: order(token), attempt: attempt, initialization: initialization,
              direct_parents: ["reserve_inventory"],
              dependency_results: { "validate_order" => { "order_total_cents" => 5248 },
                                    "reserve_inventory" => { "reservation_id" => "res_x" } }))
    end

    def validate(context) = run("ecommerce::validate_order", ctx(context: context))

    it "validates an order and computes its totals" do
      expect(validate(order)).to eq("customer_id" => 7, "customer_email" => "ada@example.com",
                                    "item_count" => 3, "order_total_cents" => (2 * 1999) + 1250)
    end

    it "rejects bad quantities and overflowing totals" do
      expect { validate(order(items: [{ "sku" => "A", "quantity" => 0, "unit_price_cents" => 5 }])) }
        .to raise_error(Tasker::PermanentError, "item A has quantity 0")
      expect { validate(order(items: [{ "sku" => "A", "quantity" => 2**40, "unit_price_cents" => 2**40 }])) }
        .to raise_error(Tasker::PermanentError, "order total overflows")
    end

    it "fails permanently on a context that is not an order" do
      context = order.except("payment")
      %w[ecommerce::validate_order ecommerce::reserve_inventory].each do |callable|
        expect { run(callable, ctx(context: context)) }
          .to raise_error(Tasker::PermanentError, "invalid task context: missing field `payment`")
      end
      expect { validate(order(items: [{ "sku" => "A", "quantity" => "2", "unit_price_cents" => 1 }])) }
        .to raise_error(Tasker::PermanentError, "invalid task context: `quantity` must be a 64-bit integer")
      expect { validate([1, 2]) }.to raise_error(Tasker::PermanentError, /invalid task context: expected an object/)
    end

    it "derives a stable reservation" do
      expect(run("ecommerce::reserve_inventory", ctx(context: order, initialization: { "warehouse" => "east" })))
        .to eq("reservation_id" => "res_a1b2c3d4e5f6", "warehouse" => "east", "skus" => %w[BOOK-42 MUG-7])
      expect(run("ecommerce::reserve_inventory", ctx(context: order))["warehouse"]).to eq("main")
    end

    it "fails permanently with code out_of_stock on an OOS- SKU" do
      items = [{ "sku" => "OK-1", "quantity" => 1, "unit_price_cents" => 1 },
               { "sku" => "OOS-9", "quantity" => 1, "unit_price_cents" => 1 }]
      expect { run("ecommerce::reserve_inventory", ctx(context: order(items: items))) }
        .to raise_error(Tasker::PermanentError, "OOS-9 is out of stock") { |e|
          expect(e.code).to eq("out_of_stock")
          expect(e.retryable?).to be(false)
        }
    end

    it "charges the order total" do
      expect(pay("tok_ok")).to eq("payment_id" => "pay_a1b2c3d4e5f6", "method" => "card",
                                  "amount_charged_cents" => 5248, "gateway" => "sandbox")
      expect(pay("tok_ok", initialization: {})["gateway"]).to be_nil
    end

    it "fails permanently on a declined card, on every attempt" do
      [1, 2].each do |attempt|
        expect { pay("tok_decline", attempt: attempt) }
          .to raise_error(Tasker::PermanentError, "card declined") { |e| expect(e.code).to eq("card_declined") }
      end
    end

    it "fails the first attempt only of a flaky gateway, with a retry hint" do
      expect { pay("tok_flaky", attempt: 1) }
        .to raise_error(Tasker::RetryableError, "payment gateway unavailable (503)") { |e|
          expect(e.retryable?).to be(true)
          expect(e.retry_after).to eq(0.05)
          expect(e.code).to eq("gateway_unavailable")
        }
      expect(pay("tok_flaky", attempt: 2)["amount_charged_cents"]).to eq(5248)
    end

    it "needs the results of the payment's ancestors" do
      context = ctx(context: order, dependency_results: { "validate_order" => { "order_total_cents" => 1 } })
      expect { run("ecommerce::process_payment", context) }
        .to raise_error(Tasker::PermanentError, "`reserve_inventory` result has no `reservation_id`")
    end

    it "ships by the shipping method" do
      paid = { "process_payment" => { "payment_id" => "pay_x" } }
      expect(run("ecommerce::ship_order", ctx(context: order, dependency_results: paid)))
        .to eq("tracking_number" => "TRKA1B2C3D4E5F6", "address" => "1 Infinite Loop",
               "shipping_method" => "express", "estimated_days" => 1)
      standard = order(shipping: { "address" => "2 Main St", "method" => "standard" })
      expect(run("ecommerce::ship_order", ctx(context: standard, dependency_results: paid))["estimated_days"]).to eq(5)
      expect { run("ecommerce::ship_order", ctx(context: order)) }
        .to raise_error(Tasker::PermanentError, "`process_payment` result has no `payment_id`")
    end
  end

  describe "approvals" do
    routing_init = { "auto_approve_below" => 1000, "finance_review_from" => 5000 }

    def request(amount, requester = "ada")
      { "amount" => amount, "requester" => requester, "purpose" => "travel" }
    end

    def validate(context) = Examples::Approvals::ValidateRequest.new.call(ctx(context: context))

    define_method(:routing) do |amount, initialization = routing_init|
      Examples::Approvals::RoutingDecision.new.call(
        ctx(initialization: initialization, direct_parents: ["validate_request"],
            dependency_results: { "validate_request" => request(amount) })
      )
    end

    it "validates a request" do
      expect(validate(request(500))).to eq(request(500))
      expect { validate(request(-1)) }.to raise_error(Tasker::PermanentError, "amount must not be negative")
      expect { validate(request(5, "  \u00a0")) }.to raise_error(Tasker::PermanentError, "requester is required")
      expect { validate({ "amount" => 5, "requester" => "ada" }) }
        .to raise_error(Tasker::PermanentError, "invalid task context: missing field `purpose`")
    end

    { 500 => %w[auto_approve], 3000 => %w[manager_approval], 10_000 => %w[manager_approval finance_review],
      999 => %w[auto_approve], 1000 => %w[manager_approval], 4999 => %w[manager_approval],
      5000 => %w[manager_approval finance_review] }.each do |amount, steps|
      it "routes #{amount} to exactly #{steps.join(' + ')}" do
        decision = routing(amount)
        expect(decision).to be_a(Tasker::Success)
        expect(decision.control).to eq("type" => "decision", "outcome" => "create_steps", "steps" => steps)
        expect(decision.result).to eq("amount" => amount, "route" => steps)
      end
    end

    it "routes with the default thresholds when the initialization has none" do
      expect(routing(999, {}).control["steps"]).to eq(%w[auto_approve])
      expect(routing(5000, { "finance_review_from" => 6000 }).control["steps"]).to eq(%w[manager_approval])
      expect { routing(5, { "auto_approve_below" => "10" }) }
        .to raise_error(Tasker::PermanentError,
                        "invalid handler initialization: `auto_approve_below` must be a 64-bit integer")
      expect { routing(5, [1]) }
        .to raise_error(Tasker::PermanentError, "invalid handler initialization: expected an object")
    end

    it "needs the validated amount" do
      expect { Examples::Approvals::RoutingDecision.new.call(ctx(initialization: routing_init)) }
        .to raise_error(Tasker::PermanentError, "validate_request gave no amount")
    end

    it "records who approved" do
      validated = { "validate_request" => request(3000) }
      { Examples::Approvals::AutoApprove => "policy", Examples::Approvals::ManagerApproval => "manager",
        Examples::Approvals::FinanceReview => "finance" }.each do |handler, by|
        expect(handler.new.call(ctx(direct_parents: ["routing_decision"], dependency_results: validated)))
          .to eq("approved" => true, "approved_by" => by, "amount" => 3000)
      end
      expect { Examples::Approvals::ManagerApproval.new.call(ctx) }
        .to raise_error(Tasker::PermanentError, "validate_request gave no amount")
    end

    it "finalizes with the approvals that ran" do
      finalize = lambda do |ran|
        results = { "validate_request" => request(10_000), "routing_decision" => {} }.merge(ran)
        Examples::Approvals::FinalizeApproval.new.call(ctx(direct_parents: ran.keys, dependency_results: results))
      end
      approval = { "approved" => true, "approved_by" => "x", "amount" => 10_000 }
      expect(finalize.call("finance_review" => approval, "manager_approval" => approval))
        .to eq("approved" => true, "approvals" => %w[manager_approval finance_review], "amount" => 10_000)
      expect(finalize.call("manager_approval" => approval, "finance_review" => { "approved" => false })["approved"])
        .to be(false)
      expect { finalize.call({}) }.to raise_error(Tasker::PermanentError, "no approval step ran")
    end

    it "runs the workflow end to end in memory" do
      { 500 => %w[auto_approve], 3000 => %w[manager_approval],
        10_000 => %w[manager_approval finance_review] }.each do |amount, expected|
        results = { "validate_request" => run("approvals::validate_request", ctx(context: request(amount))) }
        decision = run("approvals::routing_decision",
                       ctx(initialization: routing_init, direct_parents: ["validate_request"],
                           dependency_results: results))
        results["routing_decision"] = decision.result
        decision.control["steps"].each do |step|
          results[step] = run("approvals::#{step}",
                              ctx(direct_parents: ["routing_decision"], dependency_results: results))
        end
        final = run("approvals::finalize_approval",
                    ctx(direct_parents: decision.control["steps"], dependency_results: results))
        expect(final).to eq("approved" => true, "approvals" => expected, "amount" => amount)
      end
    end
  end

  describe "csv" do
    csv_batch_config = { "worker_template" => "process_csv_batch", "parallelism" => 4, "batch_size" => 200,
                         "failure_strategy" => "fail_fast" }
    rows = CSV.read(sample_csv, headers: true)

    # Totals of data rows first..last, computed independently.
    define_method(:file_totals) do |first = 1, last = 1000|
      slice = rows[(first - 1)...last]
      { "rows_processed" => slice.size,
        "total_quantity" => slice.sum { |r| Integer(r["quantity"]) },
        "total_value_cents" => slice.sum { |r| Integer(r["quantity"]) * Integer(r["unit_price_cents"]) } }
    end

    define_method(:batch_ctx) do |start, finish, batch_id = "001", attempt: 1, checkpoint: nil, every: 50, **context|
      ctx(step_name: "process_csv_batch_#{batch_id}",
          context: { "csv_file_path" => sample_csv }.merge(context.transform_keys(&:to_s)),
          initialization: every.nil? ? {} : { "checkpoint_every" => every },
          attempt: attempt,
          batch_cursor: { "batch_id" => batch_id, "start_cursor" => start, "end_cursor" => finish,
                          "batch_size" => finish - start },
          checkpoint: checkpoint,
          direct_parents: ["analyze_csv"],
          dependency_results: { "analyze_csv" => { "csv_file_path" => sample_csv, "total_rows" => 1000 } })
    end

    define_method(:analyze) do |path = sample_csv, batch_config: csv_batch_config|
      Examples::CsvBatch::AnalyzeCsv.new.call(ctx(context: { "csv_file_path" => path }, batch_config: batch_config))
    end

    def process(context) = Examples::CsvBatch::ProcessCsvBatch.new.call(context)

    it "reads the sample file's thousand well-formed rows" do
      lines = Examples::CsvBatch.read_rows(sample_csv)
      expect(lines.size).to eq(1000)
      totals = lines.each_with_index.map { |line, i| Examples::CsvBatch.row_totals(line, i + 1) }
      expect(totals.sum(&:value_cents)).to eq(file_totals["total_value_cents"])
      expect(Examples::CsvBatch::SAMPLE_CSV).to eq(sample_csv)
    end

    it "plans batches of 200 over the file" do
      plan = analyze
      expect(plan.result).to eq("csv_file_path" => sample_csv, "total_rows" => 1000)
      expect(plan.control).to eq(
        "type" => "batches", "outcome" => "create_batches", "worker_count" => 5,
        "cursor_configs" => Array.new(5) do |i|
          { "batch_id" => format("%03d", i + 1), "start_cursor" => i * 200, "end_cursor" => (i + 1) * 200,
            "batch_size" => 200 }
        end
      )
      # Without a batch config, 100 rows a batch.
      expect(run("csv::analyze_csv", ctx(context: { "csv_file_path" => sample_csv })).control["worker_count"]).to eq(10)
    end

    it "plans cursors that cover the rows once" do
      cursors = Tasker::Batchable.cursors(1000, 300)
      expect(cursors.map { |c| [c.start_cursor, c.end_cursor] }).to eq([[0, 300], [300, 600], [600, 900], [900, 1000]])
      expect(cursors[3].batch_id).to eq("004")
      expect(Tasker::Batchable.cursors(0, 100)).to eq([])
      expect(Tasker::Batchable.cursors(3, 0).size).to eq(3) # a batch size below 1 counts as 1
    end

    it "plans no batches for a file without rows, and fails permanently on a missing file" do
      Dir.mktmpdir do |dir|
        empty = File.join(dir, "empty.csv")
        File.write(empty, "sku,name,category,quantity,unit_price_cents\n\n \r\n")
        plan = analyze(empty)
        expect(plan.control).to eq("type" => "batches", "outcome" => "no_batches")
        expect(plan.result).to eq("csv_file_path" => empty, "total_rows" => 0)
        expect { analyze(File.join(dir, "nope.csv")) }.to raise_error(Tasker::PermanentError, /cannot read/)
        File.binwrite(File.join(dir, "latin1.csv"), "sku\n\xE9\n")
        expect { analyze(File.join(dir, "latin1.csv")) }.to raise_error(Tasker::PermanentError, /not valid UTF-8/)
      end
      expect { Examples::CsvBatch::AnalyzeCsv.new.call(ctx(context: {})) }
        .to raise_error(Tasker::PermanentError, "invalid task context: missing field `csv_file_path`")
    end

    it "totals a batch's range and checkpoints every checkpoint_every rows, not at its end" do
      context = batch_ctx(200, 400, "002")
      expect(process(context)).to eq({ "batch_id" => "002", "first_row" => 201, "last_row" => 400,
                                       "resumed_from_row" => 201 }.merge(file_totals(201, 400)))
      saved = context.saved_checkpoints
      expect(saved.map(&:cursor)).to eq([250, 300, 350])
      expect(saved.map(&:items_processed)).to eq([50, 100, 150])
      first50 = file_totals(201, 250)
      expect(saved.first.partial_results).to eq("rows" => 50, "quantity" => first50["total_quantity"],
                                                "value_cents" => first50["total_value_cents"])
    end

    it "checkpoints every 100 rows by default" do
      context = batch_ctx(0, 250, every: nil)
      process(context)
      expect(context.saved_checkpoints.map(&:cursor)).to eq([100, 200])
    end

    it "adds the batches up to the file's totals" do
      plan = analyze
      results = { "analyze_csv" => plan.result }
      plan.control["cursor_configs"].each do |c|
        results["process_csv_batch_#{c['batch_id']}"] =
          run("csv::process_csv_batch", batch_ctx(c["start_cursor"], c["end_cursor"], c["batch_id"]))
      end
      names = results.keys.grep(/\Aprocess_csv_batch_/).sort
      total = run("csv::aggregate_results", ctx(direct_parents: names, dependency_results: results))
      expected = file_totals
      expect(total).to eq("batches" => 5, "failed_batches" => [], "total_rows" => 1000,
                          "total_quantity" => expected["total_quantity"],
                          "total_value_cents" => expected["total_value_cents"])
    end

    it "counts no row twice when it resumes from a checkpoint" do
      uninterrupted = process(batch_ctx(0, 200))
      first = batch_ctx(0, 200)
      process(first)
      expect(first.saved_checkpoints.size).to eq(3)
      first.saved_checkpoints.each do |checkpoint|
        resumed = process(batch_ctx(0, 200, attempt: 2, checkpoint: checkpoint.to_h))
        expect(resumed["resumed_from_row"]).to eq(checkpoint.cursor + 1)
        expect(resumed.slice("rows_processed", "total_quantity", "total_value_cents"))
          .to eq(uninterrupted.slice("rows_processed", "total_quantity", "total_value_cents"))
      end
    end

    it "fails the first attempt at fail_on_row after saving checkpoints, and the retry resumes" do
      # Batch 001 covers rows 1–200 and checkpoints every 50 rows: the first
      # attempt saves checkpoints at rows 50 and 100, then fails at row 130.
      first = batch_ctx(0, 200, fail_on_row: 130)
      expect { process(first) }
        .to raise_error(Tasker::RetryableError, "simulated crash at row 130") { |e| expect(e.retryable?).to be(true) }
      expect(first.saved_checkpoints.map(&:cursor)).to eq([50, 100])
      retry_ctx = batch_ctx(0, 200, attempt: 2, fail_on_row: 130, checkpoint: first.saved_checkpoints.last.to_h)
      expect(process(retry_ctx)).to eq({ "batch_id" => "001", "first_row" => 1, "last_row" => 200,
                                         "resumed_from_row" => 101 }.merge(file_totals(1, 200)))
      expect(retry_ctx.saved_checkpoints.map(&:cursor)).to eq([150])
      # Other batches never reach row 130.
      expect(process(batch_ctx(200, 400, "002", fail_on_row: 130))["rows_processed"]).to eq(200)
    end

    it "fails the fail_batch batch permanently, and convergence reports it" do
      expect { process(batch_ctx(200, 400, "002", attempt: 3, fail_batch: "002")) }
        .to raise_error(Tasker::PermanentError, "batch 002 is marked to fail")
      ok = process(batch_ctx(0, 200, "001", fail_batch: "002"))
      total = Examples::CsvBatch::AggregateResults.new.call(
        ctx(direct_parents: ["process_csv_batch_001"],
            dependency_results: { "process_csv_batch_001" => ok, "analyze_csv" => { "total_rows" => 1000 } },
            failed_parents: { "process_csv_batch_002" => { "message" => "batch 002 is marked to fail" } })
      )
      expect(total).to include("batches" => 1, "failed_batches" => ["process_csv_batch_002"], "total_rows" => 200,
                               "total_value_cents" => file_totals(1, 200)["total_value_cents"])
    end

    it "fails permanently on bad cursors and checkpoints" do
      expect { process(batch_ctx(-1, 200)) }.to raise_error(Tasker::PermanentError, "batch cursors must be row indexes")
      expect { process(batch_ctx(900, 1100)) }.to raise_error(Tasker::PermanentError, "row 1001 is past the end")
      bad = { "cursor" => 50, "items_processed" => 50, "partial_results" => { "rows" => 50 } }
      expect { process(batch_ctx(0, 200, attempt: 2, checkpoint: bad)) }
        .to raise_error(Tasker::PermanentError, "checkpoint does not parse: missing field `quantity`")
      expect { process(ctx(context: { "csv_file_path" => sample_csv })) }
        .to raise_error(Tasker::PermanentError, /has no batch cursor/)
    end

    it "fails permanently on a malformed row" do
      Dir.mktmpdir do |dir|
        bad = File.join(dir, "bad.csv")
        File.write(bad, "sku,name,category,quantity,unit_price_cents\nA,a,c, +1 ,2\nB,b,c,1_000,2\n")
        cursor = { "batch_id" => "001", "start_cursor" => 0, "end_cursor" => 2, "batch_size" => 2 }
        expect { process(ctx(context: { "csv_file_path" => bad }, batch_cursor: cursor)) }
          .to raise_error(Tasker::PermanentError, "row 2: `quantity` is not an integer")
      end
      expect(Examples::CsvBatch.row_totals("A,a,c,\t+007 ,-3", 1).to_a).to eq([1, 7, -21])
      expect { Examples::CsvBatch.row_totals("A,a,c,#{2**62},4", 1) }
        .to raise_error(Tasker::PermanentError, "row 1: value overflows")
      expect { Examples::CsvBatch.row_totals("A,a,c,#{2**63},1", 1) }
        .to raise_error(Tasker::PermanentError, "row 1: `quantity` is not an integer")
      expect { Examples::CsvBatch.row_totals("A,a,c,1", 1) }
        .to raise_error(Tasker::PermanentError, "row 1: `unit_price_cents` is not an integer")
    end
  end

  describe "parity" do
    def parity_batch_config(worker)
      { "worker_template" => worker, "parallelism" => 3, "batch_size" => 5, "failure_strategy" => "fail_fast" }
    end

    # Runs the diamond_decision_batch workflow in memory; every result.
    def run_parity(values)
      results = { "diamond_start" => run("parity::load_numbers", ctx(context: { "numbers" => values })) }
      { "branch_evens" => "parity::select_evens", "branch_odds" => "parity::select_odds" }.each do |step, callable|
        results[step] = run(callable, ctx(direct_parents: ["diamond_start"], dependency_results: results))
      end
      decision = run("parity::choose_dominant",
                     ctx(direct_parents: %w[branch_evens branch_odds], dependency_results: results))
      results["routing_decision"] = decision.result
      analyzer, = decision.control["steps"]
      source, worker = { "even_batch_analyzer" => %w[branch_evens even_batch_worker],
                         "odd_batch_analyzer" => %w[branch_odds odd_batch_worker] }.fetch(analyzer)
      plan = run("parity::plan_batches",
                 ctx(initialization: { "source" => source }, batch_config: parity_batch_config(worker),
                     direct_parents: ["routing_decision"], dependency_results: results))
      results[analyzer] = plan.result
      workers = plan.control.fetch("cursor_configs", []).map do |cursor|
        name = "#{worker}_#{cursor['batch_id']}"
        results[name] = run("parity::process_batch",
                            ctx(batch_cursor: cursor, direct_parents: [analyzer], dependency_results: results))
        name
      end
      results.merge("final_convergence" => run("parity::combine_batches",
                                               ctx(direct_parents: workers, dependency_results: results)))
    end

    it "splits the numbers by parity" do
      expect(run("parity::load_numbers", ctx(context: { "numbers" => [1, 2, -3, -4] })))
        .to eq("numbers" => [1, 2, -3, -4])
      start = { "diamond_start" => { "numbers" => [1, 2, -3, -4, 0] } }
      expect(run("parity::select_evens", ctx(dependency_results: start))).to eq("numbers" => [2, -4, 0], "count" => 3)
      expect(run("parity::select_odds", ctx(dependency_results: start))).to eq("numbers" => [1, -3], "count" => 2)
      expect { run("parity::load_numbers", ctx(context: { "numbers" => [1, 2.5] })) }
        .to raise_error(Tasker::PermanentError, "`the task context` gave a non-integer")
      expect { run("parity::select_evens", ctx) }
        .to raise_error(Tasker::PermanentError, "`diamond_start` gave no numbers")
    end

    it "decides for the dominant parity, evens on a tie" do
      decide = lambda do |evens, odds|
        run("parity::choose_dominant",
            ctx(dependency_results: { "branch_evens" => { "numbers" => [2] * evens, "count" => evens },
                                      "branch_odds" => { "numbers" => [1] * odds, "count" => odds } }))
      end
      expect(decide.call(3, 2).control["steps"]).to eq(["even_batch_analyzer"])
      expect(decide.call(2, 2).control["steps"]).to eq(["even_batch_analyzer"])
      odd = decide.call(1, 7)
      expect(odd.control).to eq("type" => "decision", "outcome" => "create_steps", "steps" => ["odd_batch_analyzer"])
      expect(odd.result).to eq("dominant" => "odd", "even_count" => 1, "odd_count" => 7)
    end

    it "plans batches numbered from 0" do
      evens = (1..12).map { |n| 2 * n }
      plan = run("parity::plan_batches",
                 ctx(initialization: { "source" => "branch_evens" }, batch_config: parity_batch_config("w"),
                     dependency_results: { "branch_evens" => { "numbers" => evens, "count" => 12 } }))
      expect(plan.result).to eq("source" => "branch_evens", "numbers" => evens)
      expect(plan.control["worker_count"]).to eq(3)
      expect(plan.control["cursor_configs"]).to eq(
        [{ "batch_id" => "0", "start_cursor" => 0, "end_cursor" => 5, "batch_size" => 5 },
         { "batch_id" => "1", "start_cursor" => 5, "end_cursor" => 10, "batch_size" => 5 },
         { "batch_id" => "2", "start_cursor" => 10, "end_cursor" => 12, "batch_size" => 5 }]
      )
      empty = run("parity::plan_batches", ctx(initialization: { "source" => "branch_odds" },
                                              dependency_results: { "branch_odds" => { "numbers" => [] } }))
      expect(empty.control).to eq("type" => "batches", "outcome" => "no_batches")
      expect { run("parity::plan_batches", ctx(initialization: {})) }
        .to raise_error(Tasker::PermanentError, "invalid handler initialization: missing field `source`")
    end

    it "sums a batch worker's slice" do
      planned = { "even_batch_analyzer" => { "source" => "branch_evens", "numbers" => [2, 4, 6, 8, 10, 12] } }
      cursor = { "batch_id" => "1", "start_cursor" => 5, "end_cursor" => 6, "batch_size" => 5 }
      worker = lambda do |batch_cursor, parents = planned|
        run("parity::process_batch",
            ctx(batch_cursor: batch_cursor, direct_parents: parents.keys, dependency_results: parents))
      end
      expect(worker.call(cursor)).to eq("batch_id" => "1", "count" => 1, "sum" => 12, "sum_of_squares" => 144)
      expect { worker.call(cursor.merge("end_cursor" => 7)) }
        .to raise_error(Tasker::PermanentError, "cursor outside the numbers")
      expect { worker.call(cursor.merge("start_cursor" => "5")) }
        .to raise_error(Tasker::PermanentError, "cursors must be indexes")
      expect { worker.call(cursor, {}) }.to raise_error(Tasker::PermanentError, "a batch worker needs its analyzer")
      big = { "a" => { "numbers" => [3_037_000_500] } }
      expect { worker.call(cursor.merge("start_cursor" => 0, "end_cursor" => 1), big) }
        .to raise_error(Tasker::PermanentError, "sum of squares overflows")
    end

    it "follows the dominant parity through the whole workflow" do
      values = [2, 4, 6, 8, 10, 12, 14, 1, 3, 5]
      evens = values.select(&:even?)
      results = run_parity(values)
      expect(results).to include("even_batch_worker_0", "even_batch_worker_1")
      expect(results["final_convergence"]).to eq("dominant" => "even", "batches" => 2, "count" => evens.size,
                                                 "sum" => evens.sum, "sum_of_squares" => evens.sum { |n| n * n })
      odds = [1, 3, 5, 7, 9, 11, 13, 2, 4]
      final = run_parity(odds)["final_convergence"]
      expect(final).to include("dominant" => "odd", "count" => 7,
                               "sum_of_squares" => odds.select(&:odd?).sum { |n| n * n })
    end
  end
end
