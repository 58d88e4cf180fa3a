//! Templates: summaries, details, registration and validation outcomes, and
//! the template text of register and validate requests.

use serde_json::Value;
use tasker_types::api::{
    TemplateDetail, TemplateIssue, TemplateRegistration, TemplateSummary, ValidationReport,
};

use super::json;
use super::time::timestamp;
use crate::v1;

/// A template as a register or validate request carries it. JSON text is
/// parsed here (so a syntax error names the field); YAML is parsed by the
/// template parser, which reports its own errors.
#[derive(Clone, Debug, PartialEq)]
pub enum TemplateText {
    /// YAML text.
    Yaml(String),
    /// A JSON document.
    Json(Value),
}

impl TemplateText {
    fn from_source(yaml: Option<String>, json_text: Option<String>) -> Result<Self, String> {
        match (yaml, json_text) {
            (Some(text), _) => Ok(Self::Yaml(text)),
            (None, Some(text)) => json::parse("json", &text).map(Self::Json),
            (None, None) => Err("`source`: give the template as `yaml` or `json` text".into()),
        }
    }
}

impl TryFrom<v1::RegisterTemplateRequest> for TemplateText {
    type Error = String;

    fn try_from(request: v1::RegisterTemplateRequest) -> Result<Self, String> {
        use v1::register_template_request::Source;
        match request.source {
            Some(Source::Yaml(text)) => Self::from_source(Some(text), None),
            Some(Source::Json(text)) => Self::from_source(None, Some(text)),
            None => Self::from_source(None, None),
        }
    }
}

impl TryFrom<v1::ValidateTemplateRequest> for TemplateText {
    type Error = String;

    fn try_from(request: v1::ValidateTemplateRequest) -> Result<Self, String> {
        use v1::validate_template_request::Source;
        match request.source {
            Some(Source::Yaml(text)) => Self::from_source(Some(text), None),
            Some(Source::Json(text)) => Self::from_source(None, Some(text)),
            None => Self::from_source(None, None),
        }
    }
}

fn step_count(count: usize) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}

impl From<TemplateSummary> for v1::TemplateSummary {
    fn from(summary: TemplateSummary) -> Self {
        Self {
            namespace: summary.namespace,
            name: summary.name,
            version: summary.version,
            description: summary.description,
            step_count: step_count(summary.step_count),
            created_at: Some(timestamp(summary.created_at)),
        }
    }
}

impl From<Vec<TemplateSummary>> for v1::ListTemplatesResponse {
    fn from(templates: Vec<TemplateSummary>) -> Self {
        Self {
            templates: templates.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TemplateDetail> for v1::TemplateDetail {
    fn from(detail: TemplateDetail) -> Self {
        // REST flattens the summary into the detail; so does the message.
        let summary = detail.summary;
        Self {
            namespace: summary.namespace,
            name: summary.name,
            version: summary.version,
            description: summary.description,
            step_count: step_count(summary.step_count),
            created_at: Some(timestamp(summary.created_at)),
            content_hash: detail.content_hash,
            template_json: json::text(&detail.template),
        }
    }
}

impl From<TemplateRegistration> for v1::TemplateRegistration {
    fn from(registration: TemplateRegistration) -> Self {
        Self {
            status: registration.status,
            template: Some(registration.template.into()),
        }
    }
}

impl From<TemplateIssue> for v1::TemplateIssue {
    fn from(issue: TemplateIssue) -> Self {
        Self {
            step: issue.step,
            field: issue.field,
            message: issue.message,
        }
    }
}

impl From<ValidationReport> for v1::ValidationReport {
    fn from(report: ValidationReport) -> Self {
        Self {
            valid: report.valid,
            errors: report.errors.into_iter().map(Into::into).collect(),
            template: report.template.map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::json;

    use super::*;

    fn summary() -> TemplateSummary {
        TemplateSummary {
            namespace: "ns".into(),
            name: "t".into(),
            version: "1.2.0".into(),
            description: Some("demo".into()),
            step_count: 4,
            created_at: DateTime::from_timestamp(7, 0).unwrap(),
        }
    }

    #[test]
    fn details_flatten_the_summary_like_rest() {
        let detail = TemplateDetail {
            summary: summary(),
            content_hash: "abc".into(),
            template: json!({"name": "t", "steps": []}),
        };
        let rest = serde_json::to_value(&detail).unwrap();
        let message = v1::TemplateDetail::from(detail);
        assert_eq!(message.namespace, rest["namespace"]);
        assert_eq!(message.version, rest["version"]);
        assert_eq!(message.step_count, 4);
        assert_eq!(message.content_hash, "abc");
        assert_eq!(
            json::parse("template_json", &message.template_json).unwrap(),
            rest["template"]
        );
    }

    #[test]
    fn reports_keep_every_issue() {
        let report = ValidationReport {
            valid: false,
            errors: vec![TemplateIssue {
                step: Some("a".into()),
                field: Some("handler".into()),
                message: "missing".into(),
            }],
            template: None,
        };
        let message = v1::ValidationReport::from(report);
        assert!(!message.valid);
        assert_eq!(message.errors[0].field.as_deref(), Some("handler"));
        assert_eq!(message.template, None);
        let registration = v1::TemplateRegistration::from(TemplateRegistration {
            status: "created".into(),
            template: summary(),
        });
        assert_eq!(
            registration.template.unwrap().description.as_deref(),
            Some("demo")
        );
    }

    #[test]
    fn template_text_is_yaml_or_parsed_json() {
        use v1::register_template_request::Source;
        let yaml = v1::RegisterTemplateRequest {
            source: Some(Source::Yaml("name: t".into())),
        };
        assert_eq!(
            TemplateText::try_from(yaml).unwrap(),
            TemplateText::Yaml("name: t".into())
        );
        let json_text = v1::ValidateTemplateRequest {
            source: Some(v1::validate_template_request::Source::Json(
                r#"{"name": "t"}"#.into(),
            )),
        };
        assert_eq!(
            TemplateText::try_from(json_text).unwrap(),
            TemplateText::Json(json!({"name": "t"}))
        );
        let bad = v1::RegisterTemplateRequest {
            source: Some(Source::Json("{".into())),
        };
        assert!(
            TemplateText::try_from(bad)
                .unwrap_err()
                .starts_with("`json`: not JSON: ")
        );
        assert_eq!(
            TemplateText::try_from(v1::RegisterTemplateRequest::default()).unwrap_err(),
            "`source`: give the template as `yaml` or `json` text"
        );
    }
}
