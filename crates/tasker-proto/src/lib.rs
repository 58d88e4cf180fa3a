//! Tasker's gRPC API, package `tasker.v1` (SPEC §8.2): the prost messages
//! and tonic clients and servers generated from `proto/tasker/v1/*.proto`,
//! the encoded descriptor set that server reflection serves, and the
//! conversions between these messages and the API types of
//! [`tasker_types`], so that the gRPC adapter and the REST adapter show the
//! same data.
//!
//! Conventions (stated at the head of `tasks.proto`): field names are the
//! REST JSON names; JSON payloads are `*_json` strings holding JSON text;
//! states and statuses are their snake_case names; instants are
//! `google.protobuf.Timestamp`.
//!
//! - Views (responses) convert with `From`: `v1::TaskView::from(view)`.
//! - Requests convert with `TryFrom`, failing with a message that names the
//!   field: `TaskRequest::try_from(request)` →
//!   ``"`context_json`: not JSON: …"``. They also convert back, so clients
//!   and tests can build a gRPC request from the REST request type.
//!
//! ```
//! use tasker_types::api::TaskRequest;
//! use tasker_proto::v1;
//!
//! let request = TaskRequest::new("linear_workflow", "mathematical_sequence", serde_json::json!({"value": 6}));
//! let message = v1::CreateTaskRequest::from(request.clone());
//! assert_eq!(message.context_json, r#"{"value":6}"#);
//! assert_eq!(TaskRequest::try_from(message).unwrap(), request);
//! ```

pub mod convert;

/// The generated messages, clients (`*_client`) and servers (`*_server`)
/// of package `tasker.v1`.
pub mod v1 {
    // Generated code: its docs come from the proto comments, and its style
    // is prost's and tonic's, not ours.
    #![allow(
        missing_docs,
        unreachable_pub,
        rust_2018_idioms,
        clippy::all,
        clippy::pedantic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )]
    tonic::include_proto!("tasker.v1");
}

/// The encoded `FileDescriptorSet` of every file of `tasker.v1` and its
/// imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tasker_v1_descriptor.bin"));

/// The package every Tasker service lives in.
pub const PACKAGE: &str = "tasker.v1";

/// The full name (`tasker.v1.TaskService`) of every service of the package.
///
/// # Errors
/// [`prost::DecodeError`] if [`FILE_DESCRIPTOR_SET`] is corrupt (a build bug).
pub fn service_names() -> Result<Vec<String>, prost::DecodeError> {
    Ok(package_services()?
        .map(|service| format!("{PACKAGE}.{}", service.name()))
        .collect())
}

/// The full method path (`/tasker.v1.TaskService/CreateTask`) of every RPC
/// of the package, as gRPC requests name them.
///
/// # Errors
/// [`prost::DecodeError`] if [`FILE_DESCRIPTOR_SET`] is corrupt (a build bug).
pub fn rpc_names() -> Result<Vec<String>, prost::DecodeError> {
    Ok(package_services()?
        .flat_map(|service| {
            let prefix = format!("/{PACKAGE}.{}/", service.name());
            service
                .method
                .iter()
                .map(move |method| format!("{prefix}{}", method.name()))
                .collect::<Vec<_>>()
        })
        .collect())
}

fn package_services()
-> Result<impl Iterator<Item = prost_types::ServiceDescriptorProto>, prost::DecodeError> {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)?;
    Ok(set
        .file
        .into_iter()
        .filter(|file| file.package() == PACKAGE)
        .flat_map(|file| file.service))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_descriptor_set_names_every_service_and_rpc() {
        let services = super::service_names().unwrap();
        for name in [
            "TaskService",
            "StepService",
            "TemplateService",
            "DlqService",
        ] {
            assert!(
                services.contains(&format!("tasker.v1.{name}")),
                "{services:?}"
            );
        }
        let rpcs = super::rpc_names().unwrap();
        for rpc in [
            "/tasker.v1.TaskService/CreateTask",
            "/tasker.v1.TaskService/WatchTask",
            "/tasker.v1.StepService/ActOnStep",
            "/tasker.v1.TemplateService/ValidateTemplate",
            "/tasker.v1.DlqService/ResolveMatching",
        ] {
            assert!(rpcs.iter().any(|r| r == rpc), "{rpc} missing: {rpcs:?}");
        }
        assert!(rpcs.len() >= 18, "{rpcs:?}");
    }
}
