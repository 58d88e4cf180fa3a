//! Parity: every operation, called through REST and through gRPC on the
//! same server, gives the same data — REST's JSON read into the
//! tasker-types view and converted with tasker-proto equals the gRPC
//! answer — and the same errors (the same `error.code`, and the gRPC code
//! documented for REST's status). One table of cases; each runs REST
//! first, then gRPC.
//!
//! Reads are asked both ways at once. An operation that changes something
//! is done once each way beforehand, and each answer is compared with the
//! other API's read of the same thing afterwards.

use chrono::{TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use tasker_orchestration::StalenessReport;
use tasker_proto::v1;
use tasker_types::api::{
    StepActionKind, StepActionRequest, StepAudit, StepView, TaskList, TaskListQuery, TaskView,
    TemplateDetail, TemplateRegistration, TemplateSummary, ValidationReport,
};
use tasker_types::dlq::{
    DlqBulkResolve, DlqBulkResult, DlqEntryView, DlqFilter, DlqList, DlqListQuery, DlqReason,
    DlqStats, DlqStatus, DlqUpdate,
};
use tasker_types::ids::{DlqEntryUuid, StepUuid, TaskUuid};

use crate::support::{Body, Case, Outcome, Stack, case, check, examples, recorded, rpc};

/// A template whose tasks are deduplicated by context (the examples are
/// all `always_unique`).
const STRICT_TEMPLATE: &str = "\
name: duplicates
namespace_name: parity
version: 1.0.0
identity_strategy: strict
steps:
  - name: only
    handler: { callable: \"examples::square\" }
";

/// Validation stamps a valid template's summary with the current time;
/// that instant differs by design between two calls.
fn undated(mut report: v1::ValidationReport) -> v1::ValidationReport {
    if let Some(summary) = report.template.as_mut() {
        summary.created_at = None;
    }
    report
}

/// The single DLQ entry of a task's listing.
fn only_entry(list: v1::ListDlqEntriesForTaskResponse) -> v1::DlqEntryView {
    assert_eq!(list.entries.len(), 1, "{list:?}");
    list.entries.into_iter().next().unwrap()
}

fn query_string(query: &TaskListQuery) -> String {
    let mut parts = Vec::new();
    if let Some(namespace) = &query.namespace {
        parts.push(format!("namespace={namespace}"));
    }
    if let Some(limit) = query.limit {
        parts.push(format!("limit={limit}"));
    }
    if let Some(include) = &query.include {
        parts.push(format!("include={include}"));
    }
    parts.join("&")
}

fn step_action(action: StepActionKind) -> StepActionRequest {
    StepActionRequest::new(action, "parity", "compare the adapters")
}

#[tokio::test]
async fn every_operation_gives_the_same_data_over_rest_and_grpc() {
    let stack = Stack::start().await;
    let rest = stack.rest.clone();
    let g = stack.clients();
    let linear_yaml = std::fs::read_to_string(examples().join("linear_workflow.yaml")).unwrap();

    // ---- fixtures -------------------------------------------------------
    let a = stack.new_task(1).await;
    let a_step = stack.root_step(a).await;
    let a_json: Value = rest
        .ok(Method::GET, &format!("/v1/tasks/{a}"), Body::Empty)
        .await;
    let version = a_json["version"].as_str().unwrap().to_owned();
    let unknown_task = TaskUuid::new();

    let strict: TemplateRegistration = rest
        .ok(
            Method::POST,
            "/v1/templates",
            Body::Yaml(STRICT_TEMPLATE.into()),
        )
        .await;
    assert_eq!(strict.status, "created");
    let mut duplicate = Stack::request(0);
    duplicate.namespace = "parity".into();
    duplicate.name = "duplicates".into();
    duplicate.context = json!({"order": 7});
    duplicate.idempotency_key = None;
    stack
        .orchestrator
        .create_task(duplicate.clone())
        .await
        .unwrap();

    // ---- changes, once each way ------------------------------------------
    // Create.
    let created_by_rest: TaskView = rest
        .ok(
            Method::POST,
            "/v1/tasks",
            Body::Json(serde_json::to_value(Stack::request(11)).unwrap()),
        )
        .await;
    let created_by_grpc = g
        .tasks
        .clone()
        .create_task(v1::CreateTaskRequest::from(Stack::request(12)))
        .await
        .unwrap()
        .into_inner();
    // Cancel.
    let (d1, d2) = (stack.new_task(21).await, stack.new_task(22).await);
    let cancelled_by_rest: TaskView = rest
        .ok(
            Method::DELETE,
            &format!("/v1/tasks/{d1}?reason=parity"),
            Body::Empty,
        )
        .await;
    let cancelled_by_grpc = g
        .tasks
        .clone()
        .cancel_task(v1::CancelTaskRequest {
            task_uuid: d2.to_string(),
            reason: Some("parity".into()),
        })
        .await
        .unwrap()
        .into_inner();
    // Repair a step.
    let (e1, e2) = (stack.new_task(31).await, stack.new_task(32).await);
    let (e1_step, e2_step) = (stack.root_step(e1).await, stack.root_step(e2).await);
    let resolve = step_action(StepActionKind::ResolveManually);
    let resolved_by_rest: StepView = rest
        .ok(
            Method::PATCH,
            &format!("/v1/tasks/{e1}/workflow_steps/{e1_step}"),
            Body::Json(serde_json::to_value(&resolve).unwrap()),
        )
        .await;
    let resolved_by_grpc = g
        .steps
        .clone()
        .act_on_step(v1::ActOnStepRequest::new(e2, e2_step, resolve.clone()))
        .await
        .unwrap()
        .into_inner();

    let filtered = TaskListQuery {
        namespace: Some("linear_workflow".into()),
        limit: Some(2),
        include: Some("steps".into()),
        ..TaskListQuery::default()
    };
    let bad_include = TaskListQuery {
        include: Some("everything".into()),
        ..TaskListQuery::default()
    };
    let reset = step_action(StepActionKind::ResetForRetry);
    let conflicting_yaml = linear_yaml.replace(
        "description: Square a number four times in sequence.",
        "description: Something else under the same version.",
    );
    assert_ne!(
        conflicting_yaml, linear_yaml,
        "the example's description changed"
    );
    let mut off_schema = Stack::request(0);
    off_schema.context = json!({"value": "six"});
    let mut unknown_template = Stack::request(0);
    unknown_template.namespace = "nowhere".into();
    let nothing_matches = DlqBulkResolve {
        filter: DlqFilter {
            namespace: Some("nowhere".into()),
            ..DlqFilter::default()
        },
        update: DlqUpdate {
            status: DlqStatus::Cancelled,
            resolution_notes: None,
            resolved_by: Some("parity".into()),
        },
    };

    #[rustfmt::skip]
    let before_the_sweep: Vec<Case> = vec![
        // Tasks.
        case("get_task",
            rest.get::<TaskView, v1::TaskView>(format!("/v1/tasks/{a}")),
            rpc!(g.tasks, get_task, v1::GetTaskRequest { task_uuid: a.to_string() })),
        case("list_tasks",
            rest.get::<TaskList, v1::TaskList>("/v1/tasks"),
            rpc!(g.tasks, list_tasks, v1::ListTasksRequest::default())),
        case("list_tasks filtered, with steps",
            rest.get::<TaskList, v1::TaskList>(format!("/v1/tasks?{}", query_string(&filtered))),
            rpc!(g.tasks, list_tasks, v1::ListTasksRequest::from(filtered.clone()))),
        case("create_task: the REST answer is what gRPC reads",
            recorded(Outcome::data(&v1::TaskView::from(created_by_rest.clone()))),
            rpc!(g.tasks, get_task, v1::GetTaskRequest { task_uuid: created_by_rest.task_uuid.to_string() })),
        case("create_task: the gRPC answer is what REST reads",
            rest.get::<TaskView, v1::TaskView>(format!("/v1/tasks/{}", created_by_grpc.task_uuid)),
            recorded(Outcome::data(&created_by_grpc))),
        case("cancel_task: the REST answer is what gRPC reads",
            recorded(Outcome::data(&v1::TaskView::from(cancelled_by_rest))),
            rpc!(g.tasks, get_task, v1::GetTaskRequest { task_uuid: d1.to_string() })),
        case("cancel_task: the gRPC answer is what REST reads",
            rest.get::<TaskView, v1::TaskView>(format!("/v1/tasks/{d2}")),
            recorded(Outcome::data(&cancelled_by_grpc))),
        // Steps.
        case("list_steps",
            rest.get::<Vec<StepView>, v1::StepList>(format!("/v1/tasks/{a}/workflow_steps")),
            rpc!(g.steps, list_steps, v1::ListStepsRequest { task_uuid: a.to_string() })),
        case("get_step",
            rest.get::<StepView, v1::StepView>(format!("/v1/tasks/{a}/workflow_steps/{a_step}")),
            rpc!(g.steps, get_step, v1::GetStepRequest { task_uuid: a.to_string(), step_uuid: a_step.to_string() })),
        case("step_audit",
            rest.get::<StepAudit, v1::StepAudit>(format!("/v1/tasks/{a}/workflow_steps/{a_step}/audit")),
            rpc!(g.steps, get_step_audit, v1::GetStepAuditRequest { task_uuid: a.to_string(), step_uuid: a_step.to_string() })),
        case("act_on_step: the REST answer is what gRPC reads",
            recorded(Outcome::data(&v1::StepView::from(resolved_by_rest))),
            rpc!(g.steps, get_step, v1::GetStepRequest { task_uuid: e1.to_string(), step_uuid: e1_step.to_string() })),
        case("act_on_step: the gRPC answer is what REST reads",
            rest.get::<StepView, v1::StepView>(format!("/v1/tasks/{e2}/workflow_steps/{e2_step}")),
            recorded(Outcome::data(&resolved_by_grpc))),
        // Templates.
        case("list_templates",
            rest.get::<Vec<TemplateSummary>, v1::ListTemplatesResponse>("/v1/templates"),
            rpc!(g.templates, list_templates, v1::ListTemplatesRequest::default())),
        case("list_templates of a namespace",
            rest.get::<Vec<TemplateSummary>, v1::ListTemplatesResponse>("/v1/templates?namespace=linear_workflow"),
            rpc!(g.templates, list_templates, v1::ListTemplatesRequest { namespace: Some("linear_workflow".into()) })),
        case("get_template",
            rest.get::<TemplateDetail, v1::TemplateDetail>(format!("/v1/templates/linear_workflow/mathematical_sequence/{version}")),
            rpc!(g.templates, get_template, v1::GetTemplateRequest {
                namespace: "linear_workflow".into(), name: "mathematical_sequence".into(), version: version.clone() })),
        case("register_template again: unchanged",
            rest.outcome::<TemplateRegistration, v1::TemplateRegistration, _>(Method::POST, "/v1/templates", Body::Yaml(linear_yaml.clone()), |p| p),
            rpc!(g.templates, register_template, v1::RegisterTemplateRequest {
                source: Some(v1::register_template_request::Source::Yaml(linear_yaml.clone())) })),
        case("validate_template, valid YAML",
            rest.outcome::<ValidationReport, v1::ValidationReport, _>(Method::POST, "/v1/templates/validate", Body::Yaml(linear_yaml.clone()), undated),
            rpc!(g.templates, validate_template, v1::ValidateTemplateRequest {
                source: Some(v1::validate_template_request::Source::Yaml(linear_yaml.clone())) }, undated)),
        case("validate_template, invalid JSON template",
            rest.outcome::<ValidationReport, v1::ValidationReport, _>(Method::POST, "/v1/templates/validate", Body::Json(json!({"name": "broken"})), undated),
            rpc!(g.templates, validate_template, v1::ValidateTemplateRequest {
                source: Some(v1::validate_template_request::Source::Json(r#"{"name": "broken"}"#.into())) }, undated)),
        // The DLQ, still empty.
        case("dlq stats, empty",
            rest.get::<DlqStats, v1::DlqStats>("/v1/dlq/stats"),
            rpc!(g.dlq, get_stats, v1::GetDlqStatsRequest {})),
        case("dlq list, empty",
            rest.get::<DlqList, v1::DlqList>("/v1/dlq"),
            rpc!(g.dlq, list_entries, v1::ListDlqEntriesRequest::default())),
        case("dlq resolve_matching, nothing matches",
            rest.outcome::<DlqBulkResult, v1::DlqBulkResult, _>(Method::POST, "/v1/dlq/resolve", Body::Json(serde_json::to_value(&nothing_matches).unwrap()), |p| p),
            rpc!(g.dlq, resolve_matching, v1::ResolveMatchingDlqEntriesRequest::from(nothing_matches.clone()))),

        // Errors: the same code, and the gRPC code of REST's status.
        case("get_task, unknown task",
            rest.get::<TaskView, v1::TaskView>(format!("/v1/tasks/{unknown_task}")),
            rpc!(g.tasks, get_task, v1::GetTaskRequest { task_uuid: unknown_task.to_string() })),
        case("get_task, not a UUID",
            rest.get::<TaskView, v1::TaskView>("/v1/tasks/not-a-uuid"),
            rpc!(g.tasks, get_task, v1::GetTaskRequest { task_uuid: "not-a-uuid".into() })),
        case("list_tasks, unknown include",
            rest.get::<TaskList, v1::TaskList>("/v1/tasks?include=everything"),
            rpc!(g.tasks, list_tasks, v1::ListTasksRequest::from(bad_include))),
        case("create_task, unknown template",
            rest.outcome::<TaskView, v1::TaskView, _>(Method::POST, "/v1/tasks", Body::Json(serde_json::to_value(&unknown_template).unwrap()), |p| p),
            rpc!(g.tasks, create_task, v1::CreateTaskRequest::from(unknown_template.clone()))),
        case("create_task, context off the input schema",
            rest.outcome::<TaskView, v1::TaskView, _>(Method::POST, "/v1/tasks", Body::Json(serde_json::to_value(&off_schema).unwrap()), |p| p),
            rpc!(g.tasks, create_task, v1::CreateTaskRequest::from(off_schema.clone()))),
        case("create_task, duplicate",
            rest.outcome::<TaskView, v1::TaskView, _>(Method::POST, "/v1/tasks", Body::Json(serde_json::to_value(&duplicate).unwrap()), |p| p),
            rpc!(g.tasks, create_task, v1::CreateTaskRequest::from(duplicate.clone()))),
        case("cancel_task, unknown task",
            rest.outcome::<TaskView, v1::TaskView, _>(Method::DELETE, format!("/v1/tasks/{unknown_task}"), Body::Empty, |p| p),
            rpc!(g.tasks, cancel_task, v1::CancelTaskRequest { task_uuid: unknown_task.to_string(), reason: None })),
        case("cancel_task, already cancelled",
            rest.outcome::<TaskView, v1::TaskView, _>(Method::DELETE, format!("/v1/tasks/{d1}"), Body::Empty, |p| p),
            rpc!(g.tasks, cancel_task, v1::CancelTaskRequest { task_uuid: d1.to_string(), reason: None })),
        case("get_step, unknown step",
            rest.get::<StepView, v1::StepView>(format!("/v1/tasks/{a}/workflow_steps/{}", StepUuid::new())),
            rpc!(g.steps, get_step, v1::GetStepRequest { task_uuid: a.to_string(), step_uuid: StepUuid::new().to_string() })),
        case("act_on_step, reset of a step that has not failed",
            rest.outcome::<StepView, v1::StepView, _>(Method::PATCH, format!("/v1/tasks/{a}/workflow_steps/{a_step}"), Body::Json(serde_json::to_value(&reset).unwrap()), |p| p),
            rpc!(g.steps, act_on_step, v1::ActOnStepRequest::new(a, a_step, reset.clone()))),
        case("act_on_step, resolve of a resolved step",
            rest.outcome::<StepView, v1::StepView, _>(Method::PATCH, format!("/v1/tasks/{e1}/workflow_steps/{e1_step}"), Body::Json(serde_json::to_value(&resolve).unwrap()), |p| p),
            rpc!(g.steps, act_on_step, v1::ActOnStepRequest::new(e1, e1_step, resolve.clone()))),
        case("get_template, unknown version",
            rest.get::<TemplateDetail, v1::TemplateDetail>("/v1/templates/linear_workflow/mathematical_sequence/99.0.0"),
            rpc!(g.templates, get_template, v1::GetTemplateRequest {
                namespace: "linear_workflow".into(), name: "mathematical_sequence".into(), version: "99.0.0".into() })),
        case("register_template, different content under a registered version",
            rest.outcome::<TemplateRegistration, v1::TemplateRegistration, _>(Method::POST, "/v1/templates", Body::Yaml(conflicting_yaml.clone()), |p| p),
            rpc!(g.templates, register_template, v1::RegisterTemplateRequest {
                source: Some(v1::register_template_request::Source::Yaml(conflicting_yaml.clone())) })),
        case("dlq for_task, unknown task",
            rest.get::<Vec<DlqEntryView>, v1::ListDlqEntriesForTaskResponse>(format!("/v1/dlq/task/{unknown_task}")),
            rpc!(g.dlq, list_for_task, v1::ListDlqEntriesForTaskRequest { task_uuid: unknown_task.to_string() })),
        case("dlq update_entry, unknown entry",
            rest.outcome::<DlqEntryView, v1::DlqEntryView, _>(Method::PATCH, format!("/v1/dlq/entry/{}", DlqEntryUuid::new()), Body::Json(json!({"status": "investigating"})), |p| p),
            rpc!(g.dlq, update_entry, v1::UpdateDlqEntryRequest::new(DlqEntryUuid::new(), DlqUpdate {
                status: DlqStatus::Investigating, resolution_notes: None, resolved_by: None }))),
    ];
    check(before_the_sweep).await;

    // ---- the DLQ, after a staleness sweep two hours on -------------------
    // No worker ran, so every unfinished task is stale by then.
    // The server's own detector may hold the sweep lock for a moment.
    let mut report = StalenessReport::default();
    for _ in 0..50 {
        report = stack
            .orchestrator
            .sweep_stale_tasks(Utc::now() + TimeDelta::hours(2))
            .await
            .unwrap();
        if report.leader {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(report.failed.len() >= 2, "the sweep failed too few tasks");
    let c = created_by_rest.task_uuid;
    let entry_of = |task: TaskUuid| {
        let rest = rest.clone();
        async move {
            let entries: Vec<DlqEntryView> = rest
                .ok(Method::GET, &format!("/v1/dlq/task/{task}"), Body::Empty)
                .await;
            entries[0].dlq_entry_uuid
        }
    };
    let (a_entry, c_entry) = (entry_of(a).await, entry_of(c).await);
    let investigating = DlqUpdate {
        status: DlqStatus::Investigating,
        resolution_notes: Some("looking".into()),
        resolved_by: None,
    };
    let updated_by_rest: DlqEntryView = rest
        .ok(
            Method::PATCH,
            &format!("/v1/dlq/entry/{a_entry}"),
            Body::Json(serde_json::to_value(&investigating).unwrap()),
        )
        .await;
    let updated_by_grpc = g
        .dlq
        .clone()
        .update_entry(v1::UpdateDlqEntryRequest::new(
            c_entry,
            investigating.clone(),
        ))
        .await
        .unwrap()
        .into_inner();
    let stale_page = DlqListQuery {
        reason: Some(DlqReason::WorkerUnavailable),
        limit: Some(2),
        ..DlqListQuery::default()
    };
    let closing_anonymously = DlqUpdate {
        status: DlqStatus::Resolved,
        resolution_notes: None,
        resolved_by: None,
    };
    let backwards = DlqUpdate {
        status: DlqStatus::Pending,
        resolution_notes: None,
        resolved_by: None,
    };

    #[rustfmt::skip]
    let after_the_sweep: Vec<Case> = vec![
        case("dlq stats",
            rest.get::<DlqStats, v1::DlqStats>("/v1/dlq/stats"),
            rpc!(g.dlq, get_stats, v1::GetDlqStatsRequest {})),
        case("dlq list",
            rest.get::<DlqList, v1::DlqList>("/v1/dlq"),
            rpc!(g.dlq, list_entries, v1::ListDlqEntriesRequest::default())),
        case("dlq list, by reason, one page",
            rest.get::<DlqList, v1::DlqList>("/v1/dlq?reason=worker_unavailable&limit=2"),
            rpc!(g.dlq, list_entries, v1::ListDlqEntriesRequest::from(stale_page.clone()))),
        case("dlq for_task",
            rest.get::<Vec<DlqEntryView>, v1::ListDlqEntriesForTaskResponse>(format!("/v1/dlq/task/{a}")),
            rpc!(g.dlq, list_for_task, v1::ListDlqEntriesForTaskRequest { task_uuid: a.to_string() })),
        case("get_task, after the sweep",
            rest.get::<TaskView, v1::TaskView>(format!("/v1/tasks/{a}")),
            rpc!(g.tasks, get_task, v1::GetTaskRequest { task_uuid: a.to_string() })),
        case("dlq update_entry: the REST answer is what gRPC reads",
            recorded(Outcome::data(&v1::DlqEntryView::from(updated_by_rest))),
            rpc!(g.dlq, list_for_task, v1::ListDlqEntriesForTaskRequest { task_uuid: a.to_string() }, only_entry)),
        case("dlq update_entry: the gRPC answer is what REST reads",
            rest.outcome::<Vec<DlqEntryView>, v1::ListDlqEntriesForTaskResponse, _>(Method::GET, format!("/v1/dlq/task/{c}"), Body::Empty, only_entry),
            recorded(Outcome::data(&updated_by_grpc))),
        case("dlq update_entry, closing without resolved_by",
            rest.outcome::<DlqEntryView, v1::DlqEntryView, _>(Method::PATCH, format!("/v1/dlq/entry/{a_entry}"), Body::Json(serde_json::to_value(&closing_anonymously).unwrap()), |p| p),
            rpc!(g.dlq, update_entry, v1::UpdateDlqEntryRequest::new(a_entry, closing_anonymously.clone()))),
        case("dlq update_entry, back to pending",
            rest.outcome::<DlqEntryView, v1::DlqEntryView, _>(Method::PATCH, format!("/v1/dlq/entry/{a_entry}"), Body::Json(serde_json::to_value(&backwards).unwrap()), |p| p),
            rpc!(g.dlq, update_entry, v1::UpdateDlqEntryRequest::new(a_entry, backwards.clone()))),
    ];
    check(after_the_sweep).await;
}
