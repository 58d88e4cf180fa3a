# frozen_string_literal: true

# `gem install` entry point: writes a Makefile whose build is cargo's, so the
# gem installs from source without rubygems.org (no rb_sys gem needed).
require "rbconfig"

# The Tasker checkout whose workspace builds the extension: this gem's own
# (when installed from the repository) or TASKER_SOURCE_DIR.
root = ENV.fetch("TASKER_SOURCE_DIR") { File.expand_path("../../../..", __dir__) }
unless File.exist?(File.join(root, "workers", "ruby", "Cargo.toml"))
  abort "tasker: the native extension builds from a Tasker checkout; set TASKER_SOURCE_DIR to one " \
        "(not found at #{root})"
end
profile = ENV.fetch("PROFILE", "release")
target_dir = ENV.fetch("CARGO_TARGET_DIR", File.join(root, "target"))
built = File.join(target_dir, profile == "dev" ? "debug" : profile, "libtasker_native.so")
dlext = RbConfig::CONFIG["DLEXT"]
# Where the extension goes: rubygems points sitearchdir at the gem's
# extension directory (through the siteconf it loads before this file).
sitearchdir = RbConfig::CONFIG["sitearchdir"]

File.write("Makefile", <<~MAKE)
  all:
  \tcargo build --manifest-path #{root}/Cargo.toml -p tasker-ruby --features extension --profile #{profile}
  \tcp #{built} tasker_native.#{dlext}
  install: all
  \tmkdir -p $(DESTDIR)#{sitearchdir}/tasker
  \tcp tasker_native.#{dlext} $(DESTDIR)#{sitearchdir}/tasker/
  clean:
  \trm -f tasker_native.#{dlext}
MAKE
