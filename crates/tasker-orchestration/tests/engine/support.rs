//! A whole stack in one process: orchestrators and workers sharing one test
//! database, each runnable on a runtime of its own so a test can kill it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_db::named_task;
use tasker_db::task::{self, TaskRow};
use tasker_db::testing::TestDb;
use tasker_db::workflow_step::{self, StepRow};
use tasker_messaging::{MessageQueue, Outboxed, PgmqQueue, RabbitQueue, RabbitSettings, ack_now};
use tasker_orchestration::Orchestrator;
use tasker_types::api::TaskRequest;
use tasker_types::ids::TaskUuid;
use tasker_types::messages::QueueName;
use tasker_types::template::TaskTemplate;
use tasker_worker::{HandlerRegistry, Worker};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

pub(crate) fn test_config() -> TaskerConfig {
    ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .load()
        .unwrap()
}

/// The queue provider the engine suite runs on, from
/// `TASKER_TEST_MESSAGING_BACKEND`: `pgmq` (the default) or `rabbitmq`
/// (behind the outbox, as `tasker_messaging::connect` builds it, on the
/// broker at `RABBITMQ_URL`).
pub(crate) fn backend() -> String {
    std::env::var("TASKER_TEST_MESSAGING_BACKEND").unwrap_or_else(|_| "pgmq".into())
}

/// A provider over `pool` — for RabbitMQ, a connection of its own (as a
/// separate process would have) to queues named with `prefix`, which the
/// broker deletes a while after the test.
pub(crate) fn queue_for(backend: &str, pool: &PgPool, prefix: &str) -> Arc<dyn MessageQueue> {
    match backend {
        "pgmq" => Arc::new(PgmqQueue::new(pool.clone())),
        "rabbitmq" => {
            let rabbit = RabbitQueue::new(RabbitSettings {
                url: std::env::var("RABBITMQ_URL")
                    .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
                prefetch: 100,
                queue_prefix: prefix.to_owned(),
                queue_expires: Some(Duration::from_secs(600)),
            });
            Arc::new(Outboxed::new(Arc::new(rabbit), pool.clone()))
        }
        other => panic!("TASKER_TEST_MESSAGING_BACKEND={other}: expected pgmq or rabbitmq"),
    }
}

/// A running component: stop it politely, or kill its runtime.
pub(crate) struct Running {
    stop: CancellationToken,
    handle: Option<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Running {
    /// Soft shutdown, waiting for it to finish.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), handle).await;
        }
    }

    /// Kills the component as a crash would: its runtime stops mid-flight.
    pub(crate) fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub(crate) struct Stack {
    pub(crate) db: TestDb,
    /// The queue backend (`pgmq` or `rabbitmq`).
    backend: String,
    /// This stack's RabbitMQ queue prefix (unused on pgmq).
    prefix: String,
    pub(crate) queue: Arc<dyn MessageQueue>,
    pub(crate) config: TaskerConfig,
    pub(crate) orchestrator: Orchestrator,
}

impl Stack {
    /// A database with the example templates registered, and an orchestrator
    /// handle (not yet running).
    pub(crate) async fn new() -> Self {
        Self::with_config(test_config()).await
    }

    pub(crate) async fn with_config(config: TaskerConfig) -> Self {
        Self::on_backend(&backend(), config).await
    }

    /// A stack on `backend`, whatever the suite runs on.
    pub(crate) async fn on_backend(backend: &str, config: TaskerConfig) -> Self {
        init_tracing();
        let db = TestDb::new().await.unwrap();
        let prefix = format!("engine-{}", uuid::Uuid::now_v7().simple());
        let queue = queue_for(backend, db.pool(), &prefix);
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/tasks");
        tasker_worker::register_template_files(db.pool(), queue.as_ref(), &[examples])
            .await
            .unwrap();
        let orchestrator = Orchestrator::new(db.pool().clone(), queue.clone(), config.clone());
        orchestrator.prepare().await.unwrap();
        Self {
            db,
            backend: backend.to_owned(),
            prefix,
            queue,
            config,
            orchestrator,
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        self.db.pool()
    }

    /// This stack's RabbitMQ queue prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Removes every message from `queue` (as an operator deleting them by
    /// hand would), whatever the provider.
    pub(crate) async fn purge(&self, queue: &QueueName) {
        let started = Instant::now();
        loop {
            let got = self
                .queue
                .receive(queue, 100, Duration::from_secs(60))
                .await
                .unwrap();
            let receipts: Vec<_> = got.iter().map(|d| d.receipt).collect();
            ack_now(self.queue.as_ref(), queue, &receipts)
                .await
                .unwrap();
            if got.is_empty() && self.queue.depth(queue).await.unwrap().total == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{queue} would not empty"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many messages `queue` holds.
    pub(crate) async fn queued(&self, queue: &QueueName) -> u64 {
        self.queue.depth(queue).await.unwrap().total
    }

    /// Registers a template given as YAML.
    pub(crate) async fn register(&self, yaml: &str) {
        let template = TaskTemplate::from_yaml(yaml, Some("test.yaml")).unwrap();
        let mut conn = self.pool().acquire().await.unwrap();
        named_task::register(&mut conn, &template).await.unwrap();
    }

    /// Starts an orchestrator on the test's runtime.
    pub(crate) fn start_orchestrator(&self) -> Running {
        let orchestrator =
            Orchestrator::new(self.pool().clone(), self.queue.clone(), self.config.clone());
        let stop = CancellationToken::new();
        let handle = tokio::spawn({
            let stop = stop.clone();
            async move { orchestrator.run(stop).await.unwrap() }
        });
        Running {
            stop,
            handle: Some(handle),
            runtime: None,
        }
    }

    /// Starts an orchestrator on a runtime of its own, so the test can kill it.
    pub(crate) fn start_killable_orchestrator(&self) -> Running {
        let config = self.config.clone();
        self.killable(move |pool, queue, stop| async move {
            Orchestrator::new(pool, queue, config)
                .run(stop)
                .await
                .unwrap();
        })
    }

    /// Starts a worker with `registry` on the test's runtime.
    pub(crate) fn start_worker(&self, registry: HandlerRegistry) -> Running {
        self.start_worker_with(registry, self.config.clone())
    }

    pub(crate) fn start_worker_with(
        &self,
        registry: HandlerRegistry,
        config: TaskerConfig,
    ) -> Running {
        let worker = Worker::new(self.pool().clone(), self.queue.clone(), config, registry);
        self.run_worker(worker)
    }

    /// Starts `worker` (built by the caller, who may keep a clone to watch
    /// it) on the test's runtime.
    pub(crate) fn run_worker(&self, worker: Worker) -> Running {
        let stop = CancellationToken::new();
        let handle = tokio::spawn({
            let stop = stop.clone();
            async move { worker.run(stop).await.unwrap() }
        });
        Running {
            stop,
            handle: Some(handle),
            runtime: None,
        }
    }

    /// Starts a worker on a runtime of its own, so the test can kill it.
    pub(crate) fn start_killable_worker(
        &self,
        registry: HandlerRegistry,
        config: TaskerConfig,
    ) -> Running {
        self.killable(move |pool, queue, stop| async move {
            Worker::new(pool, queue, config, registry)
                .run(stop)
                .await
                .unwrap();
        })
    }

    /// Runs `component` on a runtime of its own, with a pool of its own, so
    /// that killing the runtime kills its connections as a crash would.
    fn killable<F, Fut>(&self, component: F) -> Running
    where
        F: FnOnce(PgPool, Arc<dyn MessageQueue>, CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let options = self.db.connect_options();
        let prefix = self.prefix.clone();
        let backend = self.backend.clone();
        let stop = CancellationToken::new();
        runtime.spawn({
            let stop = stop.clone();
            async move {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(5)
                    .connect_with(options)
                    .await
                    .unwrap();
                let queue = queue_for(&backend, &pool, &prefix);
                component(pool, queue, stop).await;
            }
        });
        Running {
            stop,
            handle: None,
            runtime: Some(runtime),
        }
    }

    pub(crate) async fn create(&self, namespace: &str, name: &str, context: Value) -> TaskRow {
        self.orchestrator
            .create_task(TaskRequest::new(namespace, name, context))
            .await
            .unwrap()
            .task
    }

    pub(crate) async fn steps(&self, task: TaskUuid) -> Vec<StepRow> {
        workflow_step::list_for_task(self.pool(), task)
            .await
            .unwrap()
    }

    pub(crate) async fn step(&self, task: TaskUuid, name: &str) -> StepRow {
        self.steps(task)
            .await
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    /// Waits for `task` to reach a terminal state.
    pub(crate) async fn finished(&self, task: TaskUuid, limit: Duration) -> TaskRow {
        let started = Instant::now();
        loop {
            let row = task::get(self.pool(), task).await.unwrap().unwrap();
            if row.state.is_terminal() {
                return row;
            }
            assert!(
                started.elapsed() < limit,
                "task {task} still {} after {limit:?}",
                row.state
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Polls `check` until it holds or `limit` passes.
pub(crate) async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The built-in and example handlers.
pub(crate) fn examples() -> HandlerRegistry {
    tasker_rust_worker::registry()
}

/// A two-step linear template in `namespace` whose handlers are
/// `tests::count` (see [`counting`]).
pub(crate) fn counted_template(namespace: &str) -> String {
    format!(
        r#"
name: counted
namespace_name: {namespace}
version: 1.0.0
identity_strategy: always_unique
steps:
  - {{ name: once, handler: {{ callable: "tests::count" }} }}
  - {{ name: then, handler: {{ callable: "tests::count" }}, dependencies: [once] }}
"#
    )
}

/// The examples plus `tests::count`, which counts its runs in `calls`.
pub(crate) fn counting(calls: Arc<AtomicUsize>) -> HandlerRegistry {
    let mut registry = examples();
    registry.register_fn("tests::count", move |_ctx| {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(tasker_worker::Success::new(serde_json::json!({"ok": true})))
        }
    });
    registry
}
