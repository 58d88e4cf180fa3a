//! JSON payloads as `*_json` text fields: lossless for integers (a
//! `google.protobuf.Struct` would turn every number into a double).

use serde_json::Value;

/// The JSON text of `value`, compact.
pub(crate) fn text(value: &Value) -> String {
    value.to_string()
}

/// The JSON text of an optional payload. A JSON `null` is sent as an unset
/// field: REST readers cannot tell `null` from absent either, and the two
/// adapters must show the same data.
pub(crate) fn optional_text(value: Option<&Value>) -> Option<String> {
    value.filter(|v| !v.is_null()).map(text)
}

/// Parses the JSON text of field `field`.
///
/// # Errors
/// ``"`field`: not JSON: …"`` with the parser's reason.
pub fn parse(field: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("`{field}`: not JSON: {e}"))
}

/// Parses an optional JSON field; unset stays `None`.
pub(crate) fn parse_optional(field: &str, text: Option<&str>) -> Result<Option<Value>, String> {
    text.map(|t| parse(field, t)).transpose()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn big_integers_survive_the_text() {
        let value = json!({"id": 9_007_199_254_740_993_u64, "neg": -9_007_199_254_740_993_i64});
        assert_eq!(parse("x", &text(&value)).unwrap(), value);
    }

    #[test]
    fn null_payloads_are_unset_and_bad_text_names_the_field() {
        assert_eq!(optional_text(Some(&Value::Null)), None);
        assert_eq!(
            optional_text(Some(&json!({"a": 1}))).as_deref(),
            Some(r#"{"a":1}"#)
        );
        let err = parse("context_json", "{nope").unwrap_err();
        assert!(err.starts_with("`context_json`: not JSON: "), "{err}");
    }
}
