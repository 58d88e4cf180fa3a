//! Long-running loops: the result reader and the writers it feeds.

pub(crate) mod results;
pub(crate) mod retry_timers;
