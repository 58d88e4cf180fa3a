//! An app over a fresh database, and a one-line request helper.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_db::testing::TestDb;
use tasker_messaging::{MessageQueue, PgmqQueue};
use tasker_orchestration::Orchestrator;
use tasker_orchestration::auth::Authenticator;
use tasker_orchestration::services::health::HealthState;
use tasker_orchestration::telemetry::metrics::MetricsHandle;
use tasker_orchestration::web::{AppState, app};
use tower::ServiceExt;

pub(crate) struct Api {
    pub(crate) db: TestDb,
    pub(crate) app: Router,
    pub(crate) state: AppState,
    pub(crate) config: TaskerConfig,
    pub(crate) queue: Arc<dyn MessageQueue>,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The error code of a documented error body.
    pub(crate) fn code(&self) -> String {
        let body = self.json();
        assert!(
            body["error"]["message"].is_string(),
            "not an error body: {body}"
        );
        assert!(
            body["error"]["details"].is_object(),
            "error body without details: {body}"
        );
        body["error"]["code"].as_str().unwrap().to_owned()
    }
}

impl Api {
    pub(crate) async fn new() -> Self {
        let db = TestDb::new().await.unwrap();
        let config = ConfigLoader::new()
            .environment("test")
            .vars(|_| None)
            .load()
            .unwrap();
        let queue: Arc<dyn MessageQueue> = Arc::new(PgmqQueue::new(db.pool().clone()));
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/tasks");
        tasker_worker::register_template_files(db.pool(), queue.as_ref(), &[examples])
            .await
            .unwrap();
        let orchestrator = Orchestrator::new(db.pool().clone(), queue.clone(), config.clone());
        orchestrator.prepare().await.unwrap();
        let state = AppState {
            orchestrator,
            health: HealthState::default(),
            web: config.web.clone(),
            metrics: MetricsHandle::global(),
            auth: Arc::new(Authenticator::disabled()),
        };
        Self {
            app: app(state.clone()),
            db,
            state,
            config,
            queue,
        }
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(kind) = content_type {
            request = request.header("content-type", kind);
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(crate) async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, None, Vec::new()).await
    }

    pub(crate) async fn post_json(&self, uri: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            uri,
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub(crate) async fn patch_json(&self, uri: &str, body: &Value) -> Reply {
        self.send(
            Method::PATCH,
            uri,
            Some("application/json"),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    pub(crate) async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM tasker.{table}"
        )))
        .fetch_one(self.db.pool())
        .await
        .unwrap()
    }
}
