//! `tasker._native`: the Python worker's bridge to `tasker-worker`'s
//! dispatch surface. It only marshals: JSON strings and plain values cross
//! the boundary, every rule (claiming, leases, timeouts, fencing, how a
//! Python exception becomes a failure) lives in `tasker-worker`, and every
//! wait happens with the GIL released. The `tasker` package on top of it is
//! what users import.

mod errors;
mod worker;

use pyo3::prelude::*;
use tasker_types::state::TaskState;

/// The task states from which a task does not move on by itself.
#[pyfunction]
fn terminal_task_states() -> Vec<&'static str> {
    TaskState::terminal_names()
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<worker::NativeWorker>()?;
    m.add_function(wrap_pyfunction!(terminal_task_states, m)?)?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
