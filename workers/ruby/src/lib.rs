//! `tasker_native`: the Ruby worker's bridge to `tasker-worker`'s dispatch
//! surface (magnus over rb-sys). It only marshals: JSON strings and plain
//! values cross the boundary, every rule (claiming, leases, timeouts,
//! fencing, how a Ruby exception becomes a failure) lives in
//! `tasker-worker`, Ruby is only ever called from Ruby threads, and every
//! wait happens with the GVL released. The `tasker` gem (`lib/`) on top of
//! it is what users require.
//!
//! Built with the `extension` feature (the Rakefile and `extconf.rb` turn it
//! on); without it this crate is empty, so the workspace builds on machines
//! without Ruby's headers.

#[cfg(feature = "extension")]
mod errors;
#[cfg(feature = "extension")]
mod nogvl;
#[cfg(feature = "extension")]
mod worker;

#[cfg(feature = "extension")]
mod init {
    use magnus::{Error, Module, Object, Ruby, function, method};
    use tasker_types::state::TaskState;

    use crate::worker::NativeWorker;

    /// The task states from which a task does not move on by itself.
    fn terminal_task_states() -> Vec<&'static str> {
        TaskState::terminal_names()
    }

    /// Defines `Tasker::Native` and `Tasker::Native::Worker`.
    #[magnus::init(name = "tasker_native")]
    fn init(ruby: &Ruby) -> Result<(), Error> {
        let tasker = ruby.define_module("Tasker")?;
        let native = tasker.define_module("Native")?;
        native
            .define_singleton_method("terminal_task_states", function!(terminal_task_states, 0))?;
        let class = native.define_class("Worker", ruby.class_object())?;
        class.define_singleton_method("start", function!(NativeWorker::start, 5))?;
        class.define_method("worker_id", method!(NativeWorker::worker_id, 0))?;
        class.define_method("poll", method!(NativeWorker::poll, 2))?;
        class.define_method("complete", method!(NativeWorker::complete, 2))?;
        class.define_method(
            "fail_with_exception",
            method!(NativeWorker::fail_with_exception, 4),
        )?;
        class.define_method("reject_result", method!(NativeWorker::reject_result, 2))?;
        class.define_method("abandon", method!(NativeWorker::abandon, 1))?;
        class.define_method("cancelled?", method!(NativeWorker::is_cancelled, 1))?;
        class.define_method("save_checkpoint", method!(NativeWorker::save_checkpoint, 2))?;
        class.define_method("stop", method!(NativeWorker::stop, 0))?;
        class.define_method("wait_stopped", method!(NativeWorker::wait_stopped, 1))?;
        class.define_method("stopped?", method!(NativeWorker::is_stopped, 0))?;
        class.define_method("status_json", method!(NativeWorker::status_json, 0))?;
        Ok(())
    }
}
