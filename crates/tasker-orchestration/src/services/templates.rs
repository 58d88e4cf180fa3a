//! Template operations: register, validate, list, get.

use serde_json::Value;
use tasker_db::named_task::{self, Registration};
use tasker_types::api::{
    TemplateDetail, TemplateIssue, TemplateRegistration, TemplateSummary, ValidationReport,
};
use tasker_types::template::{TaskTemplate, TemplateErrors};

use crate::Orchestrator;
use crate::auth::{Permission, Principal};
use crate::error::OrchestrationError;
use crate::services::error::ServiceError;

/// A template as submitted.
#[derive(Clone, Debug)]
pub enum TemplateSource {
    /// YAML text.
    Yaml(String),
    /// A JSON document.
    Json(Value),
}

fn parse(source: TemplateSource) -> Result<TaskTemplate, TemplateErrors> {
    match source {
        TemplateSource::Yaml(text) => TaskTemplate::from_yaml(&text, None),
        TemplateSource::Json(value) => TaskTemplate::from_json_value(value, None),
    }
}

fn summary_of(
    template: &TaskTemplate,
    created_at: chrono::DateTime<chrono::Utc>,
) -> TemplateSummary {
    TemplateSummary {
        namespace: template.namespace_name.clone(),
        name: template.name.clone(),
        version: template.version.clone(),
        description: template.description.clone(),
        step_count: template.steps.len(),
        created_at,
    }
}

/// Validates and registers a template, and creates its worker queues (one
/// per pool its steps name).
/// Nothing is written when it is invalid or conflicts.
///
/// # Errors
/// Forbidden without `templates:write`; invalid (`invalid_template`)
/// listing every problem; conflict for changed content under a registered
/// version.
pub async fn register(
    orchestrator: &Orchestrator,
    principal: &Principal,
    source: TemplateSource,
) -> Result<TemplateRegistration, ServiceError> {
    principal.require(Permission::TemplatesWrite)?;
    let template = parse(source).map_err(OrchestrationError::InvalidTemplate)?;
    let queues = template
        .queues()
        .map_err(|e| OrchestrationError::BadRequest(e.to_string()))?;
    let mut tx = orchestrator.pool().begin().await?;
    let registration = named_task::register(&mut tx, &template).await?;
    tx.commit().await?;
    for queue in &queues {
        orchestrator.queue().ensure_queue(queue).await?;
    }
    let (status, stored) = match &registration {
        Registration::Created(t) => ("created", t),
        Registration::Unchanged(t) => ("unchanged", t),
    };
    Ok(TemplateRegistration {
        status: status.to_owned(),
        template: summary_of(&stored.template, stored.created_at),
    })
}

/// Checks a template without registering it.
///
/// # Errors
/// Forbidden without `templates:read`.
pub fn validate(
    principal: &Principal,
    source: TemplateSource,
) -> Result<ValidationReport, ServiceError> {
    principal.require(Permission::TemplatesRead)?;
    Ok(match parse(source) {
        Ok(template) => ValidationReport {
            valid: true,
            errors: Vec::new(),
            template: Some(summary_of(&template, chrono::Utc::now())),
        },
        Err(errors) => ValidationReport {
            valid: false,
            errors: issues(&errors),
            template: None,
        },
    })
}

/// The problems of an invalid template, for API bodies.
pub fn issues(errors: &TemplateErrors) -> Vec<TemplateIssue> {
    errors
        .iter()
        .map(|e| TemplateIssue {
            step: e.step.clone(),
            field: e.field.clone(),
            message: e.message.clone(),
        })
        .collect()
}

/// Registered templates, optionally of one namespace.
///
/// # Errors
/// Forbidden without `templates:read`.
pub async fn list(
    orchestrator: &Orchestrator,
    principal: &Principal,
    namespace: Option<&str>,
) -> Result<Vec<TemplateSummary>, ServiceError> {
    principal.require(Permission::TemplatesRead)?;
    Ok(named_task::list(orchestrator.pool(), namespace)
        .await?
        .into_iter()
        .map(|t| TemplateSummary {
            namespace: t.namespace,
            name: t.name,
            version: t.version,
            description: t.description,
            step_count: t.step_count,
            created_at: t.created_at,
        })
        .collect())
}

/// One registered template.
///
/// # Errors
/// Forbidden without `templates:read`; not found.
pub async fn get(
    orchestrator: &Orchestrator,
    principal: &Principal,
    namespace: &str,
    name: &str,
    version: &str,
) -> Result<TemplateDetail, ServiceError> {
    principal.require(Permission::TemplatesRead)?;
    let stored = named_task::get(orchestrator.pool(), namespace, name, version)
        .await?
        .ok_or_else(|| OrchestrationError::TemplateNotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            version: Some(version.to_owned()),
        })?;
    Ok(TemplateDetail {
        summary: summary_of(&stored.template, stored.created_at),
        content_hash: stored.content_hash.clone(),
        template: serde_json::to_value(&stored.template)
            .map_err(|e| ServiceError::from(OrchestrationError::Corrupt(e.to_string())))?,
    })
}
