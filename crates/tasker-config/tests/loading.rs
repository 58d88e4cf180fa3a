//! Loading configuration end to end: layers, environments, interpolation and
//! the errors a person sees when something is wrong.

// A failing test should say where: unwrap, expect and panic are fine here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use tasker_config::{ConfigLoader, KNOWN_ENVIRONMENTS, MessagingBackend};

fn loader(env: &str, vars: &'static [(&'static str, &'static str)]) -> ConfigLoader {
    ConfigLoader::new().environment(env).vars(move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn every_shipped_environment_loads() {
    for env in KNOWN_ENVIRONMENTS {
        let config = loader(env, &[("DATABASE_URL", "postgresql://u@h/db")])
            .load()
            .unwrap();
        assert_eq!(config.environment, env);
        assert_eq!(config.database.url, "postgresql://u@h/db");
        assert_eq!(config.messaging.backend, MessagingBackend::Pgmq);
    }
}

#[test]
fn defaults_come_from_base_and_environment_files() {
    let dev = loader("development", &[]).load().unwrap();
    assert_eq!(
        dev.database.url,
        "postgresql://postgres@127.0.0.1:5432/tasker_development"
    );
    assert_eq!(dev.database.max_connections, 10);
    assert_eq!(
        dev.database.statement_timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(dev.execution.default_timeout, Duration::from_secs(30));
    assert!((dev.execution.backoff_jitter - 0.15).abs() < f64::EPSILON);
    let test = loader("test", &[]).load().unwrap();
    assert_eq!(
        test.database.url,
        "postgresql://postgres@127.0.0.1:5432/tasker_test"
    );
    assert_eq!(test.execution.default_timeout, Duration::from_secs(10));
    // SPEC §12: breakers on, and a backlog limit that a healthy system
    // never reaches.
    let breakers = dev.circuit_breakers;
    assert!(breakers.enabled);
    assert_eq!(breakers.database.failure_threshold.get(), 5);
    assert_eq!(breakers.messaging.open_for, Duration::from_secs(2));
    assert_eq!(dev.backpressure.max_pending_results, Some(20_000));
    assert_eq!(dev.backpressure.retry_after, Duration::from_secs(2));
}

#[test]
fn tasker_env_picks_the_environment_and_development_is_the_default() {
    let chosen = ConfigLoader::new()
        .vars(|name| (name == "TASKER_ENV").then(|| "test".to_owned()))
        .load()
        .unwrap();
    assert_eq!(chosen.environment, "test");
    let default = ConfigLoader::new().vars(|_| None).load().unwrap();
    assert_eq!(default.environment, "development");
}

#[test]
fn rabbitmq_urls_are_checked_and_tls_is_refused_by_name() {
    let config = loader("test", &[("RABBITMQ_URL", "amqp://u:p@broker:5672/%2f")])
        .load()
        .unwrap();
    assert_eq!(config.messaging.rabbitmq.url, "amqp://u:p@broker:5672/%2f");
    assert!(
        !format!("{:?}", config.messaging.rabbitmq).contains("u:p"),
        "no password in Debug"
    );
    let err = loader("test", &[("RABBITMQ_URL", "amqps://broker")])
        .load()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("messaging.rabbitmq.url: amqps:// is not supported"),
        "{err}"
    );
    let err = loader("test", &[("RABBITMQ_URL", "http://broker")])
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "messaging.rabbitmq.url: must start with amqp://"
    );
}

#[test]
fn production_requires_database_url_from_the_environment() {
    let err = loader("production", &[]).load().unwrap_err();
    assert_eq!(
        err.to_string(),
        "database.url: environment variable DATABASE_URL is not set (use ${DATABASE_URL:-default} for a default)"
    );
}

#[test]
fn the_backend_comes_from_tasker_messaging_backend() {
    let config = loader("test", &[("TASKER_MESSAGING_BACKEND", "in_memory")])
        .load()
        .unwrap();
    assert_eq!(config.messaging.backend, MessagingBackend::InMemory);
    let err = loader("test", &[("TASKER_MESSAGING_BACKEND", "kafka")])
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "messaging.backend: unknown backend `kafka`: expected `pgmq`, `rabbitmq` or `in_memory`"
    );
}

#[test]
fn a_config_dir_overrides_key_by_key_and_may_add_environments() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "base/common.toml",
        "[database]\nmax_connections = \"${POOL:-33}\"\n",
    );
    write(
        dir.path(),
        "environments/staging/common.toml",
        "[execution]\ndefault_timeout_seconds = 45\n",
    );
    let config = loader("staging", &[])
        .config_dir(dir.path())
        .load()
        .unwrap();
    assert_eq!(config.database.max_connections, 33);
    assert_eq!(
        config.database.min_connections, 1,
        "untouched keys keep their defaults"
    );
    assert_eq!(config.execution.default_timeout, Duration::from_secs(45));
}

#[test]
fn unknown_environments_are_refused() {
    let err = loader("staging", &[]).load().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown environment `staging`: expected one of development, test, production, or a \
         directory $TASKER_CONFIG_DIR/environments/staging"
    );
}

#[test]
fn unknown_keys_wrong_types_and_ranges_name_the_key_path() {
    let cases = [
        (
            "[database]\nmax_conections = 5\n",
            "database.max_conections: unknown field `max_conections`, expected one of `url`, `max_connections`, \
             `min_connections`, `acquire_timeout_ms`, `idle_timeout_ms`, `statement_timeout_ms`",
        ),
        (
            "[database]\nmax_connections = 'many'\n",
            "database.max_connections: invalid type: string \"many\", expected u32",
        ),
        (
            "[database]\nmax_connections = 0\n",
            "database.max_connections: must be between 1 and 1000 (got 0)",
        ),
        (
            "[database]\nmin_connections = 11\n",
            "database.min_connections: must be between 0 and 10 (got 11)",
        ),
        (
            "[database]\nurl = 'mysql://x'\n",
            "database.url: must be a postgres:// or postgresql:// URL",
        ),
        (
            "[execution]\nbackoff_jitter_percent = 150\n",
            "execution.backoff_jitter_percent: must be between 0 and 100 (got 150)",
        ),
        (
            "[tracing]\nenabled = true\n",
            "tracing: unknown field `tracing`, expected one of `database`, `messaging`, `execution`, `orchestration`, `staleness`, `redrive`, `worker`, `web`, `grpc`, `auth`, `telemetry`, `circuit_breakers`, `backpressure`",
        ),
        (
            "[staleness]\nmax_waiting_for_retry_minutes = 600000\n",
            "staleness.max_waiting_for_retry_minutes: must be between 0 and 525600 (got 600000)",
        ),
        (
            "[redrive]\nafter_ms = 10\n",
            "redrive.after_ms: must be between 100 and 86400000 (got 10)",
        ),
        (
            "[orchestration]\nmax_decision_depth = 0\n",
            "orchestration.max_decision_depth: must be between 1 and 100 (got 0)",
        ),
        (
            "[auth]\nenabled = true\n",
            "auth.enabled: auth is on but no credential could ever pass: set jwt_hs256_secret, jwt_rs256_public_key(_path) or api_keys",
        ),
        (
            "[auth]\njwt_hs256_secret = \"short\"\n",
            "auth.jwt_hs256_secret: must be at least 32 bytes: a short HS256 secret can be guessed offline",
        ),
        (
            "[[auth.api_keys]]\nname = \"ci\"\nkey_hash = \"md5:abc\"\npermissions = []\n",
            "auth.api_keys[0].key_hash: must be `sha256:` and 64 hex digits (see `tasker-ctl auth hash-key`)",
        ),
        (
            "[circuit_breakers.database]\nfailure_threshold = 0\n",
            "circuit_breakers.database.failure_threshold: must be between 1 and 10000 (got 0)",
        ),
        (
            "[circuit_breakers.messaging]\nopen_ms = 5\n",
            "circuit_breakers.messaging.open_ms: must be between 10 and 600000 (got 5)",
        ),
        (
            "[backpressure]\nretry_after_seconds = 0\n",
            "backpressure.retry_after_seconds: must be between 1 and 3600 (got 0)",
        ),
        (
            "[grpc]\nbind_address = \"nope\"\n",
            "grpc.bind_address: `nope` is not an address like 0.0.0.0:9190",
        ),
    ];
    for (toml_text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base/zz.toml", toml_text);
        let err = loader("development", &[])
            .config_dir(dir.path())
            .load()
            .unwrap_err();
        assert_eq!(err.to_string(), expected, "for {toml_text:?}");
    }
}

#[test]
fn broken_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "base/broken.toml", "[database\n");
    let err = loader("development", &[])
        .config_dir(dir.path())
        .load()
        .unwrap_err();
    assert!(
        err.to_string().contains("broken.toml: invalid TOML"),
        "{err}"
    );
}

#[test]
fn worker_leases_must_be_renewed_before_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "base/w.toml",
        "[worker]\nlease_ms = 2000\nlease_renew_interval_ms = 2000\n",
    );
    let err = loader("development", &[])
        .config_dir(dir.path())
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "worker.lease_renew_interval_ms: must be shorter than worker.lease_ms (2000) so leases are renewed before they expire"
    );
}

#[test]
fn template_paths_extend_from_tasker_template_path() {
    let config = loader("test", &[("TASKER_TEMPLATE_PATH", "/a:/b")])
        .load()
        .unwrap();
    assert_eq!(
        config.worker.template_paths,
        [std::path::PathBuf::from("/a"), "/b".into()]
    );
    assert_eq!(config.worker.lease, Duration::from_secs(5));
    assert_eq!(config.orchestration.result_batch_size.get(), 100);
}

#[test]
fn overrides_set_by_a_host_win_and_are_validated_like_files() {
    let config = loader("test", &[])
        .set("worker.concurrency", toml::Value::Integer(8))
        .set(
            "worker.namespaces",
            toml::Value::Array(vec![toml::Value::String("payments".into())]),
        )
        .load()
        .unwrap();
    assert_eq!(config.worker.concurrency.get(), 8);
    assert_eq!(config.worker.namespaces, ["payments"]);

    // Production requires DATABASE_URL; an override of the key stands in.
    let production = loader("production", &[])
        .set(
            "database.url",
            toml::Value::String("postgresql://h/db".into()),
        )
        .load()
        .unwrap();
    assert_eq!(production.database.url, "postgresql://h/db");

    let zero = loader("test", &[])
        .set("worker.concurrency", toml::Value::Integer(0))
        .load()
        .unwrap_err();
    assert!(zero.to_string().starts_with("worker.concurrency"), "{zero}");
    let unknown = loader("test", &[])
        .set("worker.concurency", toml::Value::Integer(8))
        .load()
        .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown field `concurency`"),
        "{unknown}"
    );
}
