//! The dispatch surface end to end, with a plain Rust thread standing in for
//! a foreign runtime: it polls, runs "handlers" and completes, the way the
//! Python, Ruby and TypeScript bindings do — so every rule of the surface is
//! proven here without any interpreter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_db::result_audit;
use tasker_types::outcome::StepOutcome;
use tasker_types::state::{StepState, TaskState};
use tasker_worker::HandlerRegistry;
use tasker_worker::dispatch::{
    Dispatch, DispatchError, EmbeddedWorker, EmbeddedWorkerOptions, WorkerState, exception_outcome,
    parse_outcome,
};

use crate::support::{Stack, eventually};

const LIMIT: Duration = Duration::from_secs(30);

/// What a "foreign handler" does with a dispatch: an outcome, or `None` to
/// abandon it.
type Handler = Arc<dyn Fn(&EmbeddedWorker, &Dispatch) -> Option<StepOutcome> + Send + Sync>;

/// A foreign runtime in miniature: one polling thread, one thread per
/// dispatch, completions and refusals recorded.
struct Foreign {
    worker: Arc<EmbeddedWorker>,
    poller: Option<JoinHandle<()>>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl Foreign {
    async fn start(
        stack: &Stack,
        overrides: &[(&str, toml::Value)],
        handlers: Vec<(&str, Handler)>,
        rust_handlers: HandlerRegistry,
    ) -> Self {
        let config = config(stack, overrides);
        let callables = handlers.iter().map(|(c, _)| (*c).to_owned()).collect();
        let worker = tokio::task::spawn_blocking(move || {
            EmbeddedWorker::start(EmbeddedWorkerOptions {
                config,
                callables,
                rust_handlers,
            })
        })
        .await
        .unwrap()
        .unwrap();
        let worker = Arc::new(worker);
        let table: HashMap<String, Handler> = handlers
            .into_iter()
            .map(|(c, h)| (c.to_owned(), h))
            .collect();
        let refused = Arc::new(Mutex::new(Vec::new()));
        let poller = std::thread::spawn({
            let worker = worker.clone();
            let refused = refused.clone();
            move || {
                loop {
                    let batch = match worker.poll_blocking(8, Duration::from_millis(100)) {
                        Ok(batch) => batch,
                        Err(DispatchError::Stopped) => return,
                        Err(err) => panic!("poll failed: {err}"),
                    };
                    for dispatch in batch {
                        let handler = table[&dispatch.callable].clone();
                        let worker = worker.clone();
                        let refused = refused.clone();
                        std::thread::spawn(move || match handler(&worker, &dispatch) {
                            Some(outcome) => match worker.complete(dispatch.id, outcome) {
                                Ok(()) => {}
                                Err(err) => refused.lock().unwrap().push(err.to_string()),
                            },
                            None => worker.abandon(dispatch.id).unwrap(),
                        });
                    }
                }
            }
        });
        Self {
            worker,
            poller: Some(poller),
            refused,
        }
    }

    /// Stops the worker and waits for the poller to see it stopped.
    async fn stop(mut self) {
        self.worker.stop().unwrap();
        let poller = self.poller.take().unwrap();
        tokio::task::spawn_blocking(move || poller.join().unwrap())
            .await
            .unwrap();
        assert_eq!(self.worker.status().state, WorkerState::Stopped);
    }
}

fn config(stack: &Stack, overrides: &[(&str, toml::Value)]) -> TaskerConfig {
    let url = stack.db.url();
    let prefix = stack.prefix().to_owned();
    // The embedded worker connects as a process would: to the stack's
    // database and queue backend (and, on RabbitMQ, the stack's queues).
    let mut loader = ConfigLoader::new()
        .environment("test")
        .vars(move |name| match name {
            "DATABASE_URL" => Some(url.clone()),
            "TASKER_MESSAGING_BACKEND" => Some(super::support::backend()),
            "TASKER_RABBITMQ_QUEUE_PREFIX" => Some(prefix.clone()),
            "RABBITMQ_URL" => std::env::var("RABBITMQ_URL").ok(),
            _ => None,
        });
    for (key, value) in overrides {
        loader = loader.set(*key, value.clone());
    }
    loader.load().unwrap()
}

fn handler(
    f: impl Fn(&EmbeddedWorker, &Dispatch) -> Option<StepOutcome> + Send + Sync + 'static,
) -> Handler {
    Arc::new(f)
}

/// `examples::square` over the plain data a foreign handler is given.
fn square() -> Handler {
    handler(|_, dispatch| {
        let ctx = dispatch.context();
        let input = match ctx.direct_parents.first() {
            Some(parent) => &ctx.dependency_results[parent]["value"],
            None => &ctx.context["value"],
        };
        let n = input.as_i64().unwrap();
        Some(StepOutcome::success(json!({ "value": n * n })))
    })
}

/// Registers template `name` of `namespace`: one step, `only`, running
/// `callable`, with `extra` more keys (`, timeout_seconds: 1`).
async fn register_one_step(
    stack: &Stack,
    namespace: &str,
    name: &str,
    callable: &str,
    extra: &str,
) {
    stack
        .register(&format!(
            "name: {name}\nnamespace_name: {namespace}\nversion: 1.0.0\n\
             identity_strategy: always_unique\nsteps:\n\
             \x20 - {{ name: only, handler: {{ callable: \"{callable}\" }}{extra} }}\n"
        ))
        .await;
}

/// Spins until dispatch `id` is cancelled; panics if it never is.
fn wait_for_cancel(worker: &EmbeddedWorker, dispatch: &Dispatch) {
    let started = Instant::now();
    while !worker.is_cancelled(dispatch.id).unwrap() {
        assert!(started.elapsed() < Duration::from_secs(20), "never told");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn error_type(step: &tasker_db::workflow_step::StepRow) -> Value {
    step.last_error.as_ref().unwrap()["error_type"].clone()
}

#[tokio::test]
async fn a_foreign_runtime_runs_a_linear_workflow() {
    let stack = Stack::new().await;
    let _orchestrator = stack.start_orchestrator();
    let foreign = Foreign::start(
        &stack,
        &[],
        vec![("examples::square", square())],
        HandlerRegistry::new(),
    )
    .await;
    let task = stack
        .create(
            "linear_workflow",
            "mathematical_sequence",
            json!({"value": 6}),
        )
        .await;
    let done = stack.finished(task.task_uuid, LIMIT).await;
    assert_eq!(done.state, TaskState::Complete);
    let last = stack.step(task.task_uuid, "linear_step_4").await;
    assert_eq!(last.results, Some(json!({"value": 6_i64.pow(16)})));
    let status = foreign.worker.status();
    assert_eq!(status.totals.dispatched, 4);
    assert_eq!(status.totals.completed, 4);
    foreign.stop().await;
}

#[tokio::test]
async fn rust_built_ins_and_foreign_handlers_share_one_worker() {
    let stack = Stack::new().await;
    stack
        .register(
            r#"
name: mixed
namespace_name: foreign_mixed
version: 1.0.0
steps:
  - { name: seed, handler: { callable: "tasker::math", initialization: { operation: add, constant: 5 } } }
  - { name: square, handler: { callable: "examples::square" }, dependencies: [seed] }
"#,
        )
        .await;
    let _orchestrator = stack.start_orchestrator();
    let foreign = Foreign::start(
        &stack,
        &[],
        vec![("examples::square", square())],
        HandlerRegistry::with_builtins(),
    )
    .await;
    let task = stack
        .create("foreign_mixed", "mixed", json!({"value": 2}))
        .await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    let square = stack.step(task.task_uuid, "square").await;
    assert_eq!(square.results, Some(json!({"value": 49})));
    assert_eq!(
        foreign.worker.status().totals.dispatched,
        1,
        "only the foreign step crossed"
    );
    foreign.stop().await;
}

#[tokio::test]
async fn an_overrunning_handler_is_told_and_its_late_result_refused() {
    let stack = Stack::new().await;
    register_one_step(
        &stack,
        "foreign_slow",
        "slow",
        "slow::overrun",
        ", timeout_seconds: 2, retry: { max_attempts: 1 }",
    )
    .await;
    let _orchestrator = stack.start_orchestrator();
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let foreign = Foreign::start(
        &stack,
        &[],
        vec![(
            "slow::overrun",
            handler({
                let saw_cancel = saw_cancel.clone();
                move |worker, dispatch| {
                    wait_for_cancel(worker, dispatch);
                    saw_cancel.store(true, Ordering::SeqCst);
                    Some(StepOutcome::success(json!({"too": "late"})))
                }
            }),
        )],
        HandlerRegistry::new(),
    )
    .await;
    let task = stack.create("foreign_slow", "slow", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error
    );
    let step = stack.step(task.task_uuid, "only").await;
    assert_eq!(error_type(&step), "timeout");
    assert_eq!(step.results, None);
    assert_eq!(
        foreign.worker.status().totals.dispatched,
        1,
        "the handler never ran: its attempt timed out before it was polled"
    );
    eventually(LIMIT, "the late completion", || async {
        !foreign.refused.lock().unwrap().is_empty()
    })
    .await;
    assert!(saw_cancel.load(Ordering::SeqCst));
    let refusal = foreign.refused.lock().unwrap()[0].clone();
    assert!(refusal.contains("refused"), "{refusal}");
    assert_eq!(foreign.worker.status().totals.refused, 1);
    foreign.stop().await;
}

#[tokio::test]
async fn a_worker_claims_no_more_steps_than_its_handlers_can_run() {
    let stack = Stack::new().await;
    let once = ", timeout_seconds: 1, retry: { max_attempts: 1 }";
    register_one_step(&stack, "foreign_capacity", "stuck", "capacity::stuck", once).await;
    register_one_step(&stack, "foreign_capacity", "quick", "capacity::quick", "").await;
    let _orchestrator = stack.start_orchestrator();
    let returned_at: Arc<Mutex<Option<DateTime<Utc>>>> = Arc::default();
    let foreign = Foreign::start(
        &stack,
        &[("worker.concurrency", toml::Value::Integer(1))],
        vec![
            (
                "capacity::stuck",
                handler({
                    let returned_at = returned_at.clone();
                    move |_, _| {
                        // Ignores its cancel flag for well past its timeout.
                        std::thread::sleep(Duration::from_secs(3));
                        *returned_at.lock().unwrap() = Some(Utc::now());
                        Some(StepOutcome::success(json!({})))
                    }
                }),
            ),
            (
                "capacity::quick",
                handler(|_, _| Some(StepOutcome::success(json!({})))),
            ),
        ],
        HandlerRegistry::new(),
    )
    .await;
    let stuck = stack.create("foreign_capacity", "stuck", json!({})).await;
    eventually(LIMIT, "the stuck handler to be running", || async {
        foreign.worker.status().slots.running == 1
    })
    .await;
    let quick = stack.create("foreign_capacity", "quick", json!({})).await;
    assert_eq!(
        stack.finished(stuck.task_uuid, LIMIT).await.state,
        TaskState::Error,
        "its attempt timed out after 1 s"
    );
    assert_eq!(
        error_type(&stack.step(stuck.task_uuid, "only").await),
        "timeout"
    );
    assert_eq!(
        stack.finished(quick.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    // The one slot stayed taken until the stuck handler returned, two
    // seconds after its attempt ended: only then was `quick` claimed.
    let returned = returned_at
        .lock()
        .unwrap()
        .expect("the stuck handler returned");
    let claimed = stack
        .step(quick.task_uuid, "only")
        .await
        .attempt_started_at
        .unwrap();
    assert!(
        claimed >= returned - chrono::Duration::milliseconds(50),
        "quick was claimed at {claimed}, before the stuck handler returned at {returned}"
    );
    foreign.stop().await;
}

#[tokio::test]
async fn stop_lets_dispatched_steps_finish_then_reports_stopped() {
    let stack = Stack::new().await;
    register_one_step(&stack, "foreign_drain", "nap", "drain::nap", "").await;
    let _orchestrator = stack.start_orchestrator();
    let foreign = Foreign::start(
        &stack,
        &[],
        vec![(
            "drain::nap",
            handler(|_, _| {
                std::thread::sleep(Duration::from_millis(700));
                Some(StepOutcome::success(json!({"napped": true})))
            }),
        )],
        HandlerRegistry::new(),
    )
    .await;
    let task = stack.create("foreign_drain", "nap", json!({})).await;
    eventually(LIMIT, "the nap to be running", || async {
        foreign.worker.status().slots.running == 1
    })
    .await;
    foreign.worker.stop().unwrap();
    assert_eq!(foreign.worker.status().state, WorkerState::Stopping);
    let worker = foreign.worker.clone();
    foreign.stop().await;
    assert!(worker.is_stopped());
    let nap = stack.step(task.task_uuid, "only").await;
    assert_eq!(
        nap.results,
        Some(json!({"napped": true})),
        "drained, not abandoned"
    );
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    assert!(matches!(
        worker.poll(1, Duration::from_secs(5)).await,
        Err(DispatchError::Stopped)
    ));
}

#[tokio::test]
async fn cancelling_the_task_flips_the_running_handlers_flag() {
    let stack = Stack::new().await;
    register_one_step(&stack, "foreign_cancel", "wait", "cancel::wait_for_it", "").await;
    let _orchestrator = stack.start_orchestrator();
    let foreign = Foreign::start(
        &stack,
        &[],
        vec![(
            "cancel::wait_for_it",
            handler(|worker, dispatch| {
                wait_for_cancel(worker, dispatch);
                Some(StepOutcome::success(json!({})))
            }),
        )],
        HandlerRegistry::new(),
    )
    .await;
    let task = stack.create("foreign_cancel", "wait", json!({})).await;
    eventually(LIMIT, "the handler to be running", || async {
        foreign.worker.status().slots.running == 1
    })
    .await;
    let cancelled = stack
        .orchestrator
        .cancel_task(task.task_uuid, Some("no longer needed"))
        .await
        .unwrap();
    assert_eq!(cancelled.state, TaskState::Cancelled);
    eventually(Duration::from_secs(5), "the handler to notice", || async {
        foreign.worker.status().slots.running == 0
    })
    .await;
    assert_eq!(
        stack.step(task.task_uuid, "only").await.state,
        StepState::Cancelled
    );
    foreign.stop().await;
}

#[tokio::test]
async fn an_abandoned_step_is_reclaimed_as_a_new_attempt() {
    let stack = Stack::new().await;
    register_one_step(
        &stack,
        "foreign_abandon",
        "giveback",
        "abandon::first_attempt",
        "",
    )
    .await;
    let _orchestrator = stack.start_orchestrator();
    let foreign = Foreign::start(
        &stack,
        &[
            ("worker.lease_ms", toml::Value::Integer(1000)),
            ("worker.lease_renew_interval_ms", toml::Value::Integer(300)),
            ("worker.polling_interval_ms", toml::Value::Integer(100)),
            (
                "worker.deployment_mode",
                toml::Value::String("polling_only".into()),
            ),
        ],
        vec![(
            "abandon::first_attempt",
            handler(|_, dispatch| {
                let ctx = dispatch.context();
                (ctx.attempt > 1).then(|| StepOutcome::success(json!({"attempt": ctx.attempt})))
            }),
        )],
        HandlerRegistry::new(),
    )
    .await;
    let task = stack.create("foreign_abandon", "giveback", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Complete
    );
    let step = stack.step(task.task_uuid, "only").await;
    assert_eq!(step.attempts, 2);
    assert_eq!(step.results, Some(json!({"attempt": 2})));
    assert_eq!(foreign.worker.status().totals.abandoned, 1);
    let audit = result_audit::list_for_step(stack.pool(), step.workflow_step_uuid)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "the abandoned attempt recorded nothing");
    foreign.stop().await;
}

#[tokio::test]
async fn exceptions_and_garbage_become_step_errors_not_crashes() {
    let stack = Stack::new().await;
    stack
        .register(
            r#"
name: faulty
namespace_name: foreign_faults
version: 1.0.0
identity_strategy: always_unique
steps:
  - { name: flaky, handler: { callable: "faults::raise_once" }, retry: { max_attempts: 2, backoff: none } }
  - { name: garbage, handler: { callable: "faults::garbage" }, dependencies: [flaky] }
"#,
        )
        .await;
    let _orchestrator = stack.start_orchestrator();
    let foreign = Foreign::start(
        &stack,
        &[],
        vec![
            (
                "faults::raise_once",
                handler(|_, dispatch| {
                    Some(if dispatch.context().attempt == 1 {
                        exception_outcome("ConnectionError", "reset by peer", Some("at line 1"))
                    } else {
                        StepOutcome::success(json!({"second": "time lucky"}))
                    })
                }),
            ),
            (
                "faults::garbage",
                handler(|_, _| Some(parse_outcome(r#"{"status": "success"}"#))),
            ),
        ],
        HandlerRegistry::new(),
    )
    .await;
    let task = stack.create("foreign_faults", "faulty", json!({})).await;
    assert_eq!(
        stack.finished(task.task_uuid, LIMIT).await.state,
        TaskState::Error
    );
    let flaky = stack.step(task.task_uuid, "flaky").await;
    assert_eq!((flaky.state, flaky.attempts), (StepState::Complete, 2));
    let first = &result_audit::list_for_step(stack.pool(), flaky.workflow_step_uuid)
        .await
        .unwrap()[0];
    let error = first.error.as_ref().unwrap();
    assert_eq!(error["error_type"], "exception");
    assert_eq!(error["message"], "ConnectionError: reset by peer");
    assert_eq!(error["details"]["backtrace"], "at line 1");
    let garbage = stack.step(task.task_uuid, "garbage").await;
    assert_eq!(garbage.state, StepState::Error);
    assert_eq!(error_type(&garbage), "invalid_result");
    foreign.stop().await;
}

#[tokio::test]
async fn an_interrupt_ends_a_blocking_wait_early() {
    let stack = Stack::new().await;
    let foreign = Foreign::start(
        &stack,
        &[],
        vec![("examples::square", square())],
        HandlerRegistry::new(),
    )
    .await;
    let worker = foreign.worker.clone();
    let waited = tokio::task::spawn_blocking(move || {
        let interrupt = tokio_util::sync::CancellationToken::new();
        let canceller = std::thread::spawn({
            let interrupt = interrupt.clone();
            move || {
                std::thread::sleep(Duration::from_millis(100));
                interrupt.cancel();
            }
        });
        let started = Instant::now();
        let polled = worker
            .poll_blocking_until(1, Duration::from_secs(30), &interrupt)
            .unwrap();
        let stopped = worker
            .wait_stopped_blocking_until(Duration::from_secs(30), &interrupt)
            .unwrap();
        canceller.join().unwrap();
        (polled.len(), stopped, started.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(waited.0, 0, "nothing was dispatched");
    assert!(!waited.1, "the worker is still running");
    assert!(waited.2 < Duration::from_secs(10), "took {:?}", waited.2);
    foreign.stop().await;
}
