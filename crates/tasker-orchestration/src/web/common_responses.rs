//! The answers every `/v1` operation can give whatever it does, added to
//! the OpenAPI document in one place so that no route can forget them
//! (schemathesis checks the document against the server): `503` with
//! `Retry-After` (a breaker open, backpressure, a request timeout); `413`
//! and `415` for operations with a body; `401` and `403` for protected
//! ones. Path parameters named `*_uuid` are declared as UUIDs.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Content, Header, OpenApi, Ref, RefOr, ResponseBuilder};

fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

fn unavailable() -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(
            "Unavailable: a circuit breaker is open (`circuit_open`), orchestration is behind \
             (`backpressure`, new tasks only), the database did not answer (`unavailable`) or \
             the request took too long (`timeout`). Retry after `Retry-After` seconds.",
        )
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .header(
            "Retry-After",
            Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
        )
        .build()
        .into()
}

fn add_common(op: &mut Operation) {
    let responses = &mut op.responses.responses;
    responses.entry("503".into()).or_insert_with(unavailable);
    if op.request_body.is_some() {
        responses
            .entry("413".into())
            .or_insert_with(|| error("Body too large"));
        responses
            .entry("415".into())
            .or_insert_with(|| error("Body sent without the content type the operation takes"));
        responses
            .entry("400".into())
            .or_insert_with(|| error("Malformed body"));
    }
    if op.security.is_some() {
        responses
            .entry("401".into())
            .or_insert_with(|| error("No valid credentials (auth on)"));
        responses
            .entry("403".into())
            .or_insert_with(|| error("Credentials without the permission this needs (auth on)"));
    }
    for parameter in op.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && parameter.parameter_in == ParameterIn::Path
            && parameter.name.ends_with("_uuid")
        {
            parameter.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into(),
            );
        }
    }
}

/// Adds the common answers to every `/v1` operation of `doc` (call after
/// the security requirements are declared).
pub(crate) fn declare(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add_common(op);
        }
    }
}
