//! Task templates (SPEC §2): the model, the strict YAML/JSON parser and the
//! validator. A [`TaskTemplate`] value has always passed validation.

mod error;
mod model;
mod parse;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{TemplateError, TemplateErrors};
pub use model::{
    BatchConfig, DeliveryMode, EnvironmentOverrides, EventCondition, EventDeclaration,
    FailureStrategy, HandlerOverride, HandlerSpec, LifecycleThresholds, RetryOverride,
    StepDefinition, StepOverride, StepType, TaskTemplate,
};
pub use parse::MAX_TEMPLATE_BYTES;
pub use validate::{
    BATCH_SIZE_RANGE, LIFECYCLE_RANGE, MAX_ATTEMPTS_RANGE, MAX_BACKOFF_BASE_MS, MAX_BACKOFF_CAP_MS,
    MAX_STEPS, PARALLELISM_RANGE, TIMEOUT_RANGE,
};

use crate::identity::{canonical_json, sha256_hex};

impl TaskTemplate {
    /// SHA-256 of the template's canonical JSON: equal for templates that
    /// mean the same thing, whatever their YAML formatting or key order.
    pub fn content_hash(&self) -> String {
        // Serializing plain data structs to a Value cannot fail; fall back to
        // Null so the signature stays infallible.
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        sha256_hex(canonical_json(&value).as_bytes())
    }
}
