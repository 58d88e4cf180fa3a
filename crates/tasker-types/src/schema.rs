//! JSON Schema checks of task contexts (`input_schema`) and handler results
//! (`result_schema`), compiled once and reused.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A compiled JSON Schema.
#[derive(Debug)]
pub struct CompiledSchema(jsonschema::Validator);

/// One way an instance breaks a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaViolation {
    /// JSON Pointer to the offending value (`""` for the root), e.g. `/items/0/qty`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl CompiledSchema {
    /// Compiles `schema` (templates validate their schemas at registration).
    ///
    /// # Errors
    /// The compiler's message when `schema` is not a valid JSON Schema.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    /// Every violation of the schema by `instance` (empty when it conforms).
    pub fn violations(&self, instance: &Value) -> Vec<SchemaViolation> {
        self.0
            .iter_errors(instance)
            .map(|e| SchemaViolation {
                path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn violations_name_the_failing_field() {
        let schema = CompiledSchema::compile(&json!({
            "type": "object", "required": ["value"],
            "properties": {"value": {"type": "integer"}, "items": {"type": "array", "items": {"type": "integer"}}}
        }))
        .unwrap();
        assert!(schema.violations(&json!({"value": 6})).is_empty());
        let bad = schema.violations(&json!({"value": "six", "items": [1, "x"]}));
        let paths: Vec<&str> = bad.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/items/1", "/value"]);
        let missing = schema.violations(&json!({}));
        assert_eq!(missing[0].to_string(), "\"value\" is a required property");
    }
}
