//! `rust-worker`: runs the built-in and example handlers against the
//! configured database until SIGINT or SIGTERM.
//!
//! Configuration comes from `config/tasker` (compiled in), `TASKER_ENV`,
//! `TASKER_CONFIG_DIR`, `DATABASE_URL`, and `TASKER_TEMPLATE_PATH` (template
//! files to register at startup, e.g. `config/tasks`).

use anyhow::Context as _;
use tasker_worker::Worker;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = tasker_config::load().context("loading configuration")?;
    let telemetry = tasker_telemetry::init(
        &config.telemetry,
        "tasker-rust-worker",
        tasker_telemetry::LogOutput::Stdout,
    )
    .context("setting up telemetry")?;
    let worker = Worker::connect(config, tasker_rust_worker::registry())
        .await
        .context("connecting to PostgreSQL")?;
    let shutdown = tasker_telemetry::shutdown::on_signal();
    worker.run(shutdown).await.context("running the worker")?;
    telemetry.shutdown();
    Ok(())
}
