//! The `rust-worker` binary starts against a real database, registers the
//! example templates, and exits cleanly on SIGTERM.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tasker_db::testing::TestDb;

#[tokio::test]
async fn rust_worker_registers_templates_and_stops_on_sigterm() {
    let db = TestDb::new().await.unwrap();
    let templates = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/tasks");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rust-worker"))
        .env("DATABASE_URL", db.url())
        .env("TASKER_ENV", "test")
        .env("TASKER_TEMPLATE_PATH", templates)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::sync_channel(256);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        loop {
            match received.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(err) => panic!("no `{needle}` in the worker's output: {err}"),
            }
        }
    };
    wait_for("worker running");
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM tasker.named_tasks")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(registered, 8, "every example template was registered");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for("worker stopped");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit}");
}
