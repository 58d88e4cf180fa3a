//! `tasker.v1.TemplateService`: list, show, register and validate templates.

use tasker_proto::convert::TemplateText;
use tasker_proto::v1;
use tasker_proto::v1::template_service_server::{TemplateService, TemplateServiceServer};
use tonic::{Request, Response, Status};

use super::GrpcState;
use super::auth::principal;
use super::input::convert;
use super::status::to_status;
use crate::services::templates::{self, TemplateSource};

/// The service, ready to add to a server.
pub(super) fn service(state: GrpcState) -> TemplateServiceServer<Templates> {
    let limit = state.max_message_bytes;
    TemplateServiceServer::new(Templates { state }).max_decoding_message_size(limit)
}

/// The `TemplateService` handlers.
pub(super) struct Templates {
    state: GrpcState,
}

/// The service's view of the submitted text (REST decides the same by
/// content type).
fn source(text: TemplateText) -> TemplateSource {
    match text {
        TemplateText::Yaml(yaml) => TemplateSource::Yaml(yaml),
        TemplateText::Json(json) => TemplateSource::Json(json),
    }
}

#[tonic::async_trait]
impl TemplateService for Templates {
    async fn list_templates(
        &self,
        request: Request<v1::ListTemplatesRequest>,
    ) -> Result<Response<v1::ListTemplatesResponse>, Status> {
        let principal = principal(&self.state, &request)?;
        let namespace = request.get_ref().namespace.as_deref();
        let list = templates::list(&self.state.orchestrator, &principal, namespace)
            .await
            .map_err(to_status)?;
        Ok(Response::new(list.into()))
    }

    async fn get_template(
        &self,
        request: Request<v1::GetTemplateRequest>,
    ) -> Result<Response<v1::TemplateDetail>, Status> {
        let principal = principal(&self.state, &request)?;
        let wanted = request.get_ref();
        let detail = templates::get(
            &self.state.orchestrator,
            &principal,
            &wanted.namespace,
            &wanted.name,
            &wanted.version,
        )
        .await
        .map_err(to_status)?;
        Ok(Response::new(detail.into()))
    }

    async fn register_template(
        &self,
        request: Request<v1::RegisterTemplateRequest>,
    ) -> Result<Response<v1::TemplateRegistration>, Status> {
        let principal = principal(&self.state, &request)?;
        let text: TemplateText = convert(request.into_inner())?;
        let registration = templates::register(&self.state.orchestrator, &principal, source(text))
            .await
            .map_err(to_status)?;
        Ok(Response::new(registration.into()))
    }

    async fn validate_template(
        &self,
        request: Request<v1::ValidateTemplateRequest>,
    ) -> Result<Response<v1::ValidationReport>, Status> {
        let principal = principal(&self.state, &request)?;
        let text: TemplateText = convert(request.into_inner())?;
        let report = templates::validate(&principal, source(text)).map_err(to_status)?;
        Ok(Response::new(report.into()))
    }
}
