//! Small helpers for the second configuration stage: range checks that name
//! the key path.

use std::fmt::Display;
use std::time::Duration;

use crate::error::ConfigError;

/// `value` when it lies in `lo..=hi`, else an error naming `key`.
pub(crate) fn in_range<T: PartialOrd + Display + Copy>(
    key: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<T, ConfigError> {
    if value < lo || value > hi {
        return Err(ConfigError::Invalid {
            key: key.to_owned(),
            message: format!("must be between {lo} and {hi} (got {value})"),
        });
    }
    Ok(value)
}

/// Milliseconds in `lo..=hi` as a [`Duration`].
pub(crate) fn millis(key: &str, value: u64, lo: u64, hi: u64) -> Result<Duration, ConfigError> {
    in_range(key, value, lo, hi).map(Duration::from_millis)
}
