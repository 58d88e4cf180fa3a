//! `tasker.v1.AnalyticsService`: the performance and bottleneck reports.

use tasker_proto::v1;
use tasker_proto::v1::analytics_service_server::{AnalyticsService, AnalyticsServiceServer};
use tasker_types::analytics::AnalyticsQuery;
use tonic::{Request, Response, Status};

use super::GrpcState;
use super::auth::principal;
use super::status::to_status;
use crate::services::analytics;

/// The service, ready to add to a server.
pub(super) fn service(state: GrpcState) -> AnalyticsServiceServer<Analytics> {
    let limit = state.max_message_bytes;
    AnalyticsServiceServer::new(Analytics { state }).max_decoding_message_size(limit)
}

/// The `AnalyticsService` handlers.
pub(super) struct Analytics {
    state: GrpcState,
}

#[tonic::async_trait]
impl AnalyticsService for Analytics {
    async fn get_performance(
        &self,
        request: Request<v1::AnalyticsRequest>,
    ) -> Result<Response<v1::PerformanceReport>, Status> {
        let principal = principal(&self.state, &request)?;
        // Every field is optional, so the request always converts; the
        // service checks the bounds, as it does for REST.
        let query = AnalyticsQuery::from(request.into_inner());
        let report = analytics::performance(&self.state.orchestrator, &principal, query)
            .await
            .map_err(to_status)?;
        Ok(Response::new(report.into()))
    }

    async fn get_bottlenecks(
        &self,
        request: Request<v1::AnalyticsRequest>,
    ) -> Result<Response<v1::BottleneckReport>, Status> {
        let principal = principal(&self.state, &request)?;
        let query = AnalyticsQuery::from(request.into_inner());
        let report = analytics::bottlenecks(&self.state.orchestrator, &principal, query)
            .await
            .map_err(to_status)?;
        Ok(Response::new(report.into()))
    }
}
