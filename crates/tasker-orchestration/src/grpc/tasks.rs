//! `tasker.v1.TaskService`: create, list, get, cancel and watch tasks.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tasker_proto::v1;
use tasker_proto::v1::task_service_server::{TaskService, TaskServiceServer};
use tasker_telemetry::propagation;
use tasker_types::api::{TaskListQuery, TaskRequest};
use tasker_types::ids::TaskUuid;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use super::GrpcState;
use super::auth::principal;
use super::input::{convert, uuid};
use super::status::to_status;
use crate::services::{tasks, watch};

/// The service, ready to add to a server.
pub(super) fn service(state: GrpcState) -> TaskServiceServer<Tasks> {
    let limit = state.max_message_bytes;
    TaskServiceServer::new(Tasks { state }).max_decoding_message_size(limit)
}

/// The `TaskService` handlers.
pub(super) struct Tasks {
    state: GrpcState,
}

#[tonic::async_trait]
impl TaskService for Tasks {
    async fn create_task(
        &self,
        request: Request<v1::CreateTaskRequest>,
    ) -> Result<Response<v1::TaskView>, Status> {
        let principal = principal(&self.state, &request)?;
        // Continues the caller's trace from its `traceparent` metadata.
        let span = tracing::info_span!("grpc.CreateTask");
        let incoming = request.metadata().get(propagation::HEADER);
        propagation::continue_trace(
            &span,
            propagation::from_header(incoming.map(|v| v.as_bytes())),
        );
        let input: TaskRequest = convert(request.into_inner())?;
        let view = tasks::create(&self.state.orchestrator, &principal, input)
            .instrument(span)
            .await
            .map_err(to_status)?;
        Ok(Response::new(view.into()))
    }

    async fn list_tasks(
        &self,
        request: Request<v1::ListTasksRequest>,
    ) -> Result<Response<v1::TaskList>, Status> {
        let principal = principal(&self.state, &request)?;
        let query: TaskListQuery = convert(request.into_inner())?;
        let list = tasks::list(&self.state.orchestrator, &principal, query)
            .await
            .map_err(to_status)?;
        Ok(Response::new(list.into()))
    }

    async fn get_task(
        &self,
        request: Request<v1::GetTaskRequest>,
    ) -> Result<Response<v1::TaskView>, Status> {
        let principal = principal(&self.state, &request)?;
        let task: TaskUuid = uuid("task_uuid", &request.get_ref().task_uuid)?;
        // With steps, as REST's `GET /v1/tasks/{uuid}`.
        let view = tasks::get(&self.state.orchestrator, &principal, task, true)
            .await
            .map_err(to_status)?;
        Ok(Response::new(view.into()))
    }

    async fn cancel_task(
        &self,
        request: Request<v1::CancelTaskRequest>,
    ) -> Result<Response<v1::TaskView>, Status> {
        let principal = principal(&self.state, &request)?;
        let request = request.into_inner();
        let task: TaskUuid = uuid("task_uuid", &request.task_uuid)?;
        let view = tasks::cancel(
            &self.state.orchestrator,
            &principal,
            task,
            request.reason.as_deref(),
        )
        .await
        .map_err(to_status)?;
        Ok(Response::new(view.into()))
    }

    type WatchTaskStream = BoxStream<'static, Result<v1::TransitionEvent, Status>>;

    async fn watch_task(
        &self,
        request: Request<v1::WatchTaskRequest>,
    ) -> Result<Response<Self::WatchTaskStream>, Status> {
        let principal = principal(&self.state, &request)?;
        let task: TaskUuid = uuid("task_uuid", &request.get_ref().task_uuid)?;
        let events = watch::watch(
            &self.state.orchestrator,
            &self.state.watch,
            &principal,
            task,
        )
        .await
        .map_err(to_status)?;
        // The service ends the stream after the terminal transition; a
        // failure mid-stream reaches the client as the stream's status.
        let events = events.map(|event| event.map(v1::TransitionEvent::from).map_err(to_status));
        Ok(Response::new(events.boxed()))
    }
}
