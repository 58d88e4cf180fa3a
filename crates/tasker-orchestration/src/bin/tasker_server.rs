//! `tasker-server`: the orchestration server. `tasker-server` (or
//! `tasker-server serve`) migrates the database and runs orchestration and
//! the REST API until SIGINT/SIGTERM; `tasker-server migrate` only migrates.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "tasker-server",
    version,
    about = "Tasker's orchestration server: engine and REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate, then run orchestration and the REST API (the default).
    Serve,
    /// Apply migrations (PGMQ and Tasker's schema) and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = tasker_config::load().context("loading configuration")?;
    tasker_orchestration::telemetry::logging::init(&config.telemetry);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let pool = tasker_db::connect(&config.database, "tasker-server-migrate")
                .await
                .context("connecting to PostgreSQL")?;
            tasker_db::migrate(&pool).await.context("migrating")?;
            tracing::info!("database migrated");
        }
        Command::Serve => {
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            tasker_orchestration::server::serve(config, shutdown)
                .await
                .context("running the server")?;
        }
    }
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}
