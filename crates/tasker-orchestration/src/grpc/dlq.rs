//! `tasker.v1.DlqService`: list, count and resolve DLQ entries.

use tasker_proto::v1;
use tasker_proto::v1::dlq_service_server::{DlqService, DlqServiceServer};
use tasker_types::dlq::{DlqBulkResolve, DlqListQuery, DlqUpdate};
use tasker_types::ids::{DlqEntryUuid, TaskUuid};
use tonic::{Request, Response, Status};

use super::GrpcState;
use super::auth::principal;
use super::input::{convert, uuid};
use super::status::to_status;
use crate::services::dlq;

/// The service, ready to add to a server.
pub(super) fn service(state: GrpcState) -> DlqServiceServer<Dlq> {
    let limit = state.max_message_bytes;
    DlqServiceServer::new(Dlq { state }).max_decoding_message_size(limit)
}

/// The `DlqService` handlers.
pub(super) struct Dlq {
    state: GrpcState,
}

#[tonic::async_trait]
impl DlqService for Dlq {
    async fn list_entries(
        &self,
        request: Request<v1::ListDlqEntriesRequest>,
    ) -> Result<Response<v1::DlqList>, Status> {
        let principal = principal(&self.state, &request)?;
        let query: DlqListQuery = convert(request.into_inner())?;
        let list = dlq::list(&self.state.orchestrator, &principal, query)
            .await
            .map_err(to_status)?;
        Ok(Response::new(list.into()))
    }

    async fn get_stats(
        &self,
        request: Request<v1::GetDlqStatsRequest>,
    ) -> Result<Response<v1::DlqStats>, Status> {
        let principal = principal(&self.state, &request)?;
        let stats = dlq::stats(&self.state.orchestrator, &principal)
            .await
            .map_err(to_status)?;
        Ok(Response::new(stats.into()))
    }

    async fn list_for_task(
        &self,
        request: Request<v1::ListDlqEntriesForTaskRequest>,
    ) -> Result<Response<v1::ListDlqEntriesForTaskResponse>, Status> {
        let principal = principal(&self.state, &request)?;
        let task: TaskUuid = uuid("task_uuid", &request.get_ref().task_uuid)?;
        let entries = dlq::for_task(&self.state.orchestrator, &principal, task)
            .await
            .map_err(to_status)?;
        Ok(Response::new(entries.into()))
    }

    async fn update_entry(
        &self,
        request: Request<v1::UpdateDlqEntryRequest>,
    ) -> Result<Response<v1::DlqEntryView>, Status> {
        let principal = principal(&self.state, &request)?;
        let request = request.into_inner();
        let entry: DlqEntryUuid = uuid("entry_uuid", &request.entry_uuid)?;
        let update: DlqUpdate = convert(request)?;
        let view = dlq::update(&self.state.orchestrator, &principal, entry, update)
            .await
            .map_err(to_status)?;
        Ok(Response::new(view.into()))
    }

    async fn resolve_matching(
        &self,
        request: Request<v1::ResolveMatchingDlqEntriesRequest>,
    ) -> Result<Response<v1::DlqBulkResult>, Status> {
        let principal = principal(&self.state, &request)?;
        let resolve: DlqBulkResolve = convert(request.into_inner())?;
        let result = dlq::resolve_matching(&self.state.orchestrator, &principal, resolve)
            .await
            .map_err(to_status)?;
        Ok(Response::new(result.into()))
    }
}
