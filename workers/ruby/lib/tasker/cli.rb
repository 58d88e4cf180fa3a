# frozen_string_literal: true

require "optparse"

module Tasker
  # +tasker-ruby-worker+: run a Ruby worker.
  #
  #   tasker-ruby-worker --require ./app/handlers.rb [--require more.rb]
  #                      [--concurrency 8] [--namespace payments]
  #                      [--template-path config/tasks] [--include-builtins]
  #
  # Requiring the files registers their handlers. Configuration comes from
  # Tasker's TOML and environment like every Tasker process (TASKER_ENV,
  # DATABASE_URL, TASKER_TEMPLATE_PATH, …); flags win over it. SIGTERM or
  # Ctrl-C stops the worker after running handlers finish; a second one
  # stops it at once.
  module CLI
    module_function

    # @param argv [Array<String>]
    # @return [Integer] the exit status
    def main(argv)
      options = { requires: [], namespaces: nil, template_paths: nil }
      parser = OptionParser.new do |o|
        o.banner = "usage: tasker-ruby-worker --require FILE [options]"
        o.on("-r", "--require FILE", "file to require for its handlers (repeatable)") { |f| options[:requires] << f }
        o.on("-c", "--concurrency N", Integer, "handlers running at once") { |n| options[:concurrency] = n }
        o.on("-n", "--namespace NS", "serve only these namespaces (repeatable)") do |ns|
          (options[:namespaces] ||= []) << ns
        end
        o.on("-t", "--template-path PATH", "template file or directory to register (repeatable)") do |p|
          (options[:template_paths] ||= []) << p
        end
        o.on("-e", "--environment ENV", "configuration environment (TASKER_ENV)") { |e| options[:environment] = e }
        o.on("--config-dir DIR", "directory of TOML overrides (TASKER_CONFIG_DIR)") { |d| options[:config_dir] = d }
        o.on("--include-builtins", "also serve the built-in tasker::* handlers") { options[:include_builtins] = true }
        o.on("-v", "--version", "print the version") do
          puts "tasker #{Tasker::VERSION}"
          return 0
        end
      end
      parser.parse!(argv)
      if options[:requires].empty?
        warn parser.banner
        return 2
      end
      begin
        options[:requires].each { |file| require File.expand_path(file) }
      rescue LoadError, SyntaxError => e
        warn "tasker: cannot load #{e.message}"
        return 2
      end
      worker = Worker.new(concurrency: options[:concurrency], namespaces: options[:namespaces],
                          template_paths: options[:template_paths], environment: options[:environment],
                          config_dir: options[:config_dir], include_builtins: options.fetch(:include_builtins, false))
      worker.run
      $stderr.puts "tasker: worker stopped"
      0
    rescue OptionParser::ParseError => e
      warn "tasker: #{e.message}"
      2
    rescue WorkerError => e
      warn "tasker: #{e.message}"
      1
    end
  end
end
