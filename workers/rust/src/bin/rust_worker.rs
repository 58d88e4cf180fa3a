//! `rust-worker`: runs the built-in and example handlers against the
//! configured database until SIGINT or SIGTERM.
//!
//! Configuration comes from `config/tasker` (compiled in), `TASKER_ENV`,
//! `TASKER_CONFIG_DIR`, `DATABASE_URL`, and `TASKER_TEMPLATE_PATH` (template
//! files to register at startup, e.g. `config/tasks`).

use anyhow::Context as _;
use tasker_worker::Worker;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let config = tasker_config::load().context("loading configuration")?;
    let worker = Worker::connect(config, tasker_rust_worker::registry())
        .await
        .context("connecting to PostgreSQL")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    worker.run(shutdown).await.context("running the worker")?;
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
