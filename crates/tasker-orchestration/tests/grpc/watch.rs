//! `WatchTask`, health and reflection: what only gRPC has.

use std::time::Duration;

use reqwest::Method;
use tasker_proto::v1;
use tasker_types::api::TaskView;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{Body, Stack};

/// Longest wait for one event; events are pushed as they commit.
const PATIENCE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn watch_task_pushes_every_change_and_ends_at_the_terminal_state() {
    let stack = Stack::start().await;
    let task = stack.new_task(5).await;
    let mut events = stack
        .clients()
        .tasks
        .watch_task(v1::WatchTaskRequest {
            task_uuid: task.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    // The history comes first: the task's creation is already there.
    let first = tokio::time::timeout(PATIENCE, events.message())
        .await
        .expect("no event within the patience")
        .unwrap()
        .unwrap();
    assert_eq!(first.task_uuid, task.to_string());

    // A change through the other API reaches the stream, which then ends.
    let cancelled: TaskView = stack
        .rest
        .ok(Method::DELETE, &format!("/v1/tasks/{task}"), Body::Empty)
        .await;
    assert_eq!(cancelled.state.as_str(), "cancelled");
    let mut seen = vec![first];
    loop {
        let next = tokio::time::timeout(PATIENCE, events.message())
            .await
            .expect("the stream neither sent nor ended within the patience");
        match next {
            Ok(Some(event)) => seen.push(event),
            Ok(None) => break,
            Err(status) => panic!("the stream failed: {status:?}"),
        }
    }
    assert!(
        seen.iter()
            .any(|e| e.workflow_step_uuid.is_none() && e.to_state == "cancelled"),
        "no task cancellation in {seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.workflow_step_uuid.is_some() && e.step_name.is_some()),
        "no step change in {seen:#?}"
    );
    assert!(
        seen.iter()
            .all(|e| e.task_uuid == task.to_string() && e.created_at.is_some())
    );
}

#[tokio::test]
async fn watch_task_refuses_unknown_tasks_and_bad_uuids() {
    let stack = Stack::start().await;
    let mut tasks = stack.clients().tasks;
    let unknown = tasks
        .watch_task(v1::WatchTaskRequest {
            task_uuid: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(
        unknown.metadata().get("tasker-error-code").unwrap(),
        "task_not_found"
    );
    let bad = tasks
        .watch_task(v1::WatchTaskRequest {
            task_uuid: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(bad.message(), "`task_uuid`: not a UUID");
}

#[tokio::test]
async fn health_reports_every_service_serving() {
    let stack = Stack::start().await;
    let mut health = HealthClient::new(stack.channel.clone());
    let services = tasker_proto::service_names().unwrap();
    for service in services.iter().map(String::as_str).chain([""]) {
        let reply = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "`{service}`");
    }
}

#[tokio::test]
async fn reflection_lists_the_tasker_services_and_health() {
    let stack = Stack::start().await;
    let mut reflection = ServerReflectionClient::new(stack.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(futures_util::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("not a service list: {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in tasker_proto::service_names()
        .unwrap()
        .into_iter()
        .chain(["grpc.health.v1.Health".to_owned()])
    {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
