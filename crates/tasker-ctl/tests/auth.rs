//! `tasker-ctl` against a server with auth on: the credentials it makes
//! (`auth token`, `auth hash-key`) are the ones the server accepts, it
//! sends them with `--token` / `--api-key`, and `task watch` follows the
//! task over gRPC with them.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Output;

use serde_json::Value;
use tasker_config::ConfigLoader;

mod support;

const SECRET: &str = "ctl-auth-test-secret-ctl-auth-test-secret";
const READER_KEY: &str = "tsk_reader_key_for_the_ctl_auth_test_000";

async fn server() -> support::Running {
    let mut reader = toml::Table::new();
    reader.insert("name".into(), "reader".into());
    reader.insert(
        "key_hash".into(),
        tasker_types::auth::hash_api_key(READER_KEY).into(),
    );
    reader.insert(
        "permissions".into(),
        toml::Value::Array(vec!["tasks:read".into()]),
    );
    let config = ConfigLoader::new()
        .environment("test")
        .vars(|_| None)
        .set("web.bind_address", "127.0.0.1:0".into())
        .set("auth.enabled", true.into())
        .set("auth.jwt_hs256_secret", SECRET.into())
        .set("auth.api_keys", toml::Value::Array(vec![reader.into()]))
        .load()
        .unwrap();
    support::start(config).await
}

async fn ctl(args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tasker-ctl"));
    command
        .args(args)
        .env_remove("TASKER_URL")
        .env_remove("TASKER_TOKEN")
        .env_remove("TASKER_API_KEY")
        .env_remove("TASKER_JWT_SECRET")
        .env("NO_COLOR", "1");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn token(permissions: &str) -> String {
    let made = ctl(&[
        "-o",
        "json",
        "auth",
        "token",
        "--subject",
        "ci-bot",
        "--permissions",
        permissions,
        "--expires",
        "5m",
        "--secret",
        SECRET,
    ])
    .await;
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let body: Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(body["claims"]["sub"], "ci-bot");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_makes_and_sends_the_credentials_the_server_checks() {
    let server = server().await;
    let url = server.url.as_str();

    let anonymous = ctl(&["--url", url, "task", "list"]).await;
    assert_eq!(
        anonymous.status.code(),
        Some(3),
        "{}",
        text(&anonymous.stderr)
    );
    assert!(
        text(&anonymous.stderr).contains("credentials required"),
        "{}",
        text(&anonymous.stderr)
    );

    let reader = token("tasks:read").await;
    let listed = ctl(&[
        "--url", url, "--token", &reader, "-o", "json", "task", "list",
    ])
    .await;
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));

    let refused = ctl(&[
        "--url",
        url,
        "--token",
        &reader,
        "task",
        "create",
        "-n",
        "linear_workflow",
        "--name",
        "mathematical_sequence",
        "-c",
        r#"{"value": 2}"#,
    ])
    .await;
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        text(&refused.stderr).contains("tasks:create"),
        "{}",
        text(&refused.stderr)
    );

    let by_key = ctl(&[
        "--url",
        url,
        "--api-key",
        READER_KEY,
        "-o",
        "json",
        "task",
        "list",
    ])
    .await;
    assert_eq!(by_key.status.code(), Some(0), "{}", text(&by_key.stderr));
    let key_refused = ctl(&["--url", url, "--api-key", READER_KEY, "template", "list"]).await;
    assert_eq!(key_refused.status.code(), Some(3));
    assert!(
        text(&key_refused.stderr).contains("templates:read"),
        "{}",
        text(&key_refused.stderr)
    );

    // A task created and then followed over WatchTask with the same token.
    let operator = token("tasks:*").await;
    let created = ctl(&[
        "--url",
        url,
        "--token",
        &operator,
        "-o",
        "json",
        "task",
        "create",
        "-n",
        "linear_workflow",
        "--name",
        "mathematical_sequence",
        "-c",
        r#"{"value": 3}"#,
    ])
    .await;
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let task: Value = serde_json::from_slice(&created.stdout).unwrap();
    let uuid = task["task_uuid"].as_str().unwrap();
    let watched = ctl(&[
        "--url",
        url,
        "--grpc-url",
        &server.grpc_url,
        "--token",
        &operator,
        "task",
        "watch",
        uuid,
    ])
    .await;
    let streamed = text(&watched.stderr);
    assert_eq!(watched.status.code(), Some(0), "{streamed}");
    assert!(
        streamed
            .lines()
            .any(|l| l.contains("task: ") && l.contains("→ complete")),
        "the stream shows the task completing: {streamed}"
    );
    assert!(streamed.contains("step linear_step_4:"), "{streamed}");
}

#[tokio::test]
async fn hash_key_prints_the_stored_form_of_a_key() {
    let hashed = ctl(&["-o", "json", "auth", "hash-key", "--key", "abc"]).await;
    assert_eq!(hashed.status.code(), Some(0));
    let body: Value = serde_json::from_slice(&hashed.stdout).unwrap();
    assert_eq!(body["key_hash"], tasker_types::auth::hash_api_key("abc"));
    assert!(body["key"].is_null(), "a given key is not echoed back");
    let made = ctl(&["-o", "json", "auth", "hash-key"]).await;
    let body: Value = serde_json::from_slice(&made.stdout).unwrap();
    let key = body["key"].as_str().unwrap();
    assert_eq!(body["key_hash"], tasker_types::auth::hash_api_key(key));
}

#[tokio::test]
async fn generate_keys_writes_a_pair_that_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let made = ctl(&["auth", "generate-keys", "--out-dir", out]).await;
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let private = dir.path().join("tasker-jwt-private.pem");
    let public = std::fs::read(dir.path().join("tasker-jwt-public.pem")).unwrap();
    let signed = ctl(&[
        "auth",
        "token",
        "--subject",
        "ops",
        "--permissions",
        "*",
        "--private-key",
        private.to_str().unwrap(),
    ])
    .await;
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    let token = text(&signed.stdout).trim().to_owned();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["tasker-api"]);
    let claims = jsonwebtoken::decode::<tasker_types::auth::TokenClaims>(
        &token,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims.sub, "ops");
    assert_eq!(claims.permissions, vec!["*".to_owned()]);
    // A second run refuses to overwrite the key.
    let again = ctl(&["auth", "generate-keys", "--out-dir", out]).await;
    assert_eq!(again.status.code(), Some(2));
}
