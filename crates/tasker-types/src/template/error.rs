//! Template errors. Each one names the file (when there is one), the step and
//! the field, so a person can fix it without guessing.

use std::fmt;

/// One problem with a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// The file the template came from, if any.
    pub file: Option<String>,
    /// The step concerned, if the problem is inside a step.
    pub step: Option<String>,
    /// The field concerned, as a dotted path within the template or step.
    pub field: Option<String>,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut location = Vec::new();
        if let Some(file) = &self.file {
            location.push(file.clone());
        }
        if let Some(step) = &self.step {
            location.push(format!("step '{step}'"));
        }
        if let Some(field) = &self.field {
            location.push(format!("field '{field}'"));
        }
        if location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", location.join(", "), self.message)
        }
    }
}

/// Every problem found in one template (never empty).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TemplateErrors(pub Vec<TemplateError>);

impl TemplateErrors {
    /// The problems, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &TemplateError> {
        self.0.iter()
    }

    /// The first problem.
    pub fn first(&self) -> Option<&TemplateError> {
        self.0.first()
    }
}

impl fmt::Display for TemplateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [single] => write!(f, "{single}"),
            many => {
                write!(f, "{} problems in template:", many.len())?;
                for error in many {
                    write!(f, "\n  - {error}")?;
                }
                Ok(())
            }
        }
    }
}

/// Collects errors with the file and step filled in.
#[derive(Debug)]
pub(crate) struct Collector<'a> {
    file: Option<&'a str>,
    errors: Vec<TemplateError>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(file: Option<&'a str>) -> Self {
        Self {
            file,
            errors: Vec::new(),
        }
    }

    /// A problem with a template-level field.
    pub(crate) fn template(&mut self, field: Option<&str>, message: impl Into<String>) {
        self.push(None, field, message.into());
    }

    /// A problem inside step `step`.
    pub(crate) fn step(&mut self, step: &str, field: Option<&str>, message: impl Into<String>) {
        self.push(Some(step), field, message.into());
    }

    fn push(&mut self, step: Option<&str>, field: Option<&str>, message: String) {
        self.errors.push(TemplateError {
            file: self.file.map(str::to_owned),
            step: step.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
        });
    }

    pub(crate) fn finish(self) -> Result<(), TemplateErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(TemplateErrors(self.errors))
        }
    }
}
