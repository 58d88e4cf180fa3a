//! Configuration errors. Each names the file or the key path at fault.

use std::path::PathBuf;

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{file}: invalid TOML: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// `TASKER_ENV` names an environment with no configuration.
    #[error(
        "unknown environment `{name}`: expected one of {known}, or a directory {dir}/environments/{name}"
    )]
    UnknownEnvironment {
        /// The requested environment.
        name: String,
        /// The environments Tasker ships.
        known: String,
        /// Where a custom environment would live.
        dir: String,
    },
    /// `${VAR}` names a variable that is not set and has no default.
    #[error(
        "{key}: environment variable {variable} is not set (use ${{{variable}:-default}} for a default)"
    )]
    MissingVariable {
        /// The key path, e.g. `database.url`.
        key: String,
        /// The variable.
        variable: String,
    },
    /// A `${` without a closing `}`, or an empty variable name.
    #[error("{key}: malformed placeholder in `{value}`")]
    BadPlaceholder {
        /// The key path.
        key: String,
        /// The offending string.
        value: String,
    },
    /// A key is unknown, missing or of the wrong type.
    #[error("{key}: {message}")]
    Shape {
        /// The key path.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("{key}: {message}")]
    Invalid {
        /// The key path.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}
