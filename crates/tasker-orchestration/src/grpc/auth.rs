//! Credentials from request metadata: `authorization` (a bearer JWT) and
//! `x-api-key`, the same two that REST reads from headers, checked by the
//! same authenticator.

use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use super::GrpcState;
use super::status::to_status;
use crate::auth::Principal;
use crate::backpressure::Intake;
use crate::services::error::ServiceError;

/// The caller of `request`: anonymous and allowed everything when auth is
/// off, otherwise whoever its credentials name. Every `tasker.v1` handler
/// starts here, so this is also where a call is refused while a circuit
/// breaker is open (SPEC §12), as REST's guard does.
///
/// # Errors
/// `UNAVAILABLE` (with `retry-after` metadata) while a breaker is open;
/// `UNAUTHENTICATED` without credentials, with bad ones, or with metadata
/// that is not text.
pub(crate) fn principal<T>(state: &GrpcState, request: &Request<T>) -> Result<Principal, Status> {
    if let Some(refusal) = state.orchestrator.refusal(Intake::Other) {
        return Err(to_status(ServiceError::refused(&refusal)));
    }
    let metadata = request.metadata();
    let authorization = text(metadata, "authorization")?;
    let api_key = text(metadata, "x-api-key")?;
    state
        .auth
        .authenticate_headers(authorization, api_key)
        .map_err(to_status)
}

/// The text of metadata entry `key`, if present.
fn text<'a>(metadata: &'a MetadataMap, key: &str) -> Result<Option<&'a str>, Status> {
    metadata
        .get(key)
        .map(|value| {
            value.to_str().map_err(|_| {
                to_status(ServiceError::unauthorized(format!(
                    "the `{key}` metadata is not text"
                )))
            })
        })
        .transpose()
}
