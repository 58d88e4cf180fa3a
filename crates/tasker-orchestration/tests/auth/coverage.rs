//! The operation table covers every route and every RPC: adding one
//! without saying what it needs fails here.

use std::collections::BTreeSet;

use tasker_orchestration::operations::{OPERATIONS, by_route};

#[test]
fn every_documented_route_is_in_the_operation_table() {
    let (_, doc) = tasker_orchestration::web::api_router();
    let mut documented = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        for (method, present) in [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ] {
            if present {
                assert!(
                    by_route(method, path).is_some(),
                    "{method} {path} has no entry in tasker_orchestration::operations::OPERATIONS"
                );
                documented.insert((method, path.clone()));
            }
        }
    }
    for op in OPERATIONS {
        if let Some((method, path)) = op.rest {
            // The document itself is served beside the routes it describes.
            if path == "/api-docs/openapi.json" {
                continue;
            }
            assert!(
                documented.contains(&(method, path.to_owned())),
                "{} names {method} {path}, which the API does not have",
                op.name
            );
        }
    }
}

#[test]
fn every_rpc_is_in_the_operation_table() {
    let rpcs: BTreeSet<String> = tasker_orchestration::grpc::rpc_names()
        .into_iter()
        .collect();
    assert!(rpcs.len() > 15, "{rpcs:?}");
    for rpc in &rpcs {
        assert!(
            OPERATIONS.iter().any(|o| o.grpc == Some(rpc.as_str())),
            "{rpc} has no entry in tasker_orchestration::operations::OPERATIONS"
        );
    }
    for op in OPERATIONS {
        if let Some(rpc) = op.grpc
            && rpc.starts_with("/tasker.")
        {
            assert!(
                rpcs.contains(rpc),
                "{} names {rpc}, which the proto does not have",
                op.name
            );
        }
    }
}

#[test]
fn the_openapi_document_declares_both_schemes_and_each_routes_permission() {
    let (_, doc) = tasker_orchestration::web::api_router();
    let value = serde_json::to_value(&doc).unwrap();
    let schemes = &value["components"]["securitySchemes"];
    assert_eq!(schemes["bearer_jwt"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key", "{schemes}");
    let create = &value["paths"]["/v1/tasks"]["post"];
    assert_eq!(
        create["security"][0]["bearer_jwt"][0], "tasks:create",
        "{create}"
    );
    assert!(value["paths"]["/health"]["get"]["security"].is_null());
}
