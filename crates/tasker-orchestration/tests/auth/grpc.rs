//! The matrix over gRPC: every RPC of the operation table, each credential.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tasker_orchestration::operations::OPERATIONS;
use tasker_proto::v1 as pb;
use tasker_proto::v1::analytics_service_client::AnalyticsServiceClient;
use tasker_proto::v1::dlq_service_client::DlqServiceClient;
use tasker_proto::v1::step_service_client::StepServiceClient;
use tasker_proto::v1::task_service_client::TaskServiceClient;
use tasker_proto::v1::template_service_client::TemplateServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::support::{AuthServer, Credential, Expect};

/// What one RPC call needs: the channel, the credential, and the ids of
/// the fixtures (a fresh task for a cancel).
struct Ctx {
    channel: Channel,
    credential: Credential,
    task: String,
    step: String,
    template_yaml: String,
}

impl Ctx {
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some((name, value)) = self.credential.header() {
            request.metadata_mut().insert(name, value.parse().unwrap());
        }
        request
    }
}

type Call = fn(Ctx) -> BoxFuture<'static, Result<(), Status>>;

/// Every tasker RPC with a call that succeeds when allowed (`true`), or
/// that may be refused by the service on the fixture past the auth check
/// (`false`: an unknown DLQ entry, a step not in error).
fn calls() -> Vec<(&'static str, bool, Call)> {
    vec![
        ("/tasker.v1.TaskService/CreateTask", true, |c| {
            async move {
                let message = pb::CreateTaskRequest {
                    namespace: "linear_workflow".into(),
                    name: "mathematical_sequence".into(),
                    context_json: r#"{"value": 3}"#.into(),
                    idempotency_key: Some(uuid::Uuid::now_v7().to_string()),
                    ..Default::default()
                };
                TaskServiceClient::new(c.channel.clone())
                    .create_task(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TaskService/ListTasks", true, |c| {
            async move {
                TaskServiceClient::new(c.channel.clone())
                    .list_tasks(c.request(pb::ListTasksRequest::default()))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TaskService/GetTask", true, |c| {
            async move {
                let message = pb::GetTaskRequest {
                    task_uuid: c.task.clone(),
                };
                TaskServiceClient::new(c.channel.clone())
                    .get_task(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TaskService/CancelTask", true, |c| {
            async move {
                let message = pb::CancelTaskRequest {
                    task_uuid: c.task.clone(),
                    reason: None,
                };
                TaskServiceClient::new(c.channel.clone())
                    .cancel_task(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TaskService/WatchTask", true, |c| {
            async move {
                let message = pb::WatchTaskRequest {
                    task_uuid: c.task.clone(),
                };
                TaskServiceClient::new(c.channel.clone())
                    .watch_task(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.StepService/ListSteps", true, |c| {
            async move {
                let message = pb::ListStepsRequest {
                    task_uuid: c.task.clone(),
                };
                StepServiceClient::new(c.channel.clone())
                    .list_steps(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.StepService/GetStep", true, |c| {
            async move {
                let message = pb::GetStepRequest {
                    task_uuid: c.task.clone(),
                    step_uuid: c.step.clone(),
                };
                StepServiceClient::new(c.channel.clone())
                    .get_step(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.StepService/GetStepAudit", true, |c| {
            async move {
                let message = pb::GetStepAuditRequest {
                    task_uuid: c.task.clone(),
                    step_uuid: c.step.clone(),
                };
                StepServiceClient::new(c.channel.clone())
                    .get_step_audit(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.StepService/ActOnStep", false, |c| {
            async move {
                let message = pb::ActOnStepRequest {
                    task_uuid: c.task.clone(),
                    step_uuid: c.step.clone(),
                    action: "resolve_manually".into(),
                    reason: "auth matrix".into(),
                    ..Default::default()
                };
                StepServiceClient::new(c.channel.clone())
                    .act_on_step(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TemplateService/ListTemplates", true, |c| {
            async move {
                TemplateServiceClient::new(c.channel.clone())
                    .list_templates(c.request(pb::ListTemplatesRequest::default()))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TemplateService/GetTemplate", true, |c| {
            async move {
                let message = pb::GetTemplateRequest {
                    namespace: "linear_workflow".into(),
                    name: "mathematical_sequence".into(),
                    version: "1.0.0".into(),
                };
                TemplateServiceClient::new(c.channel.clone())
                    .get_template(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TemplateService/RegisterTemplate", true, |c| {
            async move {
                let message = pb::RegisterTemplateRequest {
                    source: Some(pb::register_template_request::Source::Yaml(
                        c.template_yaml.clone(),
                    )),
                };
                TemplateServiceClient::new(c.channel.clone())
                    .register_template(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.TemplateService/ValidateTemplate", true, |c| {
            async move {
                let message = pb::ValidateTemplateRequest {
                    source: Some(pb::validate_template_request::Source::Yaml(
                        c.template_yaml.clone(),
                    )),
                };
                TemplateServiceClient::new(c.channel.clone())
                    .validate_template(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.DlqService/ListEntries", true, |c| {
            async move {
                DlqServiceClient::new(c.channel.clone())
                    .list_entries(c.request(pb::ListDlqEntriesRequest::default()))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.DlqService/GetStats", true, |c| {
            async move {
                DlqServiceClient::new(c.channel.clone())
                    .get_stats(c.request(pb::GetDlqStatsRequest::default()))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.DlqService/ListForTask", true, |c| {
            async move {
                let message = pb::ListDlqEntriesForTaskRequest {
                    task_uuid: c.task.clone(),
                };
                DlqServiceClient::new(c.channel.clone())
                    .list_for_task(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.DlqService/UpdateEntry", false, |c| {
            async move {
                let message = pb::UpdateDlqEntryRequest {
                    entry_uuid: uuid::Uuid::now_v7().to_string(),
                    status: "investigating".into(),
                    ..Default::default()
                };
                DlqServiceClient::new(c.channel.clone())
                    .update_entry(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.DlqService/ResolveMatching", true, |c| {
            async move {
                let message = pb::ResolveMatchingDlqEntriesRequest {
                    filter: None,
                    update: Some(pb::DlqUpdate {
                        status: "investigating".into(),
                        ..Default::default()
                    }),
                };
                DlqServiceClient::new(c.channel.clone())
                    .resolve_matching(c.request(message))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.AnalyticsService/GetPerformance", true, |c| {
            async move {
                AnalyticsServiceClient::new(c.channel.clone())
                    .get_performance(c.request(pb::AnalyticsRequest::default()))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
        ("/tasker.v1.AnalyticsService/GetBottlenecks", true, |c| {
            async move {
                AnalyticsServiceClient::new(c.channel.clone())
                    .get_bottlenecks(c.request(pb::AnalyticsRequest::default()))
                    .await
                    .map(drop)
            }
            .boxed()
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_rpc_answers_each_credential_as_it_must() {
    let server = AuthServer::start().await;
    let channel = Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let calls = calls();
    for rpc in tasker_orchestration::grpc::rpc_names() {
        assert!(
            calls.iter().any(|(name, _, _)| *name == rpc),
            "{rpc} has no call in the auth matrix"
        );
    }
    let mut checked = 0;
    for (rpc, must_succeed, call) in calls {
        let op = OPERATIONS.iter().find(|o| o.grpc == Some(rpc)).unwrap();
        let permission = op.permission.unwrap();
        for (label, credential, expect) in server.keys.cases(permission) {
            let task = if op.name == "cancel_task" {
                server.new_task().await
            } else {
                server.fixtures.task
            };
            let ctx = Ctx {
                channel: channel.clone(),
                credential,
                task: task.to_string(),
                step: server.fixtures.step.to_string(),
                template_yaml: server.fixtures.template_yaml.clone(),
            };
            let outcome = call(ctx).await;
            let context = format!("{rpc} with {label}: {outcome:?}");
            match (expect, &outcome) {
                (Expect::Unauthenticated, Err(s)) => {
                    assert_eq!(s.code(), Code::Unauthenticated, "{context}")
                }
                (Expect::Forbidden, Err(s)) => {
                    assert_eq!(s.code(), Code::PermissionDenied, "{context}")
                }
                (Expect::Allowed, Ok(())) => {}
                (Expect::Allowed, Err(s)) if !must_succeed => assert!(
                    ![
                        Code::Unauthenticated,
                        Code::PermissionDenied,
                        Code::Internal,
                        Code::Unknown
                    ]
                    .contains(&s.code()),
                    "{context}"
                ),
                _ => panic!("{context}: expected {expect:?}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} cases ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_stays_public_with_auth_on() {
    let server = AuthServer::start().await;
    let channel = Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        reply.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}
