//! `tasker.v1.StepService`: list, show, audit and repair steps.

use tasker_proto::v1;
use tasker_proto::v1::step_service_server::{StepService, StepServiceServer};
use tasker_types::api::StepActionRequest;
use tasker_types::ids::{StepUuid, TaskUuid};
use tonic::{Request, Response, Status};

use super::GrpcState;
use super::auth::principal;
use super::input::{convert, uuid};
use super::status::to_status;
use crate::services::steps;

/// The service, ready to add to a server.
pub(super) fn service(state: GrpcState) -> StepServiceServer<Steps> {
    let limit = state.max_message_bytes;
    StepServiceServer::new(Steps { state }).max_decoding_message_size(limit)
}

/// The `StepService` handlers.
pub(super) struct Steps {
    state: GrpcState,
}

/// The task and step a request names (REST has them in the path).
fn ids(task_uuid: &str, step_uuid: &str) -> Result<(TaskUuid, StepUuid), Status> {
    Ok((uuid("task_uuid", task_uuid)?, uuid("step_uuid", step_uuid)?))
}

#[tonic::async_trait]
impl StepService for Steps {
    async fn list_steps(
        &self,
        request: Request<v1::ListStepsRequest>,
    ) -> Result<Response<v1::StepList>, Status> {
        let principal = principal(&self.state, &request)?;
        let task: TaskUuid = uuid("task_uuid", &request.get_ref().task_uuid)?;
        let list = steps::list(&self.state.orchestrator, &principal, task)
            .await
            .map_err(to_status)?;
        Ok(Response::new(list.into()))
    }

    async fn get_step(
        &self,
        request: Request<v1::GetStepRequest>,
    ) -> Result<Response<v1::StepView>, Status> {
        let principal = principal(&self.state, &request)?;
        let (task, step) = ids(&request.get_ref().task_uuid, &request.get_ref().step_uuid)?;
        let view = steps::get(&self.state.orchestrator, &principal, task, step)
            .await
            .map_err(to_status)?;
        Ok(Response::new(view.into()))
    }

    async fn get_step_audit(
        &self,
        request: Request<v1::GetStepAuditRequest>,
    ) -> Result<Response<v1::StepAudit>, Status> {
        let principal = principal(&self.state, &request)?;
        let (task, step) = ids(&request.get_ref().task_uuid, &request.get_ref().step_uuid)?;
        let audit = steps::audit(&self.state.orchestrator, &principal, task, step)
            .await
            .map_err(to_status)?;
        Ok(Response::new(audit.into()))
    }

    async fn act_on_step(
        &self,
        request: Request<v1::ActOnStepRequest>,
    ) -> Result<Response<v1::StepView>, Status> {
        let principal = principal(&self.state, &request)?;
        let request = request.into_inner();
        let (task, step) = ids(&request.task_uuid, &request.step_uuid)?;
        let action: StepActionRequest = convert(request)?;
        let view = steps::act(&self.state.orchestrator, &principal, task, step, &action)
            .await
            .map_err(to_status)?;
        Ok(Response::new(view.into()))
    }
}
