//! The real `tasker-ctl` binary against a real server (orchestration, REST
//! API and a Rust worker in this test process, on a fresh database).

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;
use std::sync::Arc;

use serde_json::Value;
use tasker_config::ConfigLoader;
use tasker_db::testing::TestDb;
use tasker_messaging::{MessageQueue, PgmqQueue};
use tasker_orchestration::Orchestrator;
use tasker_orchestration::server::Server;
use tasker_worker::Worker;
use tokio_util::sync::CancellationToken;

struct Running {
    _db: TestDb,
    url: String,
    stop: CancellationToken,
}

async fn server() -> Running {
    let db = TestDb::new().await.unwrap();
    let mut config = ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .load()
        .unwrap();
    config.web.bind_address = ([127, 0, 0, 1], 0).into();
    let queue: Arc<dyn MessageQueue> = Arc::new(PgmqQueue::new(db.pool().clone()));
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/tasks");
    tasker_worker::register_template_files(db.pool(), queue.as_ref(), &[examples.into()])
        .await
        .unwrap();
    let orchestrator = Orchestrator::new(db.pool().clone(), queue.clone(), config.clone());
    let server = Server::bind(orchestrator, &config).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
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
    Running { _db: db, url, stop }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Runs `tasker-ctl` with `args` against `url`, off the async runtime.
async fn ctl(url: &str, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tasker-ctl"));
    command
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("TASKER_URL")
        .env("NO_COLOR", "1");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn task_create_wait_exits_with_the_tasks_outcome() {
    let server = server().await;
    let done = ctl(
        &server.url,
        &[
            "-o",
            "json",
            "task",
            "create",
            "-n",
            "linear_workflow",
            "--name",
            "mathematical_sequence",
            "-c",
            r#"{"value": 6}"#,
            "--wait",
        ],
    )
    .await;
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    let task = stdout_json(&done);
    assert_eq!(task["state"], "complete");
    let last = task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "linear_step_4")
        .unwrap()
        .clone();
    assert_eq!(last["results"]["value"], 2_821_109_907_456_i64);

    // A template whose step fails permanently: registered with the CLI, then run.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doomed.yaml");
    std::fs::write(&file, "name: doomed\nnamespace_name: cli_tests\nversion: 1.0.0\nidentity_strategy: always_unique\nsteps:\n  - name: boom\n    handler: { callable: \"tasker::fail\", initialization: { retryable: false, message: \"no way\" } }\n").unwrap();
    let registered = ctl(
        &server.url,
        &["template", "register", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(registered.status.code(), Some(0), "{}", stderr(&registered));
    assert!(
        String::from_utf8_lossy(&registered.stdout).contains("cli_tests/doomed@1.0.0: created")
    );
    let failed = ctl(
        &server.url,
        &[
            "task",
            "create",
            "-n",
            "cli_tests",
            "--name",
            "doomed",
            "--wait",
        ],
    )
    .await;
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("finished error"),
        "{}",
        stderr(&failed)
    );
    assert!(
        String::from_utf8_lossy(&failed.stdout).contains("no way"),
        "the step table shows the error"
    );

    // Without --wait, creation returns at once with the new task.
    let created = ctl(
        &server.url,
        &[
            "-o",
            "json",
            "task",
            "create",
            "-n",
            "tree_workflow",
            "--name",
            "hierarchical_tree",
            "-c",
            r#"{"value": 2}"#,
        ],
    )
    .await;
    assert_eq!(created.status.code(), Some(0));
    let uuid = stdout_json(&created)["task_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let watched = ctl(&server.url, &["-o", "json", "task", "watch", &uuid]).await;
    assert_eq!(watched.status.code(), Some(0), "{}", stderr(&watched));
    assert_eq!(stdout_json(&watched)["state"], "complete");
}

#[tokio::test]
async fn inspection_commands_speak_json_and_tables() {
    let server = server().await;
    let task = stdout_json(
        &ctl(
            &server.url,
            &[
                "-o",
                "json",
                "task",
                "create",
                "-n",
                "diamond_workflow",
                "--name",
                "parallel_computation",
                "-c",
                r#"{"value": 2}"#,
                "--wait",
            ],
        )
        .await,
    );
    let uuid = task["task_uuid"].as_str().unwrap();
    let step = task["steps"][0]["workflow_step_uuid"].as_str().unwrap();

    let got = ctl(&server.url, &["-o", "json", "task", "get", uuid]).await;
    assert_eq!(stdout_json(&got)["task_uuid"], uuid);
    let table = ctl(&server.url, &["task", "get", uuid]).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("STEP") && text.contains("diamond_end") && text.contains("complete"),
        "{text}"
    );

    let listed = stdout_json(
        &ctl(
            &server.url,
            &["-o", "json", "task", "list", "-n", "diamond_workflow"],
        )
        .await,
    );
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1);
    let steps = stdout_json(&ctl(&server.url, &["-o", "json", "task", "steps", uuid]).await);
    assert_eq!(steps.as_array().unwrap().len(), 4);
    let one = stdout_json(&ctl(&server.url, &["-o", "json", "task", "step", uuid, step]).await);
    assert_eq!(one["workflow_step_uuid"], step);
    let audit = stdout_json(&ctl(&server.url, &["-o", "json", "task", "audit", uuid, step]).await);
    assert_eq!(audit["attempts"].as_array().unwrap().len(), 1);
    let audit_table = ctl(&server.url, &["task", "audit", uuid, step]).await;
    assert!(String::from_utf8_lossy(&audit_table.stdout).contains("record_success"));

    let templates = stdout_json(&ctl(&server.url, &["-o", "json", "template", "list"]).await);
    assert_eq!(templates.as_array().unwrap().len(), 8);
    let shown = ctl(
        &server.url,
        &[
            "template",
            "show",
            "ecommerce",
            "order_fulfillment",
            "1.0.0",
        ],
    )
    .await;
    assert!(String::from_utf8_lossy(&shown.stdout).contains("ecommerce::process_payment"));
    let drawn = ctl(
        &server.url,
        &[
            "template",
            "visualize",
            "tree_workflow/hierarchical_tree/1.0.0",
            "-f",
            "dot",
        ],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&drawn.stdout).contains("\"tree_root\" -> \"tree_branch_left\";")
    );

    let health = ctl(&server.url, &["-o", "json", "health"]).await;
    assert_eq!(health.status.code(), Some(0), "{}", stderr(&health));
    assert_eq!(stdout_json(&health)["status"], "healthy");

    let cancel_me = stdout_json(
        &ctl(
            &server.url,
            &[
                "-o",
                "json",
                "task",
                "create",
                "-n",
                "linear_workflow",
                "--name",
                "mathematical_sequence",
                "-c",
                r#"{"value": 1}"#,
                "--wait",
            ],
        )
        .await,
    );
    let again = ctl(
        &server.url,
        &["task", "cancel", cancel_me["task_uuid"].as_str().unwrap()],
    )
    .await;
    assert_eq!(
        again.status.code(),
        Some(3),
        "a finished task cannot be cancelled"
    );
    assert!(
        stderr(&again).contains("already_finished"),
        "{}",
        stderr(&again)
    );
}

#[tokio::test]
async fn errors_have_their_own_exit_codes() {
    let server = server().await;
    let bad_json = ctl(
        &server.url,
        &[
            "task",
            "create",
            "-n",
            "x",
            "--name",
            "y",
            "-c",
            "{not json",
        ],
    )
    .await;
    assert_eq!(bad_json.status.code(), Some(2));
    assert!(stderr(&bad_json).contains("--context is not valid JSON"));
    let unknown = ctl(
        &server.url,
        &["task", "create", "-n", "nope", "--name", "none"],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(3));
    assert!(
        stderr(&unknown).contains("template_not_found"),
        "{}",
        stderr(&unknown)
    );
    let schema = ctl(
        &server.url,
        &[
            "task",
            "create",
            "-n",
            "linear_workflow",
            "--name",
            "mathematical_sequence",
            "-c",
            r#"{"value": "six"}"#,
        ],
    )
    .await;
    assert_eq!(schema.status.code(), Some(3));
    assert!(stderr(&schema).contains("/value"), "{}", stderr(&schema));
    let usage = ctl(&server.url, &["task", "get", "not-a-uuid"]).await;
    assert_eq!(usage.status.code(), Some(2));

    let unreachable = ctl("http://127.0.0.1:9", &["health"]).await;
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(
        stderr(&unreachable).contains("cannot reach the Tasker server"),
        "{}",
        stderr(&unreachable)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nnamespace_name: y\nversion: 1\nsteps: []\n").unwrap();
    let invalid = ctl(
        &server.url,
        &["template", "validate", bad.to_str().unwrap()],
    )
    .await;
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        stderr(&invalid).contains("bad.yaml"),
        "errors name the file: {}",
        stderr(&invalid)
    );
    let good = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/tasks/order_fulfillment.yaml"
    );
    let valid = ctl(&server.url, &["template", "validate", good]).await;
    assert_eq!(valid.status.code(), Some(0), "{}", stderr(&valid));
}

#[tokio::test]
async fn config_validate_and_show() {
    let run = |args: &'static [&'static str], vars: &'static [(&'static str, &'static str)]| async move {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tasker-ctl"));
        command
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("TASKER_ENV");
        for (k, v) in vars {
            command.env(k, v);
        }
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    };
    let ok = run(&["config", "validate", "-e", "test"], &[]).await;
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let missing = run(&["config", "validate", "-e", "production"], &[]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("database.url: environment variable DATABASE_URL is not set"),
        "{}",
        stderr(&missing)
    );
    let shown = run(
        &["config", "show", "-e", "production"],
        &[("DATABASE_URL", "postgresql://app:hunter2@db:5432/tasker")],
    )
    .await;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert!(
        text.contains("postgresql://app:***@db:5432/tasker"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
}

#[tokio::test]
async fn the_demo_runs_every_example_to_completion() {
    let db = TestDb::new().await.unwrap();
    let url = db.url();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tasker-ctl"));
    command
        .args(["-o", "json", "demo"])
        .env("DATABASE_URL", url)
        .env("TASKER_ENV", "test");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = stdout_json(&output);
    let rows = summary.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["state"] == "complete"), "{summary}");
    assert_eq!(rows[0]["result"], 2_821_109_907_456_i64);
}
