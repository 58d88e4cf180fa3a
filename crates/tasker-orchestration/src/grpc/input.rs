//! Request fields into service inputs. A field that does not convert is
//! the caller's mistake: `INVALID_ARGUMENT`, with a message naming the
//! field and the same error codes REST uses for such input.

use tasker_proto::convert::parse_uuid;
use tonic::Status;
use uuid::Uuid;

use super::status::to_status;
use crate::services::error::{ErrorKind, ServiceError};

/// Converts request message `message` into the service's input type.
pub(crate) fn convert<M, T>(message: M) -> Result<T, Status>
where
    T: TryFrom<M, Error = String>,
{
    T::try_from(message).map_err(|m| {
        to_status(ServiceError::new(
            ErrorKind::Invalid,
            "validation_failed",
            m,
        ))
    })
}

/// Parses the UUID in field `field` (REST has it in the path).
pub(crate) fn uuid<T: From<Uuid>>(field: &str, text: &str) -> Result<T, Status> {
    parse_uuid(field, text)
        .map_err(|m| to_status(ServiceError::new(ErrorKind::Invalid, "invalid_uuid", m)))
}
