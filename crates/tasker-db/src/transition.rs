//! Who made a transition and why: recorded on every transition row.

use serde_json::Value;

/// Audit data attached to a transition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransitionContext {
    /// The process that made the change (orchestrator or worker id).
    pub processor_id: Option<String>,
    /// Free-form details: an error summary, an operator's reason, …
    pub metadata: Value,
}

impl TransitionContext {
    /// A context naming the process that acts.
    pub fn by(processor_id: impl Into<String>) -> Self {
        Self {
            processor_id: Some(processor_id.into()),
            metadata: Value::Object(serde_json::Map::new()),
        }
    }

    /// The same context with `metadata` attached.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    pub(crate) fn metadata_or_empty(&self) -> Value {
        if self.metadata.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            self.metadata.clone()
        }
    }
}
