//! Service errors as gRPC statuses: the one place a kind becomes a code,
//! as `web/error.rs` is the one place it becomes an HTTP status. The
//! status message is the service's message; the stable code and the
//! details travel in metadata, so clients need not parse messages.

use serde_json::Value;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use crate::services::error::{ErrorKind, ServiceError};

/// Metadata key of the stable error code (REST's `error.code`).
pub(crate) const ERROR_CODE: &str = "tasker-error-code";
/// Metadata key of the error details as JSON text (REST's `error.details`).
pub(crate) const ERROR_DETAILS: &str = "tasker-error-details";

/// Metadata key of the seconds to wait before retrying (REST's `Retry-After`).
pub(crate) const RETRY_AFTER: &str = "retry-after";

/// The gRPC code of an error kind.
pub(crate) fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        // A conflict with what exists (a duplicate, a finished task, a
        // state that refuses the action): retrying unchanged won't help.
        ErrorKind::Conflict => Code::FailedPrecondition,
        ErrorKind::Invalid | ErrorKind::Unprocessable => Code::InvalidArgument,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Unauthorized => Code::Unauthenticated,
        ErrorKind::Forbidden => Code::PermissionDenied,
        ErrorKind::Internal => Code::Internal,
    }
}

/// `err` as a status: the kind's code, the service's message, and the code
/// and details in metadata.
pub(crate) fn to_status(err: ServiceError) -> Status {
    let mut metadata = MetadataMap::new();
    if let Ok(code) = MetadataValue::try_from(err.code()) {
        metadata.insert(ERROR_CODE, code);
    }
    // Metadata values are visible ASCII; JSON escapes make any details so.
    // Should that still fail, the details are left out rather than the
    // error lost.
    if let Ok(details) = MetadataValue::try_from(ascii_json(err.details())) {
        metadata.insert(ERROR_DETAILS, details);
    }
    if let Some(seconds) = err.retry_after() {
        metadata.insert(RETRY_AFTER, MetadataValue::from(seconds));
    }
    Status::with_metadata(code_of(err.kind()), err.message(), metadata)
}

/// Compact JSON with every character outside printable ASCII written as a
/// `\u` escape. Such characters occur only inside JSON strings (serde
/// already escapes control characters), where the escape means the same.
fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_kind_has_its_code() {
        let expected = [
            (ErrorKind::NotFound, Code::NotFound),
            (ErrorKind::Conflict, Code::FailedPrecondition),
            (ErrorKind::Invalid, Code::InvalidArgument),
            (ErrorKind::Unprocessable, Code::InvalidArgument),
            (ErrorKind::Unavailable, Code::Unavailable),
            (ErrorKind::Unauthorized, Code::Unauthenticated),
            (ErrorKind::Forbidden, Code::PermissionDenied),
            (ErrorKind::Internal, Code::Internal),
        ];
        for (kind, code) in expected {
            // The match below fails to compile when a kind is added, so
            // this table cannot silently fall behind.
            match kind {
                ErrorKind::NotFound
                | ErrorKind::Conflict
                | ErrorKind::Invalid
                | ErrorKind::Unprocessable
                | ErrorKind::Unavailable
                | ErrorKind::Unauthorized
                | ErrorKind::Forbidden
                | ErrorKind::Internal => {}
            }
            let status = to_status(ServiceError::new(kind, "some_code", "what went wrong"));
            assert_eq!(status.code(), code, "{}", kind.as_str());
            assert_eq!(status.message(), "what went wrong");
        }
    }

    #[test]
    fn the_code_and_details_travel_in_metadata() {
        let err = ServiceError::new(ErrorKind::Conflict, "duplicate_task", "a duplicate")
            .with_details(json!({"task_uuid": "0190a0b0-0000-7000-8000-000000000000"}));
        let status = to_status(err);
        let metadata = status.metadata();
        assert_eq!(metadata.get(ERROR_CODE).unwrap(), "duplicate_task");
        let details: Value =
            serde_json::from_str(metadata.get(ERROR_DETAILS).unwrap().to_str().unwrap()).unwrap();
        assert_eq!(
            details,
            json!({"task_uuid": "0190a0b0-0000-7000-8000-000000000000"})
        );
    }

    #[test]
    fn non_ascii_details_are_escaped_and_mean_the_same() {
        let details = json!({"field": "naïve 🚀", "note": "tab\there"});
        let text = ascii_json(&details);
        assert!(text.is_ascii() && !text.contains('\t'), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), details);
        let status = to_status(ServiceError::invalid("bad").with_details(details.clone()));
        let sent = status
            .metadata()
            .get(ERROR_DETAILS)
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(sent).unwrap(), details);
        assert_eq!(status.metadata().get(ERROR_CODE).unwrap(), "bad_request");
    }
}
