//! One diamond task's trace, end to end (SPEC §11): a REST request with a
//! `traceparent` header creates the task; the orchestrator and a worker —
//! separate tasks that meet only through PostgreSQL and the queues — export
//! their spans over OTLP/gRPC to a receiver in this test, and every span of
//! the task lands in the caller's trace, in the expected tree, with its
//! fields.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod telemetry_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::json;
use telemetry_support::{Stack, config};
use tonic::transport::server::TcpIncoming;

/// A span as received, with its service and attributes flattened.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    attributes: HashMap<String, String>,
}

/// An OTLP trace receiver that keeps what it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                kept.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent: span.parent_span_id,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|a| (a.key, text(a.value.as_ref().and_then(|v| v.value.as_ref()))))
                        .collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_diamond_task_is_one_trace_across_orchestrator_and_worker() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let receiver = Receiver::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let config = config(&[("telemetry.otlp_endpoint", endpoint.into())]);
    let telemetry = tasker_telemetry::init(
        &config.telemetry,
        "tasker-tracing-test",
        tasker_telemetry::LogOutput::Stderr,
    )
    .unwrap();
    assert!(telemetry.exporting());

    let stack = Stack::start(config).await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let view = stack
        .create(
            json!({"namespace": "diamond_workflow", "name": "parallel_computation",
                   "context": {"value": 6}}),
            Some(&caller),
        )
        .await;
    let task_uuid = view["task_uuid"].as_str().unwrap().to_owned();
    let correlation_id = view["correlation_id"].as_str().unwrap().to_owned();
    stack.wait_for(&task_uuid, "complete").await;
    stack.stop().await;
    telemetry.flush();

    // Every span the task produced, in the caller's trace.
    let trace_id = hex(CALLER_TRACE);
    let expected_spans = 2 + 4 * 5; // request, create; per step: run, claim, handler, complete, result
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<Received> = receiver
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        if spans.len() >= expected_spans || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let one = |name: &str| {
        let found = names(name);
        assert_eq!(found.len(), 1, "{name}: {found:#?}");
        found[0].clone()
    };
    let summary: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| (s.name.as_str(), s.service.as_str()))
        .collect();

    // The request continues the caller's span; the task is created under it.
    let request = one("http.request");
    assert_eq!(request.parent, hex(CALLER_SPAN));
    assert_eq!(request.attributes["http.route"], "/v1/tasks");
    let create = one("task.create");
    assert_eq!(create.parent, request.span_id);
    assert_eq!(create.attributes["task_uuid"], task_uuid);
    assert_eq!(create.attributes["correlation_id"], correlation_id);
    assert_eq!(create.attributes["namespace"], "diamond_workflow");
    assert_eq!(create.attributes["template"], "parallel_computation");

    // Each step ran once, as a child of task.create (its pointer carried
    // the task's trace context), with claim, handler and completion under it.
    let runs = names("step.run");
    let mut step_names: Vec<&str> = runs
        .iter()
        .map(|r| r.attributes["step_name"].as_str())
        .collect();
    step_names.sort_unstable();
    assert_eq!(
        step_names,
        [
            "diamond_branch_b",
            "diamond_branch_c",
            "diamond_end",
            "diamond_start"
        ],
        "{summary:?}"
    );
    for run in &runs {
        assert_eq!(run.parent, create.span_id, "{run:?}");
        assert_eq!(run.attributes["task_uuid"], task_uuid);
        assert_eq!(run.attributes["correlation_id"], correlation_id);
        assert_eq!(run.attributes["namespace"], "diamond_workflow");
        assert_eq!(run.attributes["attempt"], "1");
        assert_eq!(run.attributes["claimed"], "true");
        let children: Vec<&str> = spans
            .iter()
            .filter(|s| s.parent == run.span_id)
            .map(|s| s.name.as_str())
            .collect();
        for child in ["step.claim", "step.handler", "step.complete", "step.result"] {
            assert_eq!(
                children.iter().filter(|c| **c == child).count(),
                1,
                "{} under {}: {children:?}",
                child,
                run.attributes["step_name"]
            );
        }
        let result = spans
            .iter()
            .find(|s| s.parent == run.span_id && s.name == "step.result")
            .unwrap();
        assert_eq!(result.attributes["step_uuid"], run.attributes["step_uuid"]);
        assert_eq!(result.attributes["kind"], "step_result");
        let handler = spans
            .iter()
            .find(|s| s.parent == run.span_id && s.name == "step.handler")
            .unwrap();
        assert_eq!(handler.attributes["outcome"], "success");
        assert!(handler.attributes["callable"].starts_with("examples::"));
    }
    assert_eq!(spans.len(), expected_spans, "{summary:?}");
    assert!(spans.iter().all(|s| s.service == "tasker-tracing-test"));
    telemetry.shutdown();
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
