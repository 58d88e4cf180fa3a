//! The exceptions the native module raises, and how dispatch errors map
//! onto them.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use tasker_worker::dispatch::DispatchError;

pyo3::create_exception!(
    _native,
    WorkerError,
    PyException,
    "The worker could not start, or a call on it failed."
);
pyo3::create_exception!(
    _native,
    ConfigError,
    WorkerError,
    "The configuration (TOML, environment or keyword options) is invalid."
);
pyo3::create_exception!(
    _native,
    ForkError,
    WorkerError,
    "The worker was started in a parent process: a worker does not survive fork()."
);
pyo3::create_exception!(
    _native,
    CheckpointRefused,
    PyException,
    "A checkpoint was not saved. Arguments: (message, retryable, error_type)."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("WorkerError", py.get_type::<WorkerError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ForkError", py.get_type::<ForkError>())?;
    m.add("CheckpointRefused", py.get_type::<CheckpointRefused>())?;
    Ok(())
}

/// A dispatch error as the Python exception that says what it is.
pub(crate) fn to_py(err: DispatchError) -> PyErr {
    match err {
        DispatchError::Forked { .. } => ForkError::new_err(err.to_string()),
        DispatchError::Config(_) => ConfigError::new_err(err.to_string()),
        DispatchError::Checkpoint(error) => CheckpointRefused::new_err((
            error.message().to_owned(),
            error.is_retryable(),
            error.error_type().to_owned(),
        )),
        other => WorkerError::new_err(other.to_string()),
    }
}
