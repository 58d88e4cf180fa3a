//! Where configuration comes from, and how layers combine. The repository's
//! `config/tasker/` files are compiled in, so a binary works with no files on
//! disk; `TASKER_CONFIG_DIR` adds a directory of overrides on top.

use std::path::Path;

use toml::{Table, Value};

use crate::error::ConfigError;

/// A TOML source: a name for messages, and its text.
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: String,
}

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../config/tasker/", $path)))),*]
    };
}

/// The repository's configuration, compiled in.
const EMBEDDED: &[(&str, &str)] = embedded![
    "base/common.toml",
    "base/orchestration.toml",
    "base/worker.toml",
    "environments/test/common.toml",
    "environments/test/orchestration.toml",
    "environments/test/worker.toml",
    "environments/development/common.toml",
    "environments/development/orchestration.toml",
    "environments/production/common.toml",
    "environments/production/orchestration.toml",
];

/// The environments Tasker ships configuration for.
pub const KNOWN_ENVIRONMENTS: [&str; 3] = ["development", "test", "production"];

/// The layers for `environment`, lowest first: embedded base, embedded
/// environment, then `dir/base/*.toml` and `dir/environments/<env>/*.toml`.
pub(crate) fn sources(environment: &str, dir: Option<&Path>) -> Result<Vec<Source>, ConfigError> {
    let mut layers = embedded("base/");
    layers.extend(embedded(&format!("environments/{environment}/")));

    let mut custom_environment = false;
    if let Some(dir) = dir {
        layers.extend(read_dir(&dir.join("base"))?);
        let env_dir = dir.join("environments").join(environment);
        custom_environment = env_dir.is_dir();
        layers.extend(read_dir(&env_dir)?);
    }
    if !KNOWN_ENVIRONMENTS.contains(&environment) && !custom_environment {
        return Err(ConfigError::UnknownEnvironment {
            name: environment.to_owned(),
            known: KNOWN_ENVIRONMENTS.join(", "),
            dir: dir.map_or_else(
                || "$TASKER_CONFIG_DIR".to_owned(),
                |d| d.display().to_string(),
            ),
        });
    }
    Ok(layers)
}

/// The compiled-in files whose path starts with `prefix`.
fn embedded(prefix: &str) -> Vec<Source> {
    EMBEDDED
        .iter()
        .filter(|(path, _)| path.starts_with(prefix))
        .map(|(path, text)| Source {
            name: format!("config/tasker/{path} (built in)"),
            text: (*text).to_owned(),
        })
        .collect()
}

/// Every `*.toml` file in `dir`, sorted by name; nothing when `dir` is absent.
fn read_dir(dir: &Path) -> Result<Vec<Source>, ConfigError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let io = |source| ConfigError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(Source {
                name: path.display().to_string(),
                text,
            })
        })
        .collect()
}

/// Parses every source and merges them, later layers winning key by key.
pub(crate) fn merge(sources: &[Source]) -> Result<Table, ConfigError> {
    let mut merged = Table::new();
    for source in sources {
        let table: Table =
            source
                .text
                .parse()
                .map_err(|err: toml::de::Error| ConfigError::Syntax {
                    file: source.name.clone(),
                    message: err.to_string().trim().replace('\n', " "),
                })?;
        merge_into(&mut merged, table);
    }
    Ok(merged)
}

fn merge_into(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(existing)), Value::Table(incoming)) => {
                merge_into(existing, incoming)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets dotted `key` to `value`, creating the tables on the way. A key
/// that names no known setting is caught by validation, which rejects
/// unknown keys with their path.
pub(crate) fn set_path(table: &mut Table, key: &str, value: Value) -> Result<(), ConfigError> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let leaf = parts.pop().filter(|p| !p.is_empty());
    let (Some(leaf), false) = (leaf, parts.iter().any(|p| p.is_empty())) else {
        return Err(ConfigError::Shape {
            key: key.to_owned(),
            message: "not a dotted key path (e.g. `worker.concurrency`)".to_owned(),
        });
    };
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part)
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(next) = entry else {
            return Err(ConfigError::Shape {
                key: key.to_owned(),
                message: format!("`{part}` is a value, not a table"),
            });
        };
        current = next;
    }
    current.insert(leaf.to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotted_override_replaces_one_leaf() {
        let mut base = table("[worker]\nconcurrency = 16\nlease_ms = 30000\n");
        set_path(&mut base, "worker.concurrency", Value::Integer(4)).unwrap();
        assert_eq!(base, table("[worker]\nconcurrency = 4\nlease_ms = 30000\n"));
        assert!(set_path(&mut base, "worker..x", Value::Integer(1)).is_err());
        assert!(set_path(&mut base, "worker.concurrency.x", Value::Integer(1)).is_err());
    }

    fn table(text: &str) -> Table {
        text.parse().unwrap()
    }

    #[test]
    fn later_layers_win_key_by_key_and_tables_merge_deeply() {
        let mut base = table("[a]\nx = 1\ny = 2\n[a.inner]\nk = 'v'\n[b]\nz = 3\n");
        merge_into(&mut base, table("[a]\ny = 20\n[a.inner]\nj = 'w'\n"));
        assert_eq!(
            base,
            table("[a]\nx = 1\ny = 20\n[a.inner]\nk = 'v'\nj = 'w'\n[b]\nz = 3\n")
        );
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = merge(&[Source {
            name: "broken.toml".into(),
            text: "[database\n".into(),
        }])
        .unwrap_err();
        assert!(
            err.to_string().starts_with("broken.toml: invalid TOML"),
            "{err}"
        );
    }
}
