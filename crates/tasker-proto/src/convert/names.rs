//! States, kinds and statuses as their snake_case API names, and UUIDs as
//! text.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// The API name of a unit enum, as serde (and so REST) spells it.
pub(crate) fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        // Only unit variants reach here; anything else is a programming
        // error that shows up in the conversion tests as an empty name.
        _ => String::new(),
    }
}

/// Parses the API name `text` of field `field` into `T`, which serde knows
/// by the same names REST uses; `what` says what it names.
///
/// # Errors
/// ``"`field`: unknown what `text`"``.
pub(crate) fn parse_name<T: DeserializeOwned>(
    field: &str,
    what: &str,
    text: &str,
) -> Result<T, String> {
    serde_json::from_value(Value::String(text.to_owned()))
        .map_err(|_| format!("`{field}`: unknown {what} `{text}`"))
}

/// Parses an optional name; unset stays `None`.
pub(crate) fn parse_optional_name<T: DeserializeOwned>(
    field: &str,
    what: &str,
    text: Option<&str>,
) -> Result<Option<T>, String> {
    text.map(|t| parse_name(field, what, t)).transpose()
}

/// Parses the UUID text of field `field` into an id type.
///
/// # Errors
/// ``"`field`: not a UUID"``.
pub fn parse_uuid<T: From<Uuid>>(field: &str, text: &str) -> Result<T, String> {
    Uuid::parse_str(text)
        .map(T::from)
        .map_err(|_| format!("`{field}`: not a UUID"))
}

/// Parses an optional UUID; unset stays `None`.
pub(crate) fn parse_optional_uuid<T: From<Uuid>>(
    field: &str,
    text: Option<&str>,
) -> Result<Option<T>, String> {
    text.map(|t| parse_uuid(field, t)).transpose()
}

#[cfg(test)]
mod tests {
    use tasker_types::api::ExecutionStatus;
    use tasker_types::ids::TaskUuid;
    use tasker_types::state::TaskState;

    use super::*;

    #[test]
    fn names_are_the_rest_names() {
        assert_eq!(
            name_of(&ExecutionStatus::WaitingForDependencies),
            "waiting_for_dependencies"
        );
        for state in TaskState::ALL {
            assert_eq!(name_of(&state), state.as_str());
            assert_eq!(
                parse_name::<TaskState>("state", "task state", state.as_str()).unwrap(),
                state
            );
        }
    }

    #[test]
    fn unknown_names_and_bad_uuids_name_the_field() {
        assert_eq!(
            parse_name::<TaskState>("state", "task state", "x").unwrap_err(),
            "`state`: unknown task state `x`"
        );
        assert_eq!(
            parse_uuid::<TaskUuid>("task_uuid", "nope").unwrap_err(),
            "`task_uuid`: not a UUID"
        );
        let id = TaskUuid::new();
        assert_eq!(
            parse_uuid::<TaskUuid>("task_uuid", &id.to_string()).unwrap(),
            id
        );
    }
}
