//! Declares the API's security schemes in the OpenAPI document and, from
//! the operation table, what each route needs.

use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation as DocOperation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};

use crate::operations;

/// The bearer scheme's name in the document.
const BEARER: &str = "bearer_jwt";
/// The API-key scheme's name in the document.
const API_KEY: &str = "api_key";

/// Adds the schemes, and on every protected operation the requirement
/// (either scheme) and the permission it needs. Public operations get none.
pub(crate) fn declare(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A JWT (HS256 or RS256) carrying `sub`, `iss`, `aud`, `exp`, `nbf` and \
                     `permissions`. Required only when `[auth] enabled = true`.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key configured under `[[auth.api_keys]]`, with its own permissions.",
        ))),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let methods: [(&str, &mut Option<DocOperation>); 5] = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ];
        for (method, slot) in methods {
            let (Some(doc_op), Some(permission)) = (
                slot.as_mut(),
                operations::by_route(method, path).and_then(|o| o.permission),
            ) else {
                continue;
            };
            doc_op.security = Some(vec![
                SecurityRequirement::new(BEARER, [permission.as_str()]),
                SecurityRequirement::new(API_KEY, [permission.as_str()]),
            ]);
            let needs = format!("\n\nRequires the permission `{permission}` when auth is on.");
            doc_op.description = Some(doc_op.description.take().unwrap_or_default() + &needs);
        }
    }
}
