# frozen_string_literal: true

require "json"
require "logger"

module Tasker
  # Runs the handlers of a {Registry} on Tasker's worker core, which claims
  # steps, keeps their leases, enforces timeouts and writes results.
  #
  # +worker.concurrency+ Ruby threads each wait for a step (with the GVL
  # released, so other threads run), run its handler and hand back the
  # outcome. The core never hands out more steps than +worker.concurrency+,
  # counting handlers that overran their timeout until they return, so a
  # thread is always free for the next step.
  #
  # Configuration comes from Tasker's TOML layers and environment (as for
  # every Tasker process: TASKER_ENV, TASKER_CONFIG_DIR, DATABASE_URL,
  # TASKER_TEMPLATE_PATH, …); keyword arguments win over them.
  #
  #   worker = Tasker::Worker.new(concurrency: 8)
  #   worker.run            # blocks; SIGTERM / Ctrl-C drain and stop it
  #
  #   worker = Tasker::Worker.new.start   # or in the background
  #   ...
  #   worker.stop
  class Worker
    # How long one poll waits for work (GVL released) before it looks again.
    POLL_WAIT_MS = 1000
    # How often the main thread of {#run} wakes to act on signals.
    SIGNAL_CHECK_MS = 100
    # How long {#stop} waits for handler threads to leave their poll loops.
    CLOSE_WAIT_S = 2.0

    # @return [Registry]
    attr_reader :registry

    # @param registry [Registry] the handlers to serve (default {Tasker.registry})
    # @param concurrency [Integer, nil] handlers running at once (+worker.concurrency+)
    # @param namespaces [Array<String>, nil] namespaces to serve; by default every
    #   namespace whose templates this worker can serve
    # @param template_paths [Array<String>, nil] template files or directories to register at start
    # @param database_url [String, nil] the PostgreSQL to use (+database.url+)
    # @param environment [String, nil] the configuration environment (TASKER_ENV)
    # @param config_dir [String, nil] a directory of TOML overrides (TASKER_CONFIG_DIR)
    # @param config [Hash] any other settings by dotted key, +{"worker.lease_ms" => 10_000}+
    # @param include_builtins [Boolean] also serve Rust's built-in +tasker::*+ handlers
    # @param logger [Logger]
    def initialize(registry: Tasker.registry, concurrency: nil, namespaces: nil, template_paths: nil,
                   database_url: nil, environment: nil, config_dir: nil, config: {},
                   include_builtins: false, logger: Logger.new($stderr, progname: "tasker"))
      @registry = registry
      @overrides = config.to_h.transform_keys(&:to_s)
      @overrides["worker.concurrency"] = concurrency unless concurrency.nil?
      @overrides["worker.namespaces"] = namespaces.map(&:to_s) unless namespaces.nil?
      @overrides["worker.template_paths"] = template_paths.map(&:to_s) unless template_paths.nil?
      @overrides["database.url"] = database_url unless database_url.nil?
      @environment = environment
      @config_dir = config_dir&.to_s
      @include_builtins = include_builtins
      @logger = logger
      @native = nil
      @threads = []
      @in_flight = {}
      @lock = Mutex.new
      @stop_requested = false
    end

    # Starts the worker in the background and returns (after it connected
    # and registered its templates).
    # @raise [ConfigError] the configuration is invalid
    # @raise [WorkerError] PostgreSQL is unreachable, a template is invalid, or nothing is registered
    # @return [self]
    def start
      open
      self
    end

    # Runs the worker until it is stopped, blocking this thread: by SIGTERM
    # or Ctrl-C (running handlers finish, for up to
    # +worker.shutdown_timeout_ms+; a second signal gives them up at once),
    # by a handler raising Interrupt or SystemExit, or by {#request_stop}.
    # @return [void]
    def run
      open
      native = @native
      signals = 0
      handled = 0
      previous = %w[TERM INT].to_h do |name|
        [name, Signal.trap(name) do
          # Trap context: no locks, no logging; act on it below.
          signals += 1
          native.stop
        end]
      end
      begin
        until native.wait_stopped(SIGNAL_CHECK_MS)
          next if signals == handled

          handled = signals
          if handled == 1
            @stop_requested = true
            @logger.info("stopping after running handlers finish (signal again to stop at once)")
          else
            @logger.warn("second signal: giving running steps back")
            abandon_in_flight
          end
        end
      ensure
        previous.each { |name, handler| Signal.trap(name, handler || "DEFAULT") }
      end
      close
    end

    # Stops the worker: no new claims, running handlers finish (for up to
    # +worker.shutdown_timeout_ms+).
    # @param timeout [Numeric, nil] seconds to wait (nil: as long as that takes)
    # @return [Boolean] whether it stopped in time
    def stop(timeout: nil)
      request_stop
      return true if @native.nil?

      limit_ms = timeout.nil? ? 2**31 : [(timeout * 1000).to_i, 0].max
      return false unless @native.wait_stopped(limit_ms)

      close
      true
    end

    # Asks the worker to stop (returns at once); safe from any thread.
    # @return [void]
    def request_stop
      @stop_requested = true
      @native&.stop
    end

    # @return [String] this worker's id, as recorded in claims and transitions
    def worker_id
      native.worker_id
    end

    # State ("running" / "stopping" / "stopped"), id, concurrency, dispatches
    # by state and totals ("dispatched", "completed", "refused" — late results
    # discarded —, "abandoned"), and "handlers_running".
    # @return [Hash]
    def status
      status = JSON.parse(native.status_json)
      status["handlers_running"] = @lock.synchronize { @in_flight.size }
      status
    end

    private

    def native
      @native or raise WorkerError, "the worker is not started: call start or run first"
    end

    def open
      raise WorkerError, "this worker was started already; make a new Worker to run again" if @native

      callables = @registry.callables
      if callables.empty? && !@include_builtins
        raise WorkerError, "no handlers are registered: require the file that defines them " \
                           "(tasker-ruby-worker --require ./app/handlers.rb) or pass a Registry"
      end
      # The handlers as they are now: one instance each, looked up without a lock.
      @handlers = callables.to_h { |callable| [callable, @registry[callable]] }.freeze
      @native = Native::Worker.start(callables, @environment, @config_dir, JSON.generate(@overrides),
                                     @include_builtins)
      concurrency = JSON.parse(@native.status_json).fetch("concurrency")
      @threads = Array.new(concurrency) do |i|
        Thread.new(@native) do |native|
          Thread.current.name = "tasker-handler-#{i}"
          Thread.current.report_on_exception = true
          poll_loop(native)
        end
      end
      @logger.info("ruby worker running (worker_id=#{@native.worker_id}, concurrency=#{concurrency}, " \
                   "#{callables.size} callables)")
    end

    def close
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + CLOSE_WAIT_S
      @threads.each do |thread|
        thread.join([deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max)
      end
      @threads = []
    end

    # One handler thread: wait for a step, run it, repeat until the core has
    # stopped (it drains first: steps dispatched before stopping arrive).
    def poll_loop(native)
      loop do
        batch = native.poll(1, POLL_WAIT_MS)
        break if batch.nil?

        batch.each { |dispatch_id, callable, context_json| dispatch(native, dispatch_id, callable, context_json) }
      end
    end

    def dispatch(native, dispatch_id, callable, context_json)
      @lock.synchronize { @in_flight[dispatch_id] = true }
      begin
        ctx = StepContext.new(JSON.parse(context_json), native, dispatch_id)
      rescue StandardError => e
        settle_exception(native, dispatch_id, nil, e)
        return
      end
      handler = @handlers[callable]
      if handler.nil?
        # The core dispatches only the callables this worker registered at
        # start; this is a safety net, not a path.
        missing = PermanentError.new("no Ruby handler is registered for `#{callable}`",
                                     error_type: "handler_not_found")
        return settle(native, dispatch_id, ctx, Outcome.failure(missing))
      end
      run_handler(native, handler, dispatch_id, ctx)
    ensure
      @lock.synchronize { @in_flight.delete(dispatch_id) }
    end

    def run_handler(native, handler, dispatch_id, ctx)
      value = handler.call(ctx)
    rescue StepError => e
      settle(native, dispatch_id, ctx, Outcome.failure(e))
    rescue Interrupt, SystemExit, SignalException => e
      give_back(native, dispatch_id, ctx, e)
    rescue Exception => e # rubocop:disable Lint/RescueException -- every failure becomes the step's outcome
      settle_exception(native, dispatch_id, ctx, e)
    else
      settle(native, dispatch_id, ctx, Outcome.success(value))
    end

    def settle(native, dispatch_id, ctx, envelope)
      log_refused(ctx) unless Outcome.deliver(native, dispatch_id, envelope)
    rescue WorkerError => e
      @logger.error("completing step #{ctx&.step_uuid} failed: #{e.message}")
    end

    def settle_exception(native, dispatch_id, ctx, exception)
      log_refused(ctx) unless Outcome.deliver_exception(native, dispatch_id, exception)
    rescue WorkerError => e
      @logger.error("failing step #{ctx&.step_uuid} failed: #{e.message}")
    end

    def give_back(native, dispatch_id, ctx, exception)
      @logger.warn("#{exception.class} in the handler of step #{ctx.step_name} (#{ctx.step_uuid}, " \
                   "attempt #{ctx.attempt}): stopping the worker; the step is given back and will be re-claimed")
      begin
        native.abandon(dispatch_id)
      rescue WorkerError
        nil
      end
      request_stop
    end

    def log_refused(ctx)
      return if ctx.nil?

      @logger.warn("result of step #{ctx.step_name} (#{ctx.step_uuid}, attempt #{ctx.attempt}) discarded: " \
                   "the attempt was over (it timed out, its task was cancelled or it lost its lease)")
    end

    def abandon_in_flight
      ids = @lock.synchronize { @in_flight.keys }
      ids.each do |dispatch_id|
        native.abandon(dispatch_id)
      rescue WorkerError
        nil
      end
    end
  end
end
