//! Template files a worker registers at startup, and the namespaces it serves.

use std::path::{Path, PathBuf};

use sqlx::PgPool;
use tasker_db::named_task::{self, PoolCallables, Registration};
use tasker_messaging::MessageQueue;
use tasker_types::messages::QueueName;
use tasker_types::template::TaskTemplate;

use crate::error::WorkerError;
use crate::registry::HandlerRegistry;

/// Registers every `*.yaml`/`*.yml` template found at `paths` (files, or
/// directories searched recursively) and creates their worker queues.
/// Returns the templates registered, in path order.
///
/// # Errors
/// [`WorkerError::Template`] for an invalid file (naming it),
/// `Db(TemplateConflict)` for changed content under a registered version.
pub async fn register_template_files(
    pool: &PgPool,
    queue: &dyn MessageQueue,
    paths: &[PathBuf],
) -> Result<Vec<TaskTemplate>, WorkerError> {
    let mut files = Vec::new();
    for path in paths {
        collect_yaml(path, &mut files)?;
    }
    files.sort();
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| WorkerError::Io {
            path: file.clone(),
            source,
        })?;
        sources.push((file.display().to_string(), text));
    }
    register_template_sources(pool, queue, &sources).await
}

/// Registers templates given as `(label, YAML)` pairs (the label names the
/// source in errors) and creates their worker queues.
///
/// # Errors
/// [`WorkerError::Template`] for an invalid template, `Db(TemplateConflict)`
/// for changed content under a registered version.
pub async fn register_template_sources(
    pool: &PgPool,
    queue: &dyn MessageQueue,
    sources: &[(String, String)],
) -> Result<Vec<TaskTemplate>, WorkerError> {
    let mut registered = Vec::new();
    for (label, text) in sources {
        let template = TaskTemplate::from_yaml(text, Some(label))?;
        let mut conn = pool.acquire().await?;
        let outcome = named_task::register(&mut conn, &template).await?;
        let queues = template
            .queues()
            .map_err(|e| WorkerError::Db(tasker_db::DbError::Corrupt(e.to_string())))?;
        for queue_name in &queues {
            queue.ensure_queue(queue_name).await?;
        }
        tracing::info!(
            source = %label, namespace = %template.namespace_name, name = %template.name,
            version = %template.version, new = matches!(outcome, Registration::Created(_)),
            "template registered"
        );
        registered.push(template);
    }
    Ok(registered)
}

fn collect_yaml(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), WorkerError> {
    let io = |source| WorkerError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            collect_yaml(&entry.map_err(io)?.path(), out)?;
        }
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        out.push(path.to_path_buf());
    } else if !path.exists() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or directory",
        )));
    }
    Ok(())
}

/// The worker queues to serve, one per worker pool (routing by step, SPEC
/// §7): every pool whose callables, over all registered templates, are all
/// in `registry` — within the configured namespaces when there are any.
/// A configured namespace's default pool is served even when handlers are
/// missing (naming a namespace says its steps are this worker's; a missing
/// handler fails its step as `handler_not_found`). Pools left unserved are
/// logged with the callables they lack.
///
/// # Errors
/// [`WorkerError`] on database or queue failure.
pub(crate) async fn queues_to_serve(
    pool: &PgPool,
    queue: &dyn MessageQueue,
    registry: &HandlerRegistry,
    configured: &[String],
) -> Result<Vec<QueueName>, WorkerError> {
    let pools = named_task::callables_by_pool(pool).await?;
    let mut names = Vec::new();
    for choice in choose_pools(&pools, |c| registry.contains(c), configured) {
        match choice {
            PoolChoice::Serve(found) => names.push(
                QueueName::worker_pool(&found.namespace, found.pool.as_deref())
                    .map_err(|e| WorkerError::Db(tasker_db::DbError::Corrupt(e.to_string())))?,
            ),
            PoolChoice::Missing(found, missing) => tracing::info!(
                namespace = %found.namespace, pool = found.pool.as_deref().unwrap_or("default"),
                ?missing, "not serving worker pool: handlers missing"
            ),
        }
    }
    for namespace in configured {
        let default = QueueName::worker(namespace)
            .map_err(|e| WorkerError::Db(tasker_db::DbError::Corrupt(e.to_string())))?;
        if !names.contains(&default) {
            names.push(default);
        }
    }
    for name in &names {
        queue.ensure_queue(name).await?;
    }
    Ok(names)
}

/// Whether a worker serves one pool, decided by [`choose_pools`].
#[derive(Debug, PartialEq, Eq)]
enum PoolChoice<'a> {
    /// It has every callable of the pool.
    Serve(&'a PoolCallables),
    /// It lacks these callables of the pool.
    Missing(&'a PoolCallables, Vec<&'a str>),
}

/// Decides, for each pool of the considered namespaces (every one, or the
/// configured ones), whether a worker with the callables `has` serves it.
fn choose_pools<'a>(
    pools: &'a [PoolCallables],
    has: impl Fn(&str) -> bool,
    configured: &[String],
) -> Vec<PoolChoice<'a>> {
    pools
        .iter()
        .filter(|p| configured.is_empty() || configured.contains(&p.namespace))
        .map(|p| {
            let missing: Vec<&str> = p
                .callables
                .iter()
                .map(String::as_str)
                .filter(|c| !has(c))
                .collect();
            if missing.is_empty() {
                PoolChoice::Serve(p)
            } else {
                PoolChoice::Missing(p, missing)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(namespace: &str, pool: Option<&str>, callables: &[&str]) -> PoolCallables {
        PoolCallables {
            namespace: namespace.to_owned(),
            pool: pool.map(str::to_owned),
            callables: callables.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn a_worker_serves_exactly_the_pools_whose_callables_it_has() {
        let pools = [
            pool("mixed", None, &["tasker::math"]),
            pool("mixed", Some("python"), &["py::a", "py::b"]),
            pool("mixed", Some("ruby"), &["rb::a"]),
            pool("other", None, &["py::a"]),
        ];
        let has = |c: &str| c.starts_with("py::");
        let choices = choose_pools(&pools, has, &[]);
        assert_eq!(
            choices,
            [
                PoolChoice::Missing(&pools[0], vec!["tasker::math"]),
                PoolChoice::Serve(&pools[1]),
                PoolChoice::Missing(&pools[2], vec!["rb::a"]),
                PoolChoice::Serve(&pools[3]),
            ]
        );
        // Configured namespaces narrow the choice.
        let narrowed = choose_pools(&pools, has, &["other".to_owned()]);
        assert_eq!(narrowed, [PoolChoice::Serve(&pools[3])]);
    }
}
