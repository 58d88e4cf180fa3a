//! Every API operation in one table: what it is called over REST and over
//! gRPC, and the permission it needs (`None`: public). The OpenAPI document
//! takes its security requirements from here, and the auth matrix test
//! generates its cases from here and fails when a route or RPC is missing.
//! Services check the same permissions themselves; this table is how the
//! adapters and their documentation stay in step with them.

use crate::auth::Permission;

/// One operation of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// A short name for logs and test output.
    pub name: &'static str,
    /// What it needs; `None` for a public operation.
    pub permission: Option<Permission>,
    /// REST method and path template, when it has a route.
    pub rest: Option<(&'static str, &'static str)>,
    /// The full gRPC method (`/package.Service/Method`), when it has one.
    pub grpc: Option<&'static str>,
}

const fn op(
    name: &'static str,
    permission: Option<Permission>,
    rest: Option<(&'static str, &'static str)>,
    grpc: Option<&'static str>,
) -> Operation {
    Operation {
        name,
        permission,
        rest,
        grpc,
    }
}

use Permission as P;

/// Every operation.
#[rustfmt::skip]
pub const OPERATIONS: &[Operation] = &[
    op("create_task", Some(P::TasksCreate), Some(("POST", "/v1/tasks")), Some("/tasker.v1.TaskService/CreateTask")),
    op("list_tasks", Some(P::TasksRead), Some(("GET", "/v1/tasks")), Some("/tasker.v1.TaskService/ListTasks")),
    op("get_task", Some(P::TasksRead), Some(("GET", "/v1/tasks/{task_uuid}")), Some("/tasker.v1.TaskService/GetTask")),
    op("cancel_task", Some(P::TasksCancel), Some(("DELETE", "/v1/tasks/{task_uuid}")), Some("/tasker.v1.TaskService/CancelTask")),
    op("watch_task", Some(P::TasksRead), None, Some("/tasker.v1.TaskService/WatchTask")),
    op("list_steps", Some(P::StepsRead), Some(("GET", "/v1/tasks/{task_uuid}/workflow_steps")), Some("/tasker.v1.StepService/ListSteps")),
    op("get_step", Some(P::StepsRead), Some(("GET", "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}")), Some("/tasker.v1.StepService/GetStep")),
    op("step_audit", Some(P::StepsRead), Some(("GET", "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit")), Some("/tasker.v1.StepService/GetStepAudit")),
    op("act_on_step", Some(P::StepsResolve), Some(("PATCH", "/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}")), Some("/tasker.v1.StepService/ActOnStep")),
    op("list_templates", Some(P::TemplatesRead), Some(("GET", "/v1/templates")), Some("/tasker.v1.TemplateService/ListTemplates")),
    op("register_template", Some(P::TemplatesWrite), Some(("POST", "/v1/templates")), Some("/tasker.v1.TemplateService/RegisterTemplate")),
    op("validate_template", Some(P::TemplatesRead), Some(("POST", "/v1/templates/validate")), Some("/tasker.v1.TemplateService/ValidateTemplate")),
    op("get_template", Some(P::TemplatesRead), Some(("GET", "/v1/templates/{namespace}/{name}/{version}")), Some("/tasker.v1.TemplateService/GetTemplate")),
    op("list_dlq", Some(P::DlqRead), Some(("GET", "/v1/dlq")), Some("/tasker.v1.DlqService/ListEntries")),
    op("dlq_stats", Some(P::DlqRead), Some(("GET", "/v1/dlq/stats")), Some("/tasker.v1.DlqService/GetStats")),
    op("dlq_for_task", Some(P::DlqRead), Some(("GET", "/v1/dlq/task/{task_uuid}")), Some("/tasker.v1.DlqService/ListForTask")),
    op("update_dlq_entry", Some(P::DlqUpdate), Some(("PATCH", "/v1/dlq/entry/{entry_uuid}")), Some("/tasker.v1.DlqService/UpdateEntry")),
    op("resolve_dlq", Some(P::DlqUpdate), Some(("POST", "/v1/dlq/resolve")), Some("/tasker.v1.DlqService/ResolveMatching")),
    op("analytics_performance", Some(P::AnalyticsRead), Some(("GET", "/v1/analytics/performance")), Some("/tasker.v1.AnalyticsService/GetPerformance")),
    op("analytics_bottlenecks", Some(P::AnalyticsRead), Some(("GET", "/v1/analytics/bottlenecks")), Some("/tasker.v1.AnalyticsService/GetBottlenecks")),
    op("health", None, Some(("GET", "/health")), Some("/grpc.health.v1.Health/Check")),
    op("health_watch", None, None, Some("/grpc.health.v1.Health/Watch")),
    op("health_live", None, Some(("GET", "/health/live")), None),
    op("health_ready", None, Some(("GET", "/health/ready")), None),
    op("health_detailed", None, Some(("GET", "/health/detailed")), None),
    op("metrics", None, Some(("GET", "/metrics")), None),
    op("openapi", None, Some(("GET", "/api-docs/openapi.json")), None),
];

/// The operation behind a REST method and path template.
pub fn by_route(method: &str, path: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| {
        o.rest
            .is_some_and(|(m, p)| m.eq_ignore_ascii_case(method) && p == path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_routes_and_methods_are_unique() {
        let mut names = std::collections::HashSet::new();
        let mut routes = std::collections::HashSet::new();
        let mut rpcs = std::collections::HashSet::new();
        for op in OPERATIONS {
            assert!(names.insert(op.name), "{} twice", op.name);
            if let Some(route) = op.rest {
                assert!(routes.insert(route), "{route:?} twice");
            }
            if let Some(rpc) = op.grpc {
                assert!(rpcs.insert(rpc), "{rpc} twice");
            }
        }
    }
}
