//! Request and response types shared by the API, the client and the engine.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::CorrelationId;

/// A request to run a template (SPEC §8.1 `POST /v1/tasks`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Template namespace.
    pub namespace: String,
    /// Template name.
    pub name: String,
    /// Template version; the highest registered one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The task's context, checked against the template's `input_schema`.
    #[serde(default = "empty_object")]
    pub context: Value,
    /// Who asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    /// Which system asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Higher runs first where there is a choice.
    #[serde(default)]
    pub priority: i32,
    /// A correlation id to reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// Identifies duplicate requests (SPEC §4.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl TaskRequest {
    /// A request for the highest version of `namespace/name` with `context`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, context: Value) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            version: None,
            context,
            initiator: None,
            source_system: None,
            reason: None,
            tags: Vec::new(),
            priority: 0,
            correlation_id: None,
            idempotency_key: None,
        }
    }
}
