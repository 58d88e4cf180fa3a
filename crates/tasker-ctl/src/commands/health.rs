//! `tasker-ctl health`.

use tasker_client::Client;

use crate::cli::Output;
use crate::exit::{CtlResult, FAILED, Failure};
use crate::output::{Table, json};

pub(crate) async fn run(client: &Client, output: Output) -> CtlResult {
    let report = client.health().await?;
    match output {
        Output::Json => json(&report)?,
        Output::Table => {
            println!(
                "{} is {} (version {}, up {}s)\n",
                client.base_url(),
                report.status,
                report.version,
                report.uptime_seconds
            );
            let mut checks = Table::new(&["CHECK", "STATUS", "MS", "DETAIL"]);
            for (name, check) in &report.checks {
                checks.row(vec![
                    name.clone(),
                    check.status.clone(),
                    check.duration_ms.to_string(),
                    check.message.clone().unwrap_or_default(),
                ]);
            }
            checks.print();
            if !report.queues.is_empty() {
                println!();
                let mut queues = Table::new(&["QUEUE", "DEPTH"]);
                for (queue, depth) in &report.queues {
                    queues.row(vec![queue.clone(), depth.to_string()]);
                }
                queues.print();
            }
        }
    }
    if report.status == "healthy" {
        Ok(())
    } else {
        Err(Failure::new(FAILED, "the server is not healthy"))
    }
}
