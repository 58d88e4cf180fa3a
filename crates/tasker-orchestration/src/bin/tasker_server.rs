//! `tasker-server`: the orchestration server. `tasker-server` (or
//! `tasker-server serve`) migrates the database and runs orchestration and
//! the REST API until SIGINT/SIGTERM; `tasker-server migrate` only migrates.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

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
    let telemetry = tasker_telemetry::init(
        &config.telemetry,
        "tasker-server",
        tasker_telemetry::LogOutput::Stdout,
    )
    .context("setting up telemetry")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let pool = tasker_db::connect(&config.database, "tasker-server-migrate")
                .await
                .context("connecting to PostgreSQL")?;
            tasker_db::migrate(&pool).await.context("migrating")?;
            tracing::info!("database migrated");
        }
        Command::Serve => {
            let shutdown = tasker_telemetry::shutdown::on_signal();
            tasker_orchestration::server::serve(config, shutdown)
                .await
                .context("running the server")?;
        }
    }
    // The last spans leave before the process does.
    telemetry.shutdown();
    Ok(())
}
