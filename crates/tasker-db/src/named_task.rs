//! `tasker.named_tasks` and `tasker.task_namespaces`: registered templates.
//! A `(namespace, name, version)` is registered once; the same content again
//! is a no-op and different content is refused (SPEC §2), so a running task
//! never sees its template change.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use tasker_types::ids::TemplateUuid;
use tasker_types::template::TaskTemplate;

use crate::error::DbError;

/// The channel notified (payload: the namespace) when a template is first
/// registered, so workers can start serving it without a restart.
pub const TEMPLATE_CHANNEL: &str = "tasker_templates";

/// A template as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisteredTemplate {
    /// Row id; tasks point at it.
    pub named_task_uuid: TemplateUuid,
    /// The validated template.
    pub template: TaskTemplate,
    /// SHA-256 of its canonical JSON.
    pub content_hash: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// What [`register`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Registration {
    /// The template is new.
    Created(RegisteredTemplate),
    /// Identical content was already registered; nothing changed.
    Unchanged(RegisteredTemplate),
}

impl Registration {
    /// The stored template, either way.
    pub fn template(&self) -> &RegisteredTemplate {
        match self {
            Registration::Created(t) | Registration::Unchanged(t) => t,
        }
    }
}

/// One row of a template listing.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateSummary {
    /// Row id.
    pub named_task_uuid: TemplateUuid,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: Option<String>,
    /// Number of step definitions.
    pub step_count: usize,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Registers `template` (already validated). Call inside a transaction when
/// it must commit together with other writes.
///
/// # Errors
/// [`DbError::TemplateConflict`] when different content holds this version.
pub async fn register(
    conn: &mut PgConnection,
    template: &TaskTemplate,
) -> Result<Registration, DbError> {
    let json = serde_json::to_value(template).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let hash = template.content_hash();
    sqlx::query!(
        "INSERT INTO tasker.task_namespaces (name) VALUES ($1) ON CONFLICT DO NOTHING",
        template.namespace_name
    )
    .execute(&mut *conn)
    .await?;
    let inserted = sqlx::query!(
        r#"INSERT INTO tasker.named_tasks
               (named_task_uuid, namespace, name, version, template, content_hash,
                identity_strategy, description)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (namespace, name, version) DO NOTHING
           RETURNING created_at"#,
        TemplateUuid::new().as_uuid(),
        template.namespace_name,
        template.name,
        template.version,
        json,
        hash,
        template.identity_strategy.as_str(),
        template.description,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        sqlx::query!(
            "SELECT pg_notify($1, $2)",
            TEMPLATE_CHANNEL,
            template.namespace_name
        )
        .execute(&mut *conn)
        .await?;
    }
    let stored = get(
        &mut *conn,
        &template.namespace_name,
        &template.name,
        &template.version,
    )
    .await?
    .ok_or_else(|| DbError::Corrupt("registered template vanished".into()))?;
    if stored.content_hash != hash {
        return Err(DbError::TemplateConflict {
            namespace: template.namespace_name.clone(),
            name: template.name.clone(),
            version: template.version.clone(),
        });
    }
    Ok(if inserted.is_some() {
        Registration::Created(stored)
    } else {
        Registration::Unchanged(stored)
    })
}

/// The template registered under exactly this version.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn get(
    executor: impl PgExecutor<'_>,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<Option<RegisteredTemplate>, DbError> {
    let row = sqlx::query!(
        r#"SELECT named_task_uuid, template, content_hash, created_at
           FROM tasker.named_tasks WHERE namespace = $1 AND name = $2 AND version = $3"#,
        namespace,
        name,
        version
    )
    .fetch_optional(executor)
    .await?;
    row.map(|r| decode(r.named_task_uuid, r.template, r.content_hash, r.created_at))
        .transpose()
}

/// The template a task row points at.
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn get_by_uuid(
    executor: impl PgExecutor<'_>,
    uuid: TemplateUuid,
) -> Result<Option<RegisteredTemplate>, DbError> {
    let row = sqlx::query!(
        r#"SELECT named_task_uuid, template, content_hash, created_at
           FROM tasker.named_tasks WHERE named_task_uuid = $1"#,
        uuid.as_uuid()
    )
    .fetch_optional(executor)
    .await?;
    row.map(|r| decode(r.named_task_uuid, r.template, r.content_hash, r.created_at))
        .transpose()
}

/// The highest registered version (by semantic-version order; a release
/// outranks its pre-releases).
///
/// # Errors
/// [`DbError`] on database failure or an unreadable row.
pub async fn latest(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
) -> Result<Option<RegisteredTemplate>, DbError> {
    let versions = sqlx::query_scalar!(
        "SELECT version FROM tasker.named_tasks WHERE namespace = $1 AND name = $2",
        namespace,
        name
    )
    .fetch_all(&mut *conn)
    .await?;
    let Some(highest) = versions
        .iter()
        .filter_map(|v| semver::Version::parse(v).ok().map(|parsed| (parsed, v)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v.clone())
    else {
        return Ok(None);
    };
    get(&mut *conn, namespace, name, &highest).await
}

/// Every registered template, optionally only those of `namespace`, ordered
/// by namespace, name and registration time.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn list(
    executor: impl PgExecutor<'_>,
    namespace: Option<&str>,
) -> Result<Vec<TemplateSummary>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT named_task_uuid, namespace, name, version, description, created_at,
                  jsonb_array_length(template -> 'steps') AS "step_count!"
           FROM tasker.named_tasks
           WHERE $1::text IS NULL OR namespace = $1
           ORDER BY namespace, name, created_at"#,
        namespace
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TemplateSummary {
            named_task_uuid: TemplateUuid::from_uuid(r.named_task_uuid),
            namespace: r.namespace,
            name: r.name,
            version: r.version,
            description: r.description,
            step_count: usize::try_from(r.step_count).unwrap_or(0),
            created_at: r.created_at,
        })
        .collect())
}

/// Namespaces that have at least one registered template.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn namespaces(executor: impl PgExecutor<'_>) -> Result<Vec<String>, DbError> {
    Ok(
        sqlx::query_scalar!("SELECT name FROM tasker.task_namespaces ORDER BY name")
            .fetch_all(executor)
            .await?,
    )
}

fn decode(
    uuid: uuid::Uuid,
    template: serde_json::Value,
    content_hash: String,
    created_at: DateTime<Utc>,
) -> Result<RegisteredTemplate, DbError> {
    let template: TaskTemplate = serde_json::from_value(template)
        .map_err(|e| DbError::Corrupt(format!("template {uuid}: {e}")))?;
    Ok(RegisteredTemplate {
        named_task_uuid: TemplateUuid::from_uuid(uuid),
        template,
        content_hash,
        created_at,
    })
}

/// The callables of one worker pool of a namespace, over every registered
/// template version: what a worker needs to serve that pool's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolCallables {
    /// The namespace.
    pub namespace: String,
    /// The pool; `None` is the namespace's default pool.
    pub pool: Option<String>,
    /// Every callable the pool's steps name, sorted.
    pub callables: Vec<String>,
}

/// Every handler callable each worker pool of each namespace uses (all
/// template versions), so a worker can tell which pools it can fully serve.
///
/// # Errors
/// [`DbError`] on database failure.
pub async fn callables_by_pool(
    executor: impl PgExecutor<'_>,
) -> Result<Vec<PoolCallables>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT t.namespace AS "namespace!",
                  s.step ->> 'pool' AS pool,
                  array_agg(DISTINCT s.step -> 'handler' ->> 'callable'
                            ORDER BY s.step -> 'handler' ->> 'callable')
                      AS "callables!: Vec<String>"
           FROM tasker.named_tasks t, jsonb_array_elements(t.template -> 'steps') AS s(step)
           GROUP BY t.namespace, s.step ->> 'pool'
           ORDER BY t.namespace, s.step ->> 'pool' NULLS FIRST"#
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PoolCallables {
            namespace: r.namespace,
            pool: r.pool,
            callables: r.callables,
        })
        .collect())
}
