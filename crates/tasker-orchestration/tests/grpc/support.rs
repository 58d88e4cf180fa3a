//! A server with both APIs over a fresh database, a REST caller, gRPC
//! clients, and the `Outcome` both sides of a parity case reduce to.

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tasker_config::{ConfigLoader, TaskerConfig};
use tasker_db::testing::TestDb;
use tasker_messaging::{MessageQueue, PgmqQueue};
use tasker_orchestration::Orchestrator;
use tasker_orchestration::server::Server;
use tasker_proto::v1::dlq_service_client::DlqServiceClient;
use tasker_proto::v1::step_service_client::StepServiceClient;
use tasker_proto::v1::task_service_client::TaskServiceClient;
use tasker_proto::v1::template_service_client::TemplateServiceClient;
use tasker_types::api::TaskRequest;
use tasker_types::ids::{StepUuid, TaskUuid};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// What one side of a parity case produced, in a form both sides share.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// A success: the proto message, pretty-printed (REST's JSON is first
    /// read into the tasker-types view and converted with tasker-proto).
    Data(String),
    /// A failure: the stable error code and the gRPC code (REST's status
    /// is translated as the API documents it).
    Error { code: String, grpc: Code },
    /// The call did not produce a documented answer at all.
    Broken(String),
}

impl Outcome {
    /// A success carrying `message`.
    pub(crate) fn data<P: Debug>(message: &P) -> Self {
        Outcome::Data(format!("{message:#?}"))
    }

    fn of_status(status: &Status) -> Self {
        Outcome::Error {
            code: status
                .metadata()
                .get("tasker-error-code")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("<no tasker-error-code>")
                .to_owned(),
            grpc: status.code(),
        }
    }
}

/// The gRPC code documented for an HTTP error status (SPEC §8.1–§8.2).
fn grpc_code_for(status: u16) -> Code {
    match status {
        400 | 413 | 415 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::FailedPrecondition,
        503 => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// A request body.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// None.
    Empty,
    /// JSON (`application/json`).
    Json(Value),
    /// YAML (`application/yaml`).
    Yaml(String),
}

/// A REST answer: status and JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// Calls the REST API.
#[derive(Clone)]
pub(crate) struct Rest {
    client: reqwest::Client,
    base: String,
}

impl Rest {
    pub(crate) async fn send(&self, method: Method, path: &str, body: Body) -> Reply {
        let request = self.client.request(method, format!("{}{path}", self.base));
        let request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(&value),
            Body::Yaml(text) => request
                .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                .body(text),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    /// A call that must succeed, read into `V`.
    pub(crate) async fn ok<V: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> V {
        let reply = self.send(method.clone(), path, body).await;
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
        serde_json::from_value(reply.body).unwrap()
    }

    /// The outcome of a REST call whose success is a `V`, converted to the
    /// proto message `P` and then reduced by `map` (to pick a part, or to
    /// clear a field that differs by design).
    pub(crate) fn outcome<V, P, Q>(
        &self,
        method: Method,
        path: impl Into<String>,
        body: Body,
        map: fn(P) -> Q,
    ) -> BoxFuture<'static, Outcome>
    where
        V: DeserializeOwned + Send + 'static,
        P: From<V> + Send + 'static,
        Q: Debug + Send + 'static,
    {
        let rest = self.clone();
        let path = path.into();
        async move {
            let reply = rest.send(method, &path, body).await;
            if (200..300).contains(&reply.status) {
                match serde_json::from_value::<V>(reply.body.clone()) {
                    Ok(view) => Outcome::data(&map(P::from(view))),
                    Err(err) => Outcome::Broken(format!("{err}: {}", reply.body)),
                }
            } else {
                match reply.body["error"]["code"].as_str() {
                    Some(code) => Outcome::Error {
                        code: code.to_owned(),
                        grpc: grpc_code_for(reply.status),
                    },
                    None => Outcome::Broken(format!("{}: {}", reply.status, reply.body)),
                }
            }
        }
        .boxed()
    }

    /// [`Rest::outcome`] of a GET, unreduced.
    pub(crate) fn get<V, P>(&self, path: impl Into<String>) -> BoxFuture<'static, Outcome>
    where
        V: DeserializeOwned + Send + 'static,
        P: From<V> + Debug + Send + 'static,
    {
        self.outcome::<V, P, P>(Method::GET, path, Body::Empty, |p| p)
    }
}

/// The outcome of a gRPC call, reduced by `map` like [`Rest::outcome`].
pub(crate) fn grpc<P, Q>(
    call: impl Future<Output = Result<tonic::Response<P>, Status>> + Send + 'static,
    map: fn(P) -> Q,
) -> BoxFuture<'static, Outcome>
where
    P: Send + 'static,
    Q: Debug + Send + 'static,
{
    async move {
        match call.await {
            Ok(response) => Outcome::data(&map(response.into_inner())),
            Err(status) => Outcome::of_status(&status),
        }
    }
    .boxed()
}

/// `rpc!(client, method, request)`: the outcome of one gRPC call on a
/// clone of `client`; a fourth argument reduces the answer.
macro_rules! rpc {
    ($client:expr, $method:ident, $request:expr) => {
        rpc!($client, $method, $request, |p| p)
    };
    ($client:expr, $method:ident, $request:expr, $map:expr) => {{
        let mut client = $client.clone();
        let request = $request;
        $crate::support::grpc(async move { client.$method(request).await }, $map)
    }};
}
pub(crate) use rpc;

/// The generated clients, over one channel.
#[derive(Clone)]
pub(crate) struct Clients {
    pub(crate) tasks: TaskServiceClient<Channel>,
    pub(crate) steps: StepServiceClient<Channel>,
    pub(crate) templates: TemplateServiceClient<Channel>,
    pub(crate) dlq: DlqServiceClient<Channel>,
}

/// A running server with both APIs over a fresh database holding the
/// example templates. No worker runs: tasks stay where creation put them.
pub(crate) struct Stack {
    pub(crate) _db: TestDb,
    pub(crate) orchestrator: Orchestrator,
    pub(crate) rest: Rest,
    pub(crate) channel: Channel,
    /// The server's watch registry.
    pub(crate) watch: tasker_orchestration::services::watch::WatchHub,
    config: TaskerConfig,
    stop: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn config() -> TaskerConfig {
    ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .set("web.bind_address", "127.0.0.1:0".into())
        .set("grpc.bind_address", "127.0.0.1:0".into())
        .load()
        .unwrap()
}

/// The example templates' directory.
pub(crate) fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/tasks")
}

impl Stack {
    pub(crate) async fn start() -> Self {
        let db = TestDb::new().await.unwrap();
        let config = config();
        let queue: Arc<dyn MessageQueue> = Arc::new(PgmqQueue::new(db.pool().clone()));
        tasker_worker::register_template_files(db.pool(), queue.as_ref(), &[examples()])
            .await
            .unwrap();
        let orchestrator = Orchestrator::new(db.pool().clone(), queue, config.clone());
        orchestrator.prepare().await.unwrap();
        let server = Server::bind(orchestrator.clone(), &config).await.unwrap();
        let rest_addr = server.local_addr().unwrap();
        let grpc_addr = server.grpc_addr().unwrap();
        let watch = server.watch_hub();
        let stop = CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move { server.run(stop).await.unwrap() }
        });
        // The listeners are bound already, so connecting cannot race the
        // server's start.
        let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            _db: db,
            orchestrator,
            rest: Rest {
                client: reqwest::Client::new(),
                base: format!("http://{rest_addr}"),
            },
            channel,
            watch,
            config,
            stop,
        }
    }

    /// Starts a Rust worker with the example handlers; it stops with the stack.
    pub(crate) fn start_worker(&self) {
        let pool = self.orchestrator.pool().clone();
        let worker = tasker_worker::Worker::new(
            pool,
            self.orchestrator.queue(),
            self.config.clone(),
            tasker_rust_worker::registry(),
        );
        let stop = self.stop.clone();
        tokio::spawn(async move { worker.run(stop).await.unwrap() });
    }

    pub(crate) fn clients(&self) -> Clients {
        Clients {
            tasks: TaskServiceClient::new(self.channel.clone()),
            steps: StepServiceClient::new(self.channel.clone()),
            templates: TemplateServiceClient::new(self.channel.clone()),
            dlq: DlqServiceClient::new(self.channel.clone()),
        }
    }

    /// A request for a linear task with `value`, unique by its key.
    pub(crate) fn request(value: i64) -> TaskRequest {
        let mut request = TaskRequest::new(
            "linear_workflow",
            "mathematical_sequence",
            json!({"value": value}),
        );
        request.idempotency_key = Some(uuid::Uuid::now_v7().to_string());
        request
    }

    /// A new task, created beside the APIs (neither adapter is favoured).
    pub(crate) async fn new_task(&self, value: i64) -> TaskUuid {
        self.orchestrator
            .create_task(Self::request(value))
            .await
            .unwrap()
            .task
            .task_uuid
    }

    /// A step of `task` with no parents (so any repair applies to it).
    pub(crate) async fn root_step(&self, task: TaskUuid) -> StepUuid {
        let steps: Vec<Value> = self
            .rest
            .ok(
                Method::GET,
                &format!("/v1/tasks/{task}/workflow_steps"),
                Body::Empty,
            )
            .await;
        let root = steps
            .iter()
            .find(|s| s["dependencies"].as_array().is_some_and(Vec::is_empty))
            .unwrap();
        root["workflow_step_uuid"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// Runs every case — REST first, then gRPC — and fails listing each case
/// whose two outcomes differ.
pub(crate) async fn check(cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for case in cases {
        let rest = case.rest.await;
        let grpc = case.grpc.await;
        for (side, outcome) in [("REST", &rest), ("gRPC", &grpc)] {
            if let Outcome::Broken(why) = outcome {
                failures.push(format!("{}: {side} broke: {why}", case.name));
            }
        }
        if rest != grpc {
            failures.push(format!(
                "{}:\n--- REST\n{rest:?}\n--- gRPC\n{grpc:?}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// One operation asked both ways.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) rest: BoxFuture<'static, Outcome>,
    pub(crate) grpc: BoxFuture<'static, Outcome>,
}

/// A case.
pub(crate) fn case(
    name: &'static str,
    rest: BoxFuture<'static, Outcome>,
    grpc: BoxFuture<'static, Outcome>,
) -> Case {
    Case { name, rest, grpc }
}

/// An outcome recorded earlier (the answer of a call that changed
/// something), as one side of a case.
pub(crate) fn recorded(outcome: Outcome) -> BoxFuture<'static, Outcome> {
    futures_util::future::ready(outcome).boxed()
}
