//! An oversized body is answered 413 in a way every client sees: the
//! server reads (and discards) what the client is still sending before it
//! answers, so a client that only reads once it has written everything —
//! Python's `urllib`, this test — gets the 413 instead of a broken pipe.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::Api;

/// Writes a whole request, then reads the whole answer: as `urllib` does.
fn send_then_read(addr: std::net::SocketAddr, head: String, body: Vec<u8>) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .write_all(&body)
        .unwrap_or_else(|e| panic!("the server stopped reading before the 413: {e}"));
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

async fn serve(api: &Api) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = tasker_orchestration::web::app(api.state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eight_mebibyte_post_is_answered_413_after_it_was_sent() {
    let api = Api::new().await;
    let addr = serve(&api).await;
    // Larger than loopback's socket buffers, so a server that stopped
    // reading would break the pipe before the client reads.
    let size = 8 * 1024 * 1024;
    for _ in 0..5 {
        let body = vec![b' '; size];
        // Declared up front: refused by its Content-Length, drained anyway.
        let head = format!(
            "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        );
        let answer = tokio::task::spawn_blocking(move || send_then_read(addr, head, body))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
        assert!(answer.contains("payload_too_large"), "{answer:.400}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer:.400}"
        );
    }
    assert_eq!(api.count("tasks").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_found_too_large_while_reading_is_answered_413_too() {
    let api = Api::new().await;
    let addr = serve(&api).await;
    let mut body = Vec::new();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..128 {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
    let answer = tokio::task::spawn_blocking(move || send_then_read(addr, head, body))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    assert_eq!(api.count("tasks").await, 0);
}
