//! `tasker-ctl`: Tasker's command line (SPEC §9).
//!
//! Exit codes: 0 success; 1 the task (or template, or check) failed; 2 bad
//! usage or input; 3 the server refused or could not be reached; 4 timed out
//! waiting.

mod cli;
mod commands;
mod exit;
mod output;
mod stack;
mod visualize;

use std::process::ExitCode;

use clap::Parser;
use tasker_client::{Client, Credentials};

use crate::cli::{Cli, Command};
use crate::exit::{CtlResult, Failure, USAGE};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Logs to stderr (stdout carries the command's output) at `default`
/// unless `RUST_LOG` says otherwise, exporting spans over OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The guard flushes on drop.
fn init_telemetry(default: &str) -> Result<tasker_telemetry::Telemetry, Failure> {
    let config = tasker_config::TelemetryConfig {
        log_format: tasker_config::LogFormat::Pretty,
        log_level: default.to_owned(),
        otlp_endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty()),
        metrics_sample_interval: std::time::Duration::from_secs(5),
    };
    tasker_telemetry::init(&config, "tasker-ctl", tasker_telemetry::LogOutput::Stderr)
        .map_err(|e| Failure::new(USAGE, e.to_string()))
}

async fn run(cli: Cli) -> CtlResult {
    let credentials = match (cli.token.clone(), cli.api_key.clone()) {
        (Some(token), _) => Credentials::Bearer(token),
        (None, Some(key)) => Credentials::ApiKey(key),
        (None, None) => Credentials::None,
    };
    let client = || {
        Client::new(&cli.url)
            .map(|c| c.with_credentials(credentials.clone()))
            .map_err(|e| Failure::new(USAGE, e.to_string()))
    };
    match cli.command {
        Command::Task(command) => {
            commands::task::run(&client()?, &cli.grpc_url, cli.output, command).await
        }
        Command::Auth(command) => commands::auth::run(cli.output, command),
        Command::Template(command) => {
            commands::template::run(&client()?, cli.output, command).await
        }
        Command::Dlq(command) => commands::dlq::run(&client()?, cli.output, command).await,
        Command::Events(command) => commands::events::run(cli.output, command).await,
        Command::Health => commands::health::run(&client()?, cli.output).await,
        Command::Config(command) => commands::config::run(cli.output, command),
        Command::Dev(args) => {
            let _telemetry = init_telemetry("info,sqlx=warn")?;
            commands::dev::dev(args).await
        }
        Command::Demo(args) => {
            let _telemetry = init_telemetry("warn,sqlx=error")?;
            commands::dev::demo(args, cli.output).await
        }
        Command::TestCluster => commands::dev::test_cluster().await,
    }
}
