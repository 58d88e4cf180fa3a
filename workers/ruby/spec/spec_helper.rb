# frozen_string_literal: true

# End-to-end support: a fresh PostgreSQL database per example, a real
# tasker-server process on it, and Ruby workers (in this process, or as
# tasker-ruby-worker subprocesses) as the only workers.
#
# PostgreSQL: TASKER_TEST_DATABASE_URL or DATABASE_URL names a server where
# the specs may create databases; without either, the private cluster the
# Rust tests use (`tasker-ctl test-cluster` starts or finds it). psql must be
# on PATH. Binaries: TASKER_SERVER_BIN / TASKER_CTL_BIN, else target/debug/
# of this repository (built with cargo when missing).

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
$LOAD_PATH.unshift(File.expand_path("..", __dir__))

require "fileutils"
require "json"
require "open3"
require "socket"
require "tmpdir"
require "uri"
require "net/http"
ENV["RUST_LOG"] ||= "warn" # the core logs to stderr; quiet in specs
require "tasker"

require "examples/all"
require "spec/support/faults"

module TaskerSpec
  RUBY_WORKER = File.expand_path("..", __dir__)
  REPO = File.expand_path("../..", RUBY_WORKER)
  TEMPLATES = [File.join(REPO, "config", "tasks"), File.join(REPO, "workers", "tests", "templates")].freeze
  SAMPLE_CSV = File.join(REPO, "workers", "rust", "data", "products.csv")

  module_function

  def binary(name, package, variable)
    configured = ENV.fetch(variable, nil)
    return configured if configured && !configured.empty?

    path = File.join(REPO, "target", "debug", name)
    system("cargo", "build", "-p", package, "--bin", name, chdir: REPO, exception: true) unless File.exist?(path)
    path
  end

  def admin_url
    @admin_url ||= begin
      configured = ENV["TASKER_TEST_DATABASE_URL"] || ENV.fetch("DATABASE_URL", nil)
      if configured && !configured.empty?
        configured
      else
        out, err, status = Open3.capture3(binary("tasker-ctl", "tasker-ctl", "TASKER_CTL_BIN"), "test-cluster")
        raise "no DATABASE_URL, and the private test cluster did not start:\n#{err}" unless status.success?

        out.strip
      end
    end
  end

  def with_database(url, database)
    uri = URI.parse(url)
    uri.path = "/#{database}"
    uri.to_s
  end

  def psql(sql)
    _out, err, status = Open3.capture3("psql", admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql)
    raise "psql failed for `#{sql}`: #{err.strip}" unless status.success?
  end

  def server_binary
    @server_binary ||= binary("tasker-server", "tasker-orchestration", "TASKER_SERVER_BIN")
  end

  # A migrated database the tests clone, made once per run.
  def template
    @template ||= begin
      name = "tasker_rspec_tpl_#{Process.pid}"
      psql("DROP DATABASE IF EXISTS #{name}")
      psql("CREATE DATABASE #{name}")
      env = ENV.to_h.merge("DATABASE_URL" => with_database(admin_url, name), "TASKER_ENV" => "test")
      _out, err, status = Open3.capture3(env, server_binary, "migrate")
      raise "tasker-server migrate failed:\n#{err}" unless status.success?

      at_exit { psql("DROP DATABASE IF EXISTS #{name} WITH (FORCE)") }
      name
    end
  end

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  def test_env(database_url)
    ENV.to_h.merge("DATABASE_URL" => database_url, "TASKER_ENV" => "test",
                   "TASKER_TEMPLATE_PATH" => TEMPLATES.join(":"), "NO_COLOR" => "1")
  end

  # A fresh database and a tasker-server on it, for one example.
  class Server
    attr_reader :url, :database_url, :log

    def initialize(dir)
      @name = "tasker_rspec_#{Process.pid}_#{self.class.next_id}"
      TaskerSpec.psql("CREATE DATABASE #{@name} TEMPLATE #{TaskerSpec.template}")
      @database_url = TaskerSpec.with_database(TaskerSpec.admin_url, @name)
      port = TaskerSpec.free_port
      @url = "http://127.0.0.1:#{port}"
      @log = File.join(dir, "tasker-server.log")
      env = TaskerSpec.test_env(@database_url).merge("TASKER_WEB_BIND_ADDRESS" => "127.0.0.1:#{port}",
                                                     "RUST_LOG" => ENV.fetch("RUST_LOG", "warn"))
      @pid = Process.spawn(env, TaskerSpec.server_binary, out: @log, err: @log)
      wait_ready
    end

    def self.next_id
      @next_id = (@next_id || 0) + 1
    end

    def wait_ready
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
      loop do
        begin
          return if Net::HTTP.get_response(URI("#{@url}/health/ready")).code == "200"
        rescue SystemCallError, IOError
          nil
        end
        if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline || Process.waitpid(@pid, Process::WNOHANG)
          raise "tasker-server did not become ready:\n#{File.read(@log)}"
        end

        sleep 0.05
      end
    end

    def stop
      Process.kill("TERM", @pid)
      begin
        Timeout.timeout(15) { Process.wait(@pid) }
      rescue Timeout::Error
        Process.kill("KILL", @pid)
        Process.wait(@pid)
      end
      TaskerSpec.psql("DROP DATABASE IF EXISTS #{@name} WITH (FORCE)")
    end
  end

  # tasker-ruby-worker in a subprocess, its output captured.
  class WorkerProcess
    attr_reader :log

    def initialize(server, log, *args)
      @log = log
      exe = File.join(RUBY_WORKER, "exe", "tasker-ruby-worker")
      env = TaskerSpec.test_env(server.database_url).merge("RUST_LOG" => "info")
      @pid = Process.spawn(env, RbConfig.ruby, exe, "--require", File.join(RUBY_WORKER, "examples", "all.rb"),
                           "--require", File.join(RUBY_WORKER, "spec", "support", "faults.rb"), *args,
                           chdir: RUBY_WORKER, out: log, err: log)
      @status = nil
    end

    def output
      File.exist?(@log) ? File.read(@log) : ""
    end

    def wait_for(needle, timeout: 30)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      until output.include?(needle)
        if alive? == false || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
          raise "no `#{needle}` in the worker's output:\n#{output}"
        end

        sleep 0.05
      end
    end

    def alive?
      return false if @status

      _, status = Process.waitpid2(@pid, Process::WNOHANG)
      @status = status
      status.nil?
    end

    def signal(name)
      Process.kill(name, @pid)
    end

    def wait(timeout: 30)
      return @status.exitstatus if @status

      Timeout.timeout(timeout) { _, @status = Process.waitpid2(@pid) }
      @status.exitstatus
    end

    def kill
      return unless alive?

      Process.kill("KILL", @pid)
      Process.wait(@pid)
      @status = :killed
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
  end

  # Helpers the examples use.
  module Helpers
    def server
      @server ||= TaskerSpec::Server.new(@tmpdir)
    end

    def client
      @client ||= Tasker::Client.new(server.url)
    end

    # A Ruby worker in this process with every registered handler and every
    # template, stopped after the example.
    def start_worker(**options)
      options = { database_url: server.database_url, environment: "test",
                  template_paths: TaskerSpec::TEMPLATES, logger: Logger.new(File::NULL) }.merge(options)
      worker = Tasker::Worker.new(**options).start
      (@workers ||= []) << worker
      worker
    end

    def spawn_worker(*args)
      process = TaskerSpec::WorkerProcess.new(server, File.join(@tmpdir, "worker-#{(@processes ||= []).size}.log"), *args)
      @processes << process
      process
    end

    def run_task(namespace, name, context = {})
      task = client.create_task(namespace, name, context)
      client.wait(task["task_uuid"], timeout: 60)
    end

    def steps_by_name(task)
      task["steps"].to_h { |step| [step["name"], step] }
    end

    def eventually(what, timeout: 30)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      loop do
        value = yield
        return value if value
        raise "timed out after #{timeout} s waiting for #{what}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.05
      end
    end

    def step_in_state(task_uuid, name, state)
      eventually("step #{name} to be #{state}") do
        step = steps_by_name(client.get_task(task_uuid))[name]
        step if step && step["state"] == state
      end
    end

    def unique
      "#{Process.pid}-#{Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)}"
    end
  end
end

RSpec.configure do |config|
  config.include TaskerSpec::Helpers
  config.around(:each, :e2e) do |example|
    Dir.mktmpdir("tasker-rspec") do |dir|
      @tmpdir = dir
      begin
        example.run
      ensure
        (@workers || []).each { |w| w.stop(timeout: 30) }
        (@processes || []).each(&:kill)
        @server&.stop
      end
    end
  end
  config.order = :defined
end
