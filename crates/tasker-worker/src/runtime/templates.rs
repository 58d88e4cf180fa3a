//! Template files a worker registers at startup, and the namespaces it serves.

use std::path::{Path, PathBuf};

use sqlx::PgPool;
use tasker_db::named_task::{self, Registration};
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
        let queue_name = QueueName::worker(&template.namespace_name)
            .map_err(|e| WorkerError::Db(tasker_db::DbError::Corrupt(e.to_string())))?;
        queue.ensure_queue(&queue_name).await?;
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

/// The worker queues to serve: the configured namespaces, or else every
/// namespace whose registered templates only use callables in `registry`.
///
/// # Errors
/// [`WorkerError`] on database or queue failure.
pub(crate) async fn queues_to_serve(
    pool: &PgPool,
    queue: &dyn MessageQueue,
    registry: &HandlerRegistry,
    configured: &[String],
) -> Result<Vec<QueueName>, WorkerError> {
    let namespaces: Vec<String> = if configured.is_empty() {
        let mut servable = Vec::new();
        for (namespace, callables) in named_task::callables_by_namespace(pool).await? {
            let missing: Vec<&String> =
                callables.iter().filter(|c| !registry.contains(c)).collect();
            if missing.is_empty() {
                servable.push(namespace);
            } else {
                tracing::debug!(%namespace, ?missing, "not serving namespace: handlers missing");
            }
        }
        servable
    } else {
        configured.to_vec()
    };
    let mut queues = Vec::with_capacity(namespaces.len());
    for namespace in namespaces {
        let name = QueueName::worker(&namespace)
            .map_err(|e| WorkerError::Db(tasker_db::DbError::Corrupt(e.to_string())))?;
        queue.ensure_queue(&name).await?;
        queues.push(name);
    }
    Ok(queues)
}
