//! A real server (orchestration, REST and gRPC APIs, a Rust worker with the
//! example handlers) in the test process over a fresh database, for the
//! CLI's integration tests.

// Each test file is its own crate and uses a different part of this.
#![allow(dead_code)]

use std::sync::Arc;

use tasker_config::TaskerConfig;
use tasker_db::testing::TestDb;
use tasker_messaging::{MessageQueue, PgmqQueue};
use tasker_orchestration::Orchestrator;
use tasker_orchestration::server::Server;
use tasker_worker::Worker;
use tokio_util::sync::CancellationToken;

pub(crate) struct Running {
    _db: TestDb,
    pub(crate) url: String,
    pub(crate) grpc_url: String,
    /// The server's orchestrator, to run a staleness sweep "hours from now".
    pub(crate) orchestrator: Orchestrator,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts everything with `config` (its listen addresses should take free
/// ports: `127.0.0.1:0`).
pub(crate) async fn start(config: TaskerConfig) -> Running {
    let db = TestDb::new().await.unwrap();
    let queue: Arc<dyn MessageQueue> = Arc::new(PgmqQueue::new(db.pool().clone()));
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/tasks");
    tasker_worker::register_template_files(db.pool(), queue.as_ref(), &[examples.into()])
        .await
        .unwrap();
    let orchestrator = Orchestrator::new(db.pool().clone(), queue.clone(), config.clone());
    let server = Server::bind(orchestrator.clone(), &config).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let grpc_url = server
        .grpc_addr()
        .map_or_else(String::new, |addr| format!("http://{addr}"));
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move { server.run(stop).await.unwrap() }
    });
    let worker = Worker::new(
        db.pool().clone(),
        queue,
        config,
        tasker_rust_worker::registry(),
    );
    tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(stop).await.unwrap() }
    });
    Running {
        _db: db,
        url,
        grpc_url,
        orchestrator,
        stop,
    }
}
