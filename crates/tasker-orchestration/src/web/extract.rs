//! Request extractors that enforce SPEC §8.1's limits and answer every
//! rejection with the documented error body: JSON bodies (size, nesting
//! depth, field-level type errors), UUID path segments, query strings, and
//! template bodies in YAML or JSON.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::Principal;
use crate::services::templates::TemplateSource;

/// Most bytes of an oversized body read and discarded so that its sender,
/// still writing, gets to read the 413 instead of a broken pipe (clients
/// such as Python's `urllib` only read once they have sent everything).
/// Bodies declared larger are refused at once and the connection closed.
const DRAIN_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Longest time spent discarding an oversized body.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the body under the configured size limit.
async fn body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.web.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
        .closing()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = req.into_body();
    if let Some(declared) = declared.filter(|n| *n > limit) {
        if declared <= DRAIN_MAX_BYTES {
            drain(&mut body, 0).await;
        }
        return Err(too_large());
    }
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            ApiError::bad_request(
                "bad_request",
                format!("cannot read the request body: {err}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if collected.len() + data.len() > limit {
            drain(&mut body, collected.len() + data.len()).await;
            return Err(too_large());
        }
        collected.extend_from_slice(&data);
    }
    Ok(Bytes::from(collected))
}

/// Reads and discards the rest of `body` (`seen` bytes already read), up
/// to [`DRAIN_MAX_BYTES`] and [`DRAIN_TIMEOUT`].
async fn drain(body: &mut axum::body::Body, mut seen: usize) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while seen <= DRAIN_MAX_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                Some(Err(_)) | None => return,
            }
        }
    })
    .await;
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn is_json(content_type: &str) -> bool {
    content_type == "application/json" || content_type.ends_with("+json")
}

/// The nesting depth of a JSON text, counted without parsing it, so a
/// hostile body is refused before serde sees it.
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Decodes a JSON request body as the REST API does: the nesting depth
/// checked before parsing, the whole body one document, type errors naming
/// the field. Public for the fuzz harnesses (tasker-fuzz).
///
/// # Errors
/// [`ApiError`] with code `too_deep`, `invalid_json` or `validation_failed`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    let depth = json_depth(bytes);
    if depth > max_depth {
        return Err(ApiError::bad_request(
            "too_deep",
            format!("JSON nests {depth} levels deep; the limit is {max_depth}"),
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let invalid = |inner: serde_json::Error| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {inner}"),
        )
    };
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            invalid(inner)
        } else {
            let field = (path != ".").then_some(path);
            let message = match &field {
                Some(field) => format!("field `{field}`: {inner}"),
                None => inner.to_string(),
            };
            ApiError::bad_request("validation_failed", message)
                .with_details(json!({ "field": field }))
        }
    })?;
    // Anything after the document (a second one, garbage) is refused too.
    deserializer.end().map_err(invalid)?;
    Ok(value)
}

/// A JSON body, size- and depth-limited, with field-level errors.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let kind = content_type(&req);
        if !is_json(&kind) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = body(req, &state).await?;
        parse_json(&bytes, state.web.max_json_depth).map(ApiJson)
    }
}

/// A template body: YAML (`application/yaml`, `text/yaml`, …) or JSON.
#[derive(Debug)]
pub(crate) struct TemplateBody(pub(crate) TemplateSource);

impl<S> FromRequest<S> for TemplateBody
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let kind = content_type(&req);
        let yaml = matches!(
            kind.as_str(),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
        );
        if !yaml && !is_json(&kind) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the template as YAML (`Content-Type: application/yaml`) or JSON",
            ));
        }
        let bytes = body(req, &state).await?;
        if yaml {
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::bad_request("invalid_yaml", "the template is not UTF-8 text")
            })?;
            Ok(TemplateBody(TemplateSource::Yaml(text)))
        } else {
            parse_json(&bytes, state.web.max_json_depth)
                .map(|v| TemplateBody(TemplateSource::Json(v)))
        }
    }
}

/// Query parameters, with 400s that name the parameter.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from_str(query).map(ApiQuery)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_query", "the query string is malformed"))?,
    )
    .map(|q| q.0)
    .map_err(|err| {
        ApiError::bad_request(
            "invalid_query",
            format!("invalid query parameters: {}", err.body_text()),
        )
    })
}

/// The authenticated caller of a protected route (`Authorization: Bearer`
/// or `X-API-Key`); with auth off, [`Principal::unauthenticated`]. Listed
/// first among a handler's arguments, so a request without credentials is
/// answered 401 before its body is read.
#[derive(Debug)]
pub(crate) struct Caller(pub(crate) Principal);

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        };
        state
            .auth
            .authenticate_headers(header("authorization"), header("x-api-key"))
            .map(Caller)
            .map_err(ApiError::from)
    }
}

/// Parses a UUID path segment, answering 400 when it is not one.
pub(crate) fn uuid_param<T: From<Uuid>>(raw: &str, what: &str) -> Result<T, ApiError> {
    Uuid::parse_str(raw).map(T::from).map_err(|_| {
        ApiError::bad_request(
            "invalid_uuid",
            format!("`{raw}` is not a valid {what} UUID"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": 2}]}"#), 3);
        assert_eq!(json_depth(br#"{"a": "[[[[{{{{", "b": "\"[{"}"#), 1);
        assert_eq!(json_depth(b"1"), 0);
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert_eq!(json_depth(deep.as_bytes()), 40);
    }

    #[test]
    fn type_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Req {
            name: String,
            priority: i32,
        }
        let err = parse_json::<Req>(br#"{"name": "x", "priority": "high"}"#, 32).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(format!("{err:?}").contains("field `priority`"), "{err:?}");
        let err = parse_json::<Req>(b"{not json", 32).unwrap_err();
        assert!(format!("{err:?}").contains("invalid_json"), "{err:?}");
    }
}
