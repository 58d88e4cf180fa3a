//! The real `tasker-ctl` binary against a real server (orchestration, REST
//! API and a Rust worker in this test process, on a fresh database).

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use serde_json::Value;
use tasker_config::ConfigLoader;
use tasker_db::testing::TestDb;

mod support;

async fn server() -> support::Running {
    let mut config = ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .load()
        .unwrap();
    config.web.bind_address = ([127, 0, 0, 1], 0).into();
    support::start(config).await
}

/// Runs `tasker-ctl` with `args` against `url`, off the async runtime
/// (with no `USER`, so who acts is always explicit).
async fn ctl(url: &str, args: &[&str]) -> Output {
    ctl_as(url, None, args).await
}

/// Like [`ctl`], with `USER` set to `user`.
async fn ctl_as(url: &str, user: Option<&str>, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tasker-ctl"));
    command
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("TASKER_URL")
        .env_remove("USER")
        .env("NO_COLOR", "1");
    if let Some(user) = user {
        command.env("USER", user);
    }
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

/// `flaky` fails its only attempt, permanently: only an operator can rerun
/// it. `after` echoes what it received from `flaky`.
const FLAKY: &str = "name: flaky_once\nnamespace_name: cli_repairs\nversion: 1.0.0\n\
identity_strategy: always_unique\nsteps:\n\
  - { name: flaky, retry: { max_attempts: 1 }, handler: { callable: \"tasker::fail\", initialization: { fail_times: 1, retryable: false } } }\n\
  - { name: after, handler: { callable: \"tasker::echo\" }, dependencies: [flaky] }\n";

/// No worker has this callable, so the step sits enqueued until the
/// staleness detector sends the task to the DLQ.
const ORPHAN: &str = "name: orphan\nnamespace_name: cli_orphans\nversion: 1.0.0\n\
identity_strategy: always_unique\nsteps:\n\
  - { name: lonely, handler: { callable: \"cli_tests::nobody_serves_this\" } }\n";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Registers `yaml` with `template register`.
async fn register(url: &str, yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("template.yaml");
    std::fs::write(&file, yaml).unwrap();
    let registered = ctl(url, &["template", "register", file.to_str().unwrap()]).await;
    assert_eq!(registered.status.code(), Some(0), "{}", stderr(&registered));
}

/// Runs a `cli_repairs/flaky_once` task until it fails; returns its uuid
/// and its `flaky` step's uuid.
async fn failed_flaky_task(url: &str) -> (String, String) {
    let failed = ctl(
        url,
        &[
            "-o",
            "json",
            "task",
            "create",
            "-n",
            "cli_repairs",
            "--name",
            "flaky_once",
            "--wait",
            "--timeout",
            "30",
        ],
    )
    .await;
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let task = stdout_json(&failed);
    assert_eq!(task["state"], "error");
    let flaky = task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "flaky")
        .unwrap();
    assert_eq!(flaky["state"], "error");
    (
        task["task_uuid"].as_str().unwrap().to_owned(),
        flaky["workflow_step_uuid"].as_str().unwrap().to_owned(),
    )
}

/// `task watch` until the task finishes; returns it as JSON.
async fn watch(url: &str, task: &str) -> Value {
    let watched = ctl(
        url,
        &["-o", "json", "task", "watch", task, "--timeout", "30"],
    )
    .await;
    assert_eq!(watched.status.code(), Some(0), "{}", stderr(&watched));
    stdout_json(&watched)
}

fn step<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn step_repairs_resume_a_failed_task() {
    let server = server().await;
    let url = server.url.as_str();
    register(url, FLAKY).await;

    // Reset: the step runs again (with edited inputs) and the task completes.
    let (task, flaky) = failed_flaky_task(url).await;
    let reset = ctl(
        url,
        &[
            "-o",
            "json",
            "task",
            "reset-step",
            &task,
            &flaky,
            "--reason",
            "INC-42: upstream fixed",
            "--actor",
            "ops@example.com",
            "--inputs",
            r#"{"region": "eu-west-1"}"#,
        ],
    )
    .await;
    assert_eq!(reset.status.code(), Some(0), "{}", stderr(&reset));
    let shown = stdout_json(&reset);
    assert_eq!(shown["workflow_step_uuid"], flaky.as_str());
    assert_eq!(shown["inputs"]["region"], "eu-west-1");
    let done = watch(url, &task).await;
    assert_eq!(done["state"], "complete");
    assert_eq!(step(&done, "flaky")["results"]["attempts"], 2);
    // A finished task takes no repairs: the server refuses (exit 3).
    let again = ctl(
        url,
        &[
            "task",
            "resolve-step",
            &task,
            &flaky,
            "--reason",
            "again",
            "--actor",
            "ops",
        ],
    )
    .await;
    assert_eq!(again.status.code(), Some(3));
    assert!(
        stderr(&again).contains("already_finished"),
        "{}",
        stderr(&again)
    );

    // Complete by hand, the result read from a file and the actor from USER:
    // the dependent step receives the result.
    let (task, flaky) = failed_flaky_task(url).await;
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result.json");
    std::fs::write(&result, r#"{"x": 1}"#).unwrap();
    let at_result = format!("@{}", result.display());
    let completed = ctl_as(
        url,
        Some("night-shift"),
        &[
            "task",
            "complete-step",
            &task,
            &flaky,
            "--reason",
            "computed by hand",
            "--result",
            &at_result,
        ],
    )
    .await;
    assert_eq!(completed.status.code(), Some(0), "{}", stderr(&completed));
    let text = stdout(&completed);
    assert!(
        text.contains("complete_manually by night-shift") && text.contains("STEP"),
        "the step is shown as `task step` shows it: {text}"
    );
    let done = watch(url, &task).await;
    assert_eq!(done["state"], "complete");
    assert_eq!(
        step(&done, "after")["results"]["dependencies"]["flaky"],
        serde_json::json!({"x": 1})
    );
    let audit = stdout_json(&ctl(url, &["-o", "json", "task", "audit", &task, &flaky]).await);
    let manual = audit["attempts"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(manual["outcome"], "manual", "{audit}");

    // Resolve by hand: no result, and the dependents still run.
    let (task, flaky) = failed_flaky_task(url).await;
    let resolved = ctl(
        url,
        &[
            "-o",
            "json",
            "task",
            "resolve-step",
            &task,
            &flaky,
            "--reason",
            "not needed today",
            "--actor",
            "ops",
        ],
    )
    .await;
    assert_eq!(resolved.status.code(), Some(0), "{}", stderr(&resolved));
    assert_eq!(stdout_json(&resolved)["state"], "resolved_manually");
    assert_eq!(watch(url, &task).await["state"], "complete");
}

/// Runs `tasker-ctl`, expecting exit code 2 (bad usage); returns stderr.
async fn usage_error(url: &str, args: &[&str]) -> String {
    let out = ctl(url, args).await;
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    stderr(&out)
}

#[tokio::test]
async fn step_repairs_check_their_arguments() {
    let server = server().await;
    let url = server.url.as_str();
    let task = "0190a1a2-0000-7000-8000-000000000001";
    let step = "0190a1a2-0000-7000-8000-000000000002";
    let repair = |command: &'static str, extra: &[&'static str]| {
        let mut args = vec!["task", command, task, step, "--reason", "r"];
        args.extend_from_slice(extra);
        args
    };

    let no_result = usage_error(url, &repair("complete-step", &["--actor", "a"])).await;
    assert!(no_result.contains("--result"), "{no_result}");
    let no_actor = usage_error(url, &repair("resolve-step", &[])).await;
    assert!(no_actor.contains("--actor"), "{no_actor}");
    let bad_json = usage_error(
        url,
        &repair("complete-step", &["--actor", "a", "--result", "{nope"]),
    )
    .await;
    assert!(
        bad_json.contains("--result is not valid JSON"),
        "{bad_json}"
    );
    let not_object = usage_error(
        url,
        &repair("reset-step", &["--actor", "a", "--inputs", "[1]"]),
    )
    .await;
    assert!(
        not_object.contains("--inputs must be a JSON object"),
        "{not_object}"
    );

    // An unknown task: the server says so (exit 3).
    let missing = ctl(url, &repair("resolve-step", &["--actor", "a"])).await;
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("task_not_found"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn dlq_commands_list_show_and_resolve_entries() {
    let server = server().await;
    let url = server.url.as_str();

    // An empty DLQ.
    let stats = stdout_json(&ctl(url, &["-o", "json", "dlq", "stats"]).await);
    assert_eq!(stats["total"], 0, "{stats}");
    assert_eq!(stats["open"], 0, "{stats}");
    let listed = stdout_json(&ctl(url, &["-o", "json", "dlq", "list"]).await);
    assert_eq!(listed["entries"], serde_json::json!([]), "{listed}");
    let neither = ctl(
        url,
        &["dlq", "resolve", "--status", "resolved", "--by", "me"],
    )
    .await;
    assert_eq!(neither.status.code(), Some(2));
    assert!(
        stderr(&neither).contains("<ENTRY|--all>"),
        "{}",
        stderr(&neither)
    );
    let bad_status = ctl(url, &["dlq", "list", "--status", "closed"]).await;
    assert_eq!(bad_status.status.code(), Some(2));
    assert!(
        stderr(&bad_status).contains("possible values: pending, investigating"),
        "{}",
        stderr(&bad_status)
    );

    // A task no worker serves, found stale "two hours from now".
    register(url, ORPHAN).await;
    let orphan = |url: String| async move {
        let created = ctl(
            &url,
            &[
                "-o",
                "json",
                "task",
                "create",
                "-n",
                "cli_orphans",
                "--name",
                "orphan",
            ],
        )
        .await;
        assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
        stdout_json(&created)["task_uuid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let later = chrono::Utc::now() + chrono::TimeDelta::hours(2);
    let task = orphan(url.to_owned()).await;
    let swept = server.orchestrator.sweep_stale_tasks(later).await.unwrap();
    assert_eq!(swept.failed.len(), 1, "{swept:?}");

    let listed = stdout_json(&ctl(url, &["-o", "json", "dlq", "list"]).await);
    let entries = listed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["task_uuid"], task.as_str());
    assert_eq!(entries[0]["reason"], "worker_unavailable");
    assert_eq!(entries[0]["status"], "pending");
    let entry = entries[0]["dlq_entry_uuid"].as_str().unwrap().to_owned();
    let table = stdout(&ctl(url, &["dlq", "list"]).await);
    assert!(
        table.contains(&entry)
            && table.contains("cli_orphans/orphan")
            && table.contains("worker_unavailable"),
        "{table}"
    );
    let other_reason = stdout_json(
        &ctl(
            url,
            &["-o", "json", "dlq", "list", "--reason", "manual_dlq"],
        )
        .await,
    );
    assert_eq!(other_reason["entries"], serde_json::json!([]));
    let shown = stdout(&ctl(url, &["dlq", "get", &task]).await);
    assert!(
        shown.contains(&entry) && shown.contains("detail      no progress"),
        "{shown}"
    );
    let stats = stdout_json(&ctl(url, &["-o", "json", "dlq", "stats"]).await);
    assert_eq!(
        (stats["total"].as_u64(), stats["open"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(stats["by_reason"]["worker_unavailable"], 1);
    let stats_table = stdout(&ctl(url, &["dlq", "stats"]).await);
    assert!(stats_table.contains("worker_unavailable"), "{stats_table}");

    // One entry: investigate, then close; a closed entry stays closed.
    let investigating = ctl(
        url,
        &[
            "-o",
            "json",
            "dlq",
            "resolve",
            &entry,
            "--status",
            "investigating",
        ],
    )
    .await;
    assert_eq!(
        investigating.status.code(),
        Some(0),
        "{}",
        stderr(&investigating)
    );
    assert_eq!(stdout_json(&investigating)["status"], "investigating");
    let unnamed = ctl(url, &["dlq", "resolve", &entry, "--status", "resolved"]).await;
    assert_eq!(unnamed.status.code(), Some(2), "closing needs --by or USER");
    let closed = ctl_as(
        url,
        Some("alice"),
        &[
            "dlq",
            "resolve",
            &entry,
            "--status",
            "resolved",
            "--notes",
            "queue had no consumer",
        ],
    )
    .await;
    assert_eq!(closed.status.code(), Some(0), "{}", stderr(&closed));
    assert!(
        stdout(&closed).contains("is resolved"),
        "{}",
        stdout(&closed)
    );
    let reopened = ctl(
        url,
        &[
            "dlq",
            "resolve",
            &entry,
            "--status",
            "cancelled",
            "--by",
            "bob",
        ],
    )
    .await;
    assert_eq!(reopened.status.code(), Some(3));
    assert!(
        stderr(&reopened).contains("dlq_status_conflict"),
        "{}",
        stderr(&reopened)
    );
    let shown = stdout(&ctl(url, &["dlq", "get", &task]).await);
    assert!(
        shown.contains("notes       queue had no consumer") && shown.contains("by alice"),
        "{shown}"
    );

    // In bulk: every open entry matching the filters.
    let second = orphan(url.to_owned()).await;
    let swept = server.orchestrator.sweep_stale_tasks(later).await.unwrap();
    assert_eq!(swept.failed.len(), 1, "{swept:?}");
    let bulk = ctl(
        url,
        &[
            "-o",
            "json",
            "dlq",
            "resolve",
            "--all",
            "--reason",
            "worker_unavailable",
            "-n",
            "cli_orphans",
            "--status",
            "cancelled",
            "--by",
            "carol",
        ],
    )
    .await;
    assert_eq!(bulk.status.code(), Some(0), "{}", stderr(&bulk));
    assert_eq!(stdout_json(&bulk)["updated"], 1);
    let got = stdout_json(&ctl(url, &["-o", "json", "dlq", "get", &second]).await);
    assert_eq!(got[0]["status"], "cancelled", "{got}");
    assert_eq!(got[0]["resolved_by"], "carol", "{got}");
    let stats = stdout_json(&ctl(url, &["-o", "json", "dlq", "stats"]).await);
    assert_eq!(
        (stats["total"].as_u64(), stats["open"].as_u64()),
        (Some(2), Some(0))
    );
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
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["state"] == "complete"), "{summary}");
    assert_eq!(rows[0]["result"], 2_821_109_907_456_i64);
    assert_eq!(
        rows[5]["result"],
        serde_json::json!(["manager_approval", "finance_review"])
    );
    assert_eq!(rows[6]["steps"], 7, "analyze, five batches, aggregate");
    assert_eq!(
        rows[7]["result"], 560,
        "4 + 16 + … + 196, the evens squared"
    );
}
