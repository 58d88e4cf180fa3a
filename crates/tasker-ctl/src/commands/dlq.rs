//! `tasker-ctl dlq …`: the dead-letter queue, where tasks wait for a person.

use chrono::{DateTime, Utc};
use tasker_client::Client;
use tasker_types::dlq::{DlqBulkResolve, DlqEntryView, DlqFilter, DlqListQuery, DlqUpdate};
use tasker_types::ids::TaskUuid;

use crate::cli::{DlqCommand, DlqListArgs, DlqResolveArgs, Output};
use crate::exit::{CtlResult, Failure, USAGE};
use crate::output::{Table, json};

pub(crate) async fn run(client: &Client, output: Output, command: DlqCommand) -> CtlResult {
    match command {
        DlqCommand::List(args) => list(client, output, args).await,
        DlqCommand::Get { task } => get(client, output, task).await,
        DlqCommand::Resolve(args) => resolve(client, output, args).await,
        DlqCommand::Stats => stats(client, output).await,
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn list(client: &Client, output: Output, args: DlqListArgs) -> CtlResult {
    let query = DlqListQuery {
        status: args.status,
        reason: args.reason,
        namespace: args.namespace,
        created_before: args.created_before,
        before: args.before,
        limit: Some(args.limit),
    };
    let page = client.list_dlq(&query).await?;
    match output {
        Output::Json => json(&page),
        Output::Table => {
            let mut table = Table::new(&[
                "ENTRY", "TASK", "TEMPLATE", "REASON", "STATUS", "WAS", "CREATED",
            ]);
            for e in &page.entries {
                table.row(vec![
                    e.dlq_entry_uuid.to_string(),
                    e.task_uuid.to_string(),
                    format!("{}/{}", e.namespace, e.name),
                    e.reason.to_string(),
                    e.status.to_string(),
                    e.original_state.clone(),
                    time(e.created_at),
                ]);
            }
            table.print();
            if let Some(cursor) = page.next_cursor {
                println!("\nmore: --before {cursor}");
            }
            Ok(())
        }
    }
}

async fn get(client: &Client, output: Output, task: TaskUuid) -> CtlResult {
    let entries = client.dlq_for_task(task).await?;
    match output {
        Output::Json => json(&entries),
        Output::Table => {
            if entries.is_empty() {
                println!("task {task} has no DLQ entries");
            }
            for (i, entry) in entries.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                show_entry(entry);
            }
            Ok(())
        }
    }
}

fn show_entry(entry: &DlqEntryView) {
    println!("entry       {}", entry.dlq_entry_uuid);
    println!(
        "task        {} ({}/{})",
        entry.task_uuid, entry.namespace, entry.name
    );
    println!("reason      {}", entry.reason);
    println!("status      {}", entry.status);
    println!("was         {}", entry.original_state);
    println!("recorded    {}", time(entry.created_at));
    if let Some(detail) = entry.snapshot.get("detail").and_then(|d| d.as_str()) {
        println!("detail      {detail}");
    }
    if let Some(notes) = &entry.resolution_notes {
        println!("notes       {notes}");
    }
    match (entry.resolved_at, &entry.resolved_by) {
        (Some(at), Some(by)) => println!("resolved    {} by {by}", time(at)),
        (Some(at), None) => println!("resolved    {}", time(at)),
        (None, Some(by)) => println!("by          {by}"),
        (None, None) => {}
    }
}

async fn resolve(client: &Client, output: Output, args: DlqResolveArgs) -> CtlResult {
    if !args.status.is_open() && args.by.is_none() {
        return Err(Failure::new(
            USAGE,
            format!(
                "closing an entry ({}) records who did it: give --by NAME (or set USER)",
                args.status
            ),
        ));
    }
    let update = DlqUpdate {
        status: args.status,
        resolution_notes: args.notes,
        resolved_by: args.by,
    };
    match (args.entry, args.all) {
        (Some(entry), false) => {
            let view = client.update_dlq_entry(entry, &update).await?;
            match output {
                Output::Json => json(&view),
                Output::Table => {
                    println!("entry {} is {}", view.dlq_entry_uuid, view.status);
                    Ok(())
                }
            }
        }
        (None, true) => {
            let request = DlqBulkResolve {
                filter: DlqFilter {
                    status: None,
                    reason: args.reason,
                    namespace: args.namespace,
                    created_before: args.created_before,
                },
                update,
            };
            let result = client.resolve_dlq(&request).await?;
            match output {
                Output::Json => json(&result),
                Output::Table => {
                    let noun = if result.updated == 1 {
                        "entry"
                    } else {
                        "entries"
                    };
                    println!("{} {noun} now {}", result.updated, request.update.status);
                    Ok(())
                }
            }
        }
        // clap's argument group makes these unreachable; say so anyway.
        _ => Err(Failure::new(
            USAGE,
            "give exactly one of ENTRY (one entry) or --all (every open entry matching the filters)",
        )),
    }
}

async fn stats(client: &Client, output: Output) -> CtlResult {
    let stats = client.dlq_stats().await?;
    match output {
        Output::Json => json(&stats),
        Output::Table => {
            println!("total       {}", stats.total);
            println!("open        {}", stats.open);
            println!(
                "oldest open {}",
                stats.oldest_open_at.map_or_else(|| "-".to_owned(), time)
            );
            for (header, counts) in [("REASON", &stats.by_reason), ("STATUS", &stats.by_status)] {
                if counts.is_empty() {
                    continue;
                }
                println!();
                let mut table = Table::new(&[header, "ENTRIES"]);
                for (name, count) in counts {
                    table.row(vec![name.clone(), count.to_string()]);
                }
                table.print();
            }
            Ok(())
        }
    }
}
