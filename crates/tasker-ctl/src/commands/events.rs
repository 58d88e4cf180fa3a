//! `tasker-ctl events tail`: reads a namespace's durable domain events
//! (`<namespace>_domain_events`) straight from the configured queue
//! backend, oldest first. Reading consumes them: tail is a consumer, for
//! inspecting a stream no other consumer drains, or for piping events
//! (`-o json`: one JSON object per line) to a script.

use std::time::Duration;

use tasker_config::ConfigLoader;
use tasker_worker::events::{DomainEvent, EventConsumer};

use crate::cli::{EventsCommand, Output, TailArgs};
use crate::exit::{CtlResult, FAILED, Failure};

/// How long `--follow` waits between empty reads.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub(crate) async fn run(output: Output, command: EventsCommand) -> CtlResult {
    match command {
        EventsCommand::Tail(args) => tail(output, args).await,
    }
}

async fn tail(output: Output, args: TailArgs) -> CtlResult {
    let mut loader = ConfigLoader::new();
    if let Some(env) = &args.environment {
        loader = loader.environment(env.clone());
    }
    let config = loader
        .load()
        .map_err(|e| Failure::new(FAILED, format!("invalid configuration: {e}")))?;
    let pool = tasker_db::connect(&config.database, "tasker-ctl")
        .await
        .map_err(|e| Failure::new(FAILED, format!("cannot reach the database: {e}")))?;
    let queue = tasker_messaging::connect(&config.messaging, &pool);
    let consumer = EventConsumer::new(queue, &args.namespace)
        .await
        .map_err(|e| Failure::new(FAILED, e.to_string()))?;
    let mut shown = 0usize;
    let interrupted = crate::commands::dev::wait_for_signal();
    tokio::pin!(interrupted);
    loop {
        let want = args.count.map_or(100, |n| (n - shown).min(100));
        if want == 0 {
            return Ok(());
        }
        let batch = consumer
            .next_batch(want)
            .await
            .map_err(|e| Failure::new(FAILED, e.to_string()))?;
        if batch.is_empty() && !args.follow {
            if shown == 0 && output == Output::Table {
                eprintln!("no events waiting on {}_domain_events", args.namespace);
            }
            return Ok(());
        }
        for event in &batch {
            print(output, event)?;
        }
        shown += batch.len();
        if batch.is_empty() {
            tokio::select! {
                () = &mut interrupted => return Ok(()),
                () = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
    }
}

fn print(output: Output, event: &DomainEvent) -> CtlResult {
    match output {
        Output::Json => {
            let line =
                serde_json::to_string(event).map_err(|e| Failure::new(FAILED, e.to_string()))?;
            println!("{line}");
        }
        Output::Table => println!(
            "{}  {:<28} {:<18} task {}  step {} (attempt {})  {}",
            event.published_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            event.name,
            format!("{:?}", event.outcome).to_lowercase(),
            event.task_uuid,
            event.step_name,
            event.attempt,
            event.payload
        ),
    }
    Ok(())
}
