//! From text to a validated [`TaskTemplate`]: YAML (or JSON) → a strict serde
//! pass that rejects unknown keys and wrong types, step by step so errors can
//! name the step → the semantic checks of [`super::validate`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{Collector, TemplateError, TemplateErrors};
use super::model::{EnvironmentOverrides, LifecycleThresholds, StepDefinition, TaskTemplate};
use super::validate::validate_into;
use crate::identity::IdentityStrategy;

/// Largest template source accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;

/// The top level of a template document; steps stay raw JSON until each is
/// parsed on its own, so an error inside one can name it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    name: String,
    namespace_name: String,
    version: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: Map<String, Value>,
    #[serde(default)]
    identity_strategy: IdentityStrategy,
    #[serde(default)]
    input_schema: Option<Value>,
    steps: Vec<Value>,
    #[serde(default)]
    environments: BTreeMap<String, EnvironmentOverrides>,
    #[serde(default)]
    lifecycle: LifecycleThresholds,
}

impl TaskTemplate {
    /// Parses and validates a YAML template. `file` is used in error messages.
    ///
    /// # Errors
    /// [`TemplateErrors`] listing every problem found; nothing is returned
    /// unless the template is entirely valid.
    ///
    /// # Example
    /// ```
    /// use tasker_types::template::TaskTemplate;
    ///
    /// let yaml = r#"
    /// name: greet
    /// namespace_name: demo
    /// version: 1.0.0
    /// steps:
    ///   - name: hello
    ///     handler: { callable: "tasker::echo" }
    /// "#;
    /// let template = TaskTemplate::from_yaml(yaml, Some("greet.yaml")).unwrap();
    /// assert_eq!(template.steps[0].retry.max_attempts, 3);
    ///
    /// let err = TaskTemplate::from_yaml("name: x\n", Some("bad.yaml")).unwrap_err();
    /// assert!(err.to_string().starts_with("bad.yaml"));
    /// ```
    pub fn from_yaml(text: &str, file: Option<&str>) -> Result<Self, TemplateErrors> {
        check_size(text.len(), file)?;
        let mut options = serde_saphyr::Options::default();
        options.with_snippet = false;
        // YAML 1.2 booleans only: `no`, `on`, `y` … stay strings, so a step
        // or namespace called `no` is not silently read as `false`.
        options.strict_booleans = true;
        let value: Value = serde_saphyr::from_str_with_options(text, options)
            .map_err(|err| single(file, None, None, format!("invalid YAML: {err}")))?;
        Self::from_json_value(value, file)
    }

    /// Parses and validates a template given as JSON text.
    ///
    /// # Errors
    /// [`TemplateErrors`] listing every problem found.
    pub fn from_json(text: &str, file: Option<&str>) -> Result<Self, TemplateErrors> {
        check_size(text.len(), file)?;
        let value: Value = serde_json::from_str(text)
            .map_err(|err| single(file, None, None, format!("invalid JSON: {err}")))?;
        Self::from_json_value(value, file)
    }

    /// Parses and validates a template already decoded into JSON.
    ///
    /// # Errors
    /// [`TemplateErrors`] listing every problem found.
    pub fn from_json_value(value: Value, file: Option<&str>) -> Result<Self, TemplateErrors> {
        if !value.is_object() {
            return Err(single(
                file,
                None,
                None,
                "a template must be a mapping of keys".into(),
            ));
        }
        let document: Document = serde_path_to_error::deserialize(value).map_err(|err| {
            let field = path_of(&err);
            single(file, None, field, err.into_inner().to_string())
        })?;

        let mut errors = Collector::new(file);
        let mut steps = Vec::with_capacity(document.steps.len());
        for (index, raw) in document.steps.into_iter().enumerate() {
            let label = step_label(&raw, index);
            match serde_path_to_error::deserialize::<_, StepDefinition>(raw) {
                Ok(step) => steps.push(step),
                Err(err) => {
                    let field = path_of(&err);
                    errors.step(&label, field.as_deref(), err.into_inner().to_string());
                }
            }
        }
        errors.finish()?;

        let template = TaskTemplate {
            name: document.name,
            namespace_name: document.namespace_name,
            version: document.version,
            description: document.description,
            metadata: document.metadata,
            identity_strategy: document.identity_strategy,
            input_schema: document.input_schema,
            steps,
            environments: document.environments,
            lifecycle: document.lifecycle,
        };
        template.validate(file)?;
        Ok(template)
    }

    /// Runs the semantic checks of SPEC §2 on an already-typed template.
    ///
    /// # Errors
    /// [`TemplateErrors`] listing every problem found.
    pub fn validate(&self, file: Option<&str>) -> Result<(), TemplateErrors> {
        let mut errors = Collector::new(file);
        validate_into(self, &mut errors);
        errors.finish()
    }
}

fn check_size(len: usize, file: Option<&str>) -> Result<(), TemplateErrors> {
    if len > MAX_TEMPLATE_BYTES {
        return Err(single(
            file,
            None,
            None,
            format!("template is {len} bytes; the limit is {MAX_TEMPLATE_BYTES}"),
        ));
    }
    Ok(())
}

fn single(
    file: Option<&str>,
    step: Option<&str>,
    field: Option<String>,
    message: String,
) -> TemplateErrors {
    TemplateErrors(vec![TemplateError {
        file: file.map(str::to_owned),
        step: step.map(str::to_owned),
        field,
        message,
    }])
}

/// The dotted path of a serde error, or `None` at the root.
fn path_of<E>(err: &serde_path_to_error::Error<E>) -> Option<String> {
    let path = err.path().to_string();
    (path != ".").then_some(path)
}

/// A step's name for error messages: its `name` when it has a usable one,
/// otherwise its position.
fn step_label(raw: &Value, index: usize) -> String {
    match raw.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() && name.len() <= 64 => name.to_owned(),
        _ => format!("#{}", index + 1),
    }
}
