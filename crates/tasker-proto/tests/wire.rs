//! The generated client and server talk over a real HTTP/2 connection: a
//! unary call, an error status with metadata, a server stream that ends,
//! and health and reflection served beside it — the same assembly the
//! orchestration server uses, with a stub in place of the engine.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tasker_proto::v1;
use tasker_proto::v1::task_service_client::TaskServiceClient;
use tasker_proto::v1::task_service_server::{TaskService, TaskServiceServer};
use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Request, Response, Status};

struct Stub;

fn task(uuid: &str) -> v1::TaskView {
    v1::TaskView {
        task_uuid: uuid.to_owned(),
        state: "pending".into(),
        context_json: r#"{"n":18446744073709551615}"#.into(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl TaskService for Stub {
    async fn create_task(
        &self,
        request: Request<v1::CreateTaskRequest>,
    ) -> Result<Response<v1::TaskView>, Status> {
        Ok(Response::new(task(&request.into_inner().name)))
    }

    async fn list_tasks(
        &self,
        _: Request<v1::ListTasksRequest>,
    ) -> Result<Response<v1::TaskList>, Status> {
        Ok(Response::new(v1::TaskList::default()))
    }

    async fn get_task(
        &self,
        _: Request<v1::GetTaskRequest>,
    ) -> Result<Response<v1::TaskView>, Status> {
        let mut metadata = MetadataMap::new();
        metadata.insert("tasker-error-code", "task_not_found".parse().unwrap());
        Err(Status::with_metadata(
            Code::NotFound,
            "no such task",
            metadata,
        ))
    }

    async fn cancel_task(
        &self,
        _: Request<v1::CancelTaskRequest>,
    ) -> Result<Response<v1::TaskView>, Status> {
        Err(Status::unimplemented("stub"))
    }

    type WatchTaskStream = BoxStream<'static, Result<v1::TransitionEvent, Status>>;

    async fn watch_task(
        &self,
        request: Request<v1::WatchTaskRequest>,
    ) -> Result<Response<Self::WatchTaskStream>, Status> {
        let task = request.into_inner().task_uuid;
        let events = ["enqueuing_steps", "steps_in_process", "complete"].map(|to| {
            Ok(v1::TransitionEvent {
                task_uuid: task.clone(),
                to_state: to.into(),
                ..Default::default()
            })
        });
        Ok(Response::new(futures_util::stream::iter(events).boxed()))
    }
}

#[tokio::test]
async fn client_and_server_agree_over_http2() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tasker_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(health)
            .add_optional_service(Some(reflection))
            .add_service(TaskServiceServer::new(Stub))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            }),
    );
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = TaskServiceClient::new(channel);

    let created = client
        .create_task(v1::CreateTaskRequest {
            name: "t-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created, task("t-1"), "JSON text crosses the wire untouched");

    let missing = client
        .get_task(v1::GetTaskRequest::default())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(
        missing.metadata().get("tasker-error-code").unwrap(),
        "task_not_found"
    );

    let mut events = client
        .watch_task(v1::WatchTaskRequest {
            task_uuid: "t-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut states = Vec::new();
    while let Some(event) = events.message().await.unwrap() {
        states.push(event.to_state);
    }
    assert_eq!(states, ["enqueuing_steps", "steps_in_process", "complete"]);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
