//! Exit codes, documented in `tasker-ctl --help` and the README:
//! 0 success; 1 the task (or template) failed; 2 bad usage or input;
//! 3 the server refused or could not be reached; 4 timed out waiting.

use std::fmt;

/// A failure with its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

/// The task or template failed.
pub(crate) const FAILED: u8 = 1;
/// Bad usage or local input.
pub(crate) const USAGE: u8 = 2;
/// The server refused or could not be reached.
pub(crate) const SERVER: u8 = 3;
/// Gave up waiting.
pub(crate) const TIMEOUT: u8 = 4;

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl From<tasker_client::ClientError> for Failure {
    fn from(err: tasker_client::ClientError) -> Self {
        Failure::new(SERVER, err.to_string())
    }
}

pub(crate) type CtlResult<T = ()> = Result<T, Failure>;
