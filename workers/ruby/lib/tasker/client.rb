# frozen_string_literal: true

require "json"
require "net/http"
require "timeout"
require "uri"

module Tasker
  # A small client for Tasker's REST API: submit a task, read it, wait for
  # it — enough for a Ruby service to hand work to Tasker without another
  # library. Methods return the API's JSON as hashes with string keys (the
  # task view of SPEC §8.1: "task_uuid", "state", "steps", …).
  #
  #   client = Tasker::Client.new("http://127.0.0.1:8080")
  #   task = client.create_task("ecommerce", "order_fulfillment", { "items" => [...] })
  #   done = client.wait(task["task_uuid"], timeout: 60)
  class Client
    # The server answered with an error.
    class ApiError < StandardError
      # @return [Integer] the HTTP status
      attr_reader :status
      # @return [String] the stable error code ("duplicate_task", "schema_mismatch", …)
      attr_reader :code
      # @return [Object, nil]
      attr_reader :details

      def initialize(status, code, message, details = nil)
        super("#{message} (#{status} #{code})")
        @status = status
        @code = code
        @details = details
      end
    end

    # The server could not be reached or did not answer in time.
    class TransportError < StandardError; end

    # The states from which a task does not move on by itself.
    TERMINAL_STATES = Native.terminal_task_states.freeze

    # @return [URI::Generic]
    attr_reader :url

    # @param url [String] the server's base URL
    # @param timeout [Numeric] seconds to wait for each response
    def initialize(url, timeout: 30)
      @url = URI.parse(url.to_s.chomp("/"))
      raise ArgumentError, "`#{url}` is not an http(s) URL" unless %w[http https].include?(@url.scheme) && @url.host

      @timeout = timeout
    end

    # Creates a task of template +namespace/name+ (the newest version unless +version:+).
    # @raise [ApiError] "template_not_found", "schema_mismatch", "duplicate_task" (details carry
    #   the existing "task_uuid"), …
    # @return [Hash] the task view
    def create_task(namespace, name, context = {}, version: nil, initiator: nil, source_system: nil,
                    reason: nil, tags: nil, priority: nil, correlation_id: nil, idempotency_key: nil)
      body = { "namespace" => namespace, "name" => name, "context" => context,
               "version" => version, "initiator" => initiator, "source_system" => source_system,
               "reason" => reason, "tags" => tags, "priority" => priority,
               "correlation_id" => correlation_id, "idempotency_key" => idempotency_key }.compact
      call(:post, "/v1/tasks", body)
    end

    # @return [Hash] the task view, with its steps
    def get_task(task_uuid)
      call(:get, "/v1/tasks/#{escape(task_uuid)}")
    end

    # @param filters [Hash] namespace:, name:, state:, since:, limit:, offset:
    # @return [Hash]
    def list_tasks(**filters)
      query = URI.encode_www_form(filters.compact)
      call(:get, query.empty? ? "/v1/tasks" : "/v1/tasks?#{query}")
    end

    # Cancels a task that has not finished.
    # @return [Hash]
    def cancel_task(task_uuid, reason: nil)
      query = reason ? "?#{URI.encode_www_form(reason: reason)}" : ""
      call(:delete, "/v1/tasks/#{escape(task_uuid)}#{query}")
    end

    # @return [Array<Hash>] the task's steps
    def list_steps(task_uuid)
      call(:get, "/v1/tasks/#{escape(task_uuid)}/workflow_steps")
    end

    # @return [Hash] a step's attempts and state transitions
    def step_audit(task_uuid, step_uuid)
      call(:get, "/v1/tasks/#{escape(task_uuid)}/workflow_steps/#{escape(step_uuid)}/audit")
    end

    # Registers a template given as YAML (idempotent for the same content).
    # @return [Hash]
    def register_template(yaml)
      call(:post, "/v1/templates", yaml, "application/yaml")
    end

    # Waits for the task to finish and returns its view.
    # @raise [Timeout::Error] it had not finished after +timeout+ seconds
    # @return [Hash]
    def wait(task_uuid, timeout: 60, poll_interval: 0.1)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        task = get_task(task_uuid)
        return task if TERMINAL_STATES.include?(task["state"])
        if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
          raise Timeout::Error, "task #{task_uuid} is still #{task['state']} after #{timeout} s"
        end

        sleep poll_interval
      end
    end

    # @return [Hash] GET /health/detailed (an unhealthy report is returned, not raised)
    def health
      call(:get, "/health/detailed", accept_unavailable: true)
    end

    private

    def escape(segment)
      URI.encode_www_form_component(segment.to_s)
    end

    def call(method, path, body = nil, content_type = "application/json", accept_unavailable: false)
      request = Net::HTTP.const_get(method.to_s.capitalize).new(path)
      request["Accept"] = "application/json"
      unless body.nil?
        request["Content-Type"] = content_type
        request.body = body.is_a?(String) ? body : JSON.generate(body)
      end
      response = Net::HTTP.start(@url.host, @url.port, use_ssl: @url.scheme == "https",
                                                       open_timeout: @timeout, read_timeout: @timeout) do |http|
        http.request(request)
      end
      status = response.code.to_i
      return decode(status, response.body) if status < 400 || (accept_unavailable && status == 503)

      raise api_error(status, response.body)
    rescue SystemCallError, IOError, Timeout::Error, SocketError => e
      raise TransportError, "cannot reach the Tasker server at #{@url}: #{e.message}"
    end

    def decode(status, body)
      return nil if body.nil? || body.empty?

      JSON.parse(body)
    rescue JSON::ParserError
      raise ApiError.new(status, "unexpected_response", body[0, 200])
    end

    def api_error(status, body)
      error = JSON.parse(body).fetch("error")
      ApiError.new(status, error.fetch("code", "unknown"), error.fetch("message", ""), error["details"])
    rescue JSON::ParserError, KeyError, TypeError, NoMethodError
      ApiError.new(status, "unexpected_response", body.to_s[0, 200])
    end
  end
end
