//! The `tasker-server` binary: migrates, serves, reports ready, and exits
//! cleanly on SIGTERM.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tasker_db::testing::TestDb;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET, to keep the test free of client libraries.
fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test]
async fn tasker_server_serves_and_stops_on_sigterm() {
    let db = TestDb::new().await.unwrap();
    let binary = env!("CARGO_BIN_EXE_tasker-server");
    let migrate = Command::new(binary)
        .arg("migrate")
        .env("DATABASE_URL", db.url())
        .env("TASKER_ENV", "test")
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let port = free_port();
    let mut child = Command::new(binary)
        .env("DATABASE_URL", db.url())
        .env("TASKER_ENV", "test")
        .env("TASKER_WEB_BIND_ADDRESS", format!("127.0.0.1:{port}"))
        .env("TASKER_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
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
    let wait_for = |needle: &str| loop {
        match received.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(err) => panic!("no `{needle}` in the server's log: {err}"),
        }
    };
    let listening = wait_for("REST API listening");
    assert!(
        listening.starts_with('{'),
        "logs are JSON when asked: {listening}"
    );
    wait_for("orchestration running");

    let ready = tokio::task::spawn_blocking(move || get(port, "/health/ready"))
        .await
        .unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("\"status\":\"healthy\""), "{ready}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for("orchestration stopped");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit}");
}
