//! A whole stack for the telemetry tests: a fresh database, an
//! orchestrator, a Rust worker (each in tasks of its own, meeting only
//! through the database and the queues) and the REST API on a real port.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_db::testing::TestDb;
use tasker_messaging::{MessageQueue, PgmqQueue};
use tasker_orchestration::Orchestrator;
use tasker_orchestration::auth::Authenticator;
use tasker_orchestration::services::health::HealthState;
use tasker_orchestration::telemetry::metrics::MetricsHandle;
use tasker_orchestration::web::{AppState, app};
use tasker_worker::Worker;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The test environment's configuration with `settings` (dotted keys) on top.
pub(crate) fn config(settings: &[(&str, toml::Value)]) -> TaskerConfig {
    let mut loader = ConfigLoader::new().environment("test").vars(|_| None);
    for (key, value) in settings {
        loader = loader.set(*key, value.clone());
    }
    loader.load().unwrap()
}

/// A running stack.
pub(crate) struct Stack {
    pub(crate) db: TestDb,
    pub(crate) orchestrator: Orchestrator,
    pub(crate) base_url: String,
    pub(crate) http: reqwest::Client,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Stack {
    pub(crate) async fn start(config: TaskerConfig) -> Self {
        let db = TestDb::new().await.unwrap();
        let pool = db.pool().clone();
        let queue: Arc<dyn MessageQueue> = Arc::new(PgmqQueue::new(pool.clone()));
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/tasks");
        tasker_worker::register_template_files(&pool, queue.as_ref(), &[examples])
            .await
            .unwrap();
        let orchestrator = Orchestrator::new(pool.clone(), queue.clone(), config.clone());
        orchestrator.prepare().await.unwrap();
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn({
            let (orchestrator, stop) = (orchestrator.clone(), stop.clone());
            async move { orchestrator.run(stop).await.unwrap() }
        }));
        let worker = Worker::new(
            pool.clone(),
            queue.clone(),
            config.clone(),
            tasker_rust_worker::registry(),
        );
        tasks.push(tokio::spawn({
            let stop = stop.clone();
            async move { worker.serve(stop).await }
        }));
        let state = AppState {
            orchestrator: orchestrator.clone(),
            health: HealthState::default(),
            web: config.web.clone(),
            metrics: MetricsHandle::global(),
            auth: Arc::new(Authenticator::disabled()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tasks.push(tokio::spawn({
            let stop = stop.clone();
            async move {
                axum::serve(listener, app(state))
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                    .unwrap();
            }
        }));
        Self {
            db,
            orchestrator,
            base_url,
            http: reqwest::Client::new(),
            stop,
            tasks,
        }
    }

    /// Creates a task over REST (with a `traceparent` header when given).
    pub(crate) async fn create(&self, body: Value, traceparent: Option<&str>) -> Value {
        let mut request = self
            .http
            .post(format!("{}/v1/tasks", self.base_url))
            .json(&body);
        if let Some(tp) = traceparent {
            request = request.header("traceparent", tp);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// GETs `url` and returns its body, asserting a 200.
    pub(crate) async fn get_text(&self, url: &str) -> String {
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        response.text().await.unwrap()
    }

    /// Waits for `task_uuid` to reach `state`.
    pub(crate) async fn wait_for(&self, task_uuid: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = format!("{}/v1/tasks/{task_uuid}", self.base_url);
            let view: Value = serde_json::from_str(&self.get_text(&url).await).unwrap();
            if view["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "task never reached {state}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops everything politely.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}
